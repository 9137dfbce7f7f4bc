// Parts of the feature dashboard: highlighted token runs and the activation histogram (Observable Plot).
import * as Plot from "@observablehq/plot";
import { h } from "../attention/dom";
import type { Theme } from "../attention/theme";
import { type Bar, intensity, showToken } from "./features-model";

/** Tokens as spans whose background shows `acts[i] / max` in the theme's heat colour. */
export function tokenRun(tokens: string[], acts: ArrayLike<number>, max: number, theme: Theme,
  opts: { peak?: number } = {}): HTMLElement {
  const [r, g, b] = theme.heat;
  const run = h("span", { class: "iw-tokrun" });
  tokens.forEach((t, i) => {
    const a = acts[i];
    const span = h("span", {
      class: "iw-tok", "data-act": Number.isFinite(a) ? a.toFixed(4) : "nan",
      title: `${JSON.stringify(t)}: ${Number.isFinite(a) ? a.toFixed(3) : "—"}`,
    }, showToken(t));
    const k = intensity(a, max);
    if (k > 0) {
      span.style.background = `rgba(${r}, ${g}, ${b}, ${(0.85 * k).toFixed(3)})`;
      if (k > 0.55) span.style.color = theme.dark ? "#000" : "#fff";
    }
    if (opts.peak === i) span.dataset.peak = "1";
    run.append(span);
  });
  return run;
}

/** The histogram of activations (bars over `[x0, x1)`), drawn with Observable Plot in the theme's colours. */
export function histogramPlot(bars: Bar[], theme: Theme, width: number): Element {
  const shown = bars.filter((b) => b.count > 0);
  const fig = Plot.plot({
    width, height: 140, marginLeft: 44, marginBottom: 30,
    style: { background: "transparent", color: theme.fg, fontSize: "10px" },
    x: { label: "activation", labelAnchor: "right" },
    y: { label: "tokens", grid: true },
    marks: [
      Plot.rectY(shown, { x1: "x0", x2: "x1", y: "count", fill: theme.accent, insetLeft: 0.5, insetRight: 0.5 }),
      Plot.ruleY([0], { stroke: theme.border }),
    ],
  });
  return fig;
}

export function effectsTable(rows: { token: string; value: number }[], testid: string): HTMLElement {
  const box = h("div", { class: "iw-fd-effects", "data-testid": testid });
  for (const r of rows) box.append(h("span", {}, showToken(r.token)), h("span", { class: "iw-muted" }, r.value.toFixed(3)));
  if (!rows.length) box.append(h("span", { class: "iw-muted" }, "—"));
  return box;
}
