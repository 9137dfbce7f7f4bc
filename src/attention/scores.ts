// Head-scores strip: one small layers x heads heatmap per score kind (previous token, induction,
// duplicate token), scaled to its own maximum; click a head to select it.
import { type ViewContext, formatWeight, h, headLabel, sizeCanvas } from "./dom";
import { argmax } from "./math";
import { heatLut, lutIndex, rgbCss } from "./theme";

export interface ScoresPart {
  el: HTMLElement;
  draw(): void;
}

export function scoreCell(nHeads: number): number {
  return Math.max(6, Math.min(14, Math.floor(180 / nHeads)));
}

export function createScores(ctx: ViewContext): ScoresPart {
  const { data, selection } = ctx;
  const { nLayers, nHeads } = data;
  const el = h("div", { class: "iw-scores", "data-testid": "iw-scores" });
  const cell = scoreCell(nHeads);

  const headAt = (canvas: HTMLCanvasElement, ev: MouseEvent): { layer: number; head: number } | null => {
    const box = canvas.getBoundingClientRect();
    const head = Math.floor((ev.clientX - box.left) / cell);
    const layer = Math.floor((ev.clientY - box.top) / cell);
    return head >= 0 && head < nHeads && layer >= 0 && layer < nLayers ? { layer, head } : null;
  };

  return {
    el,
    draw() {
      const prompt = data.prompts[selection.get().prompt];
      const sel = selection.get();
      const theme = ctx.theme();
      const lut = heatLut(theme);
      el.replaceChildren();
      if (prompt.scores.length === 0) {
        el.append(h("div", { class: "iw-muted" }, "no head scores"));
        return;
      }
      for (const score of prompt.scores) {
        const best = argmax(score.values);
        let max = 0;
        for (const v of score.values) if (Number.isFinite(v) && v > max) max = v;
        const canvas = h("canvas", { "data-testid": "iw-score-canvas", "aria-label": `${score.label} score per head` });
        const g = sizeCanvas(canvas, nHeads * cell, nLayers * cell);
        if (g) {
          for (let layer = 0; layer < nLayers; layer++) {
            for (let head = 0; head < nHeads; head++) {
              const v = score.values[layer * nHeads + head];
              const j = lutIndex(max > 0 ? v / max : 0) * 4;
              g.fillStyle = Number.isFinite(v) ? `rgb(${lut[j]}, ${lut[j + 1]}, ${lut[j + 2]})` : rgbCss(theme.bg);
              g.fillRect(head * cell, layer * cell, cell, cell);
            }
          }
          g.strokeStyle = theme.accent;
          g.lineWidth = 2;
          g.strokeRect(sel.head * cell + 1, sel.layer * cell + 1, cell - 2, cell - 2);
        }
        canvas.addEventListener("click", (ev) => {
          const c = headAt(canvas, ev);
          if (c) selection.set(c);
        });
        canvas.addEventListener("mousemove", (ev) => {
          const c = headAt(canvas, ev);
          if (!c) return ctx.tooltip.hide();
          const v = score.values[c.layer * nHeads + c.head];
          ctx.tooltip.show([h("b", {}, headLabel(c.layer, c.head)), ` ${score.label} score ${formatWeight(v)}`], ev.clientX, ev.clientY);
        });
        canvas.addEventListener("mouseleave", () => ctx.tooltip.hide());
        const bestText = best >= 0
          ? `best ${headLabel(Math.floor(best / nHeads), best % nHeads)} (${formatWeight(score.values[best])})`
          : "undefined on this prompt";
        el.append(
          h("div", { class: "iw-score", "data-score": score.kind },
            h("span", { class: "iw-title" }, score.label),
            canvas,
            h("span", { class: "iw-muted", "data-role": "best" }, bestText)),
        );
      }
    },
  };
}
