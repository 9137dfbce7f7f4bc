// The attention view: overview grid of every head, head-scores strip, and the detail view of the
// selected head. A pure function of (el, props) that returns a cleanup; it knows nothing of
// anywidget: the selection is a Store and windows come from a PatternSource.
import { createDetail } from "./detail";
import { type ViewContext, createTooltip, h } from "./dom";
import { createGrid } from "./grid";
import type { AttentionData, Window } from "./model";
import { createScores } from "./scores";
import { type PatternSource, cachedSource } from "./source";
import type { Selection, Store } from "./store";
import { ensureStyle } from "./style";
import { heatLut, readTheme, watchThemeRedraw } from "./theme";

export interface AttentionViewProps {
  data: AttentionData;
  selection: Store<Selection>;
  source: PatternSource;
  /** query/key positions shown at once in the detail view */
  windowSize: number;
  /** the selected head's first window, when it came with the state */
  initialWindow?: Window | null;
  /** "live" (a kernel answers) or "static" (an exported page or notebook snapshot) */
  mode?: "live" | "static";
}

/** Name of the event the root element dispatches once the first complete paint is on screen. */
export const READY_EVENT = "interp-widget:ready";

export function renderAttention(el: HTMLElement, props: AttentionViewProps): () => void {
  const { data, selection } = props;
  ensureStyle(el.ownerDocument);
  const root = h("div", {
    class: "iw-root",
    "data-testid": "iw-attention",
    "data-mode": props.mode ?? "live",
    "data-ready": "0",
  });
  el.append(root);
  const t0 = typeof performance !== "undefined" ? performance.now() : 0;

  let theme = readTheme(root);
  let lut = heatLut(theme);
  const ctx: ViewContext = {
    root,
    data,
    selection,
    theme: () => theme,
    lut: () => lut,
    tooltip: createTooltip(root),
    width: () => Math.max(360, root.clientWidth || el.clientWidth || 760),
  };

  // header: model, prompt selector
  const promptSelect = h("select", { "data-testid": "iw-prompt-select", "aria-label": "prompt" });
  data.prompts.forEach((p, i) => {
    const text = p.text.length > 60 ? `${p.text.slice(0, 59)}…` : p.text;
    promptSelect.append(h("option", { value: i }, `${i}: ${text} (${p.tokens.length} tokens)`));
  });
  promptSelect.addEventListener("change", () => selection.set({ prompt: Number(promptSelect.value) }));
  const header = h("div", { class: "iw-controls" },
    h("span", { class: "iw-title", "data-testid": "iw-model-name" }, data.modelName || "attention"),
    h("span", { class: "iw-muted" }, `${data.nLayers} layers × ${data.nHeads} heads`));
  if (data.prompts.length > 1) header.append(promptSelect);
  else header.append(h("span", { class: "iw-muted", "data-testid": "iw-prompt-text" }, `${data.prompts[0].tokens.length} tokens`));

  const grid = createGrid(ctx);
  const scores = createScores(ctx);
  let ready = false;
  const detail = createDetail(ctx, {
    source: cachedSource(props.source),
    windowSize: props.windowSize,
    initialWindow: props.initialWindow ?? null,
    onSettled: () => {
      if (ready) return;
      ready = true;
      const mark = () => {
        root.dataset.ready = "1";
        const ms = typeof performance !== "undefined" ? performance.now() - t0 : 0;
        root.dispatchEvent(new CustomEvent(READY_EVENT, { bubbles: true, detail: { ms } }));
        if (typeof performance !== "undefined" && typeof performance.mark === "function") {
          performance.mark(READY_EVENT);
        }
      };
      if (typeof requestAnimationFrame === "function") requestAnimationFrame(mark);
      else setTimeout(mark, 0);
    },
  });

  root.append(
    h("div", { class: "iw-panel" }, header,
      h("div", { class: "iw-muted" }, "Every head (rows: layers, columns: heads). Click one to inspect it."),
      grid.el,
      h("div", { class: "iw-title" }, "Head scores on this prompt"),
      scores.el),
    detail.el,
  );

  const sync = (s: Selection, prev: Selection | null) => {
    promptSelect.value = String(s.prompt);
    if (!prev || prev.prompt !== s.prompt) grid.draw();
    grid.mark();
    scores.draw();
    detail.onSelection(prev);
    root.dataset.layer = String(s.layer);
    root.dataset.head = String(s.head);
    root.dataset.prompt = String(s.prompt);
  };
  grid.layout();
  sync(selection.get(), null);
  const unsubscribe = selection.subscribe((s, prev) => sync(s, prev));

  const retheme = () => {
    theme = readTheme(root);
    lut = heatLut(theme);
    grid.draw();
    scores.draw();
    detail.redraw();
  };
  const unwatch = watchThemeRedraw(retheme);
  let resizeObserver: ResizeObserver | null = null;
  if (typeof ResizeObserver === "function") {
    let lastWidth = 0;
    resizeObserver = new ResizeObserver(() => {
      const w = ctx.width();
      if (Math.abs(w - lastWidth) < 8) return;
      lastWidth = w;
      grid.layout();
      detail.redraw();
    });
    resizeObserver.observe(root);
  }

  return () => {
    unsubscribe();
    unwatch();
    resizeObserver?.disconnect();
    detail.destroy();
    root.remove();
  };
}
