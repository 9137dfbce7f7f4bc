// One head's attention on the clean and the corrupted prompt, side by side: the attention view's own
// detail part (token-by-token heatmap, minimap, tooltips, scrolling), fed by the patching widget's
// `get_pattern` command (prompt 0: clean, 1: corrupted).
import type { HeadPatternsReply } from "../schema/generated";
import { createDetail, type DetailPart } from "../attention/detail";
import { type Tooltip, type ViewContext, h } from "../attention/dom";
import { type AttentionData, type Window, decodePrompt, decodeWindow } from "../attention/model";
import { type PatternSource, cachedSource } from "../attention/source";
import { createStore } from "../attention/store";
import { type Theme, heatLut } from "../attention/theme";

export interface HeadPatterns {
  data: AttentionData;
  names: string[];
  layer: number;
  head: number;
  windows: Window[];
}

export function decodeHeadPatterns(r: HeadPatternsReply): HeadPatterns {
  if (r.prompts.length !== r.windows.length || r.prompts.length !== r.names.length) {
    throw new Error(`open_head replied ${r.prompts.length} prompts, ${r.windows.length} windows, ${r.names.length} names`);
  }
  return {
    data: {
      modelName: r.model_name,
      nLayers: r.n_layers,
      nHeads: r.n_heads,
      prompts: r.prompts.map((p) => decodePrompt(p, r.n_layers, r.n_heads)),
    },
    names: r.names,
    layer: r.layer,
    head: r.head,
    windows: r.windows.map(decodeWindow),
  };
}

export interface HeadPanel {
  el: HTMLElement;
  show(p: HeadPatterns): void;
  /** a message instead of the patterns (loading, an error) */
  message(text: string, kind?: "info" | "error"): void;
  close(): void;
  redraw(): void;
  destroy(): void;
}

export function createHeadPanel(
  env: { root: HTMLElement; theme(): Theme; tooltip: Tooltip; width(): number },
  source: PatternSource,
  opts: { windowSize: number; onClose?(): void },
): HeadPanel {
  const title = h("div", { class: "iw-title", "data-testid": "iw-head-title" });
  const closeBtn = h("button", { type: "button", class: "iw-btn", "data-testid": "iw-head-close" }, "×");
  const status = h("div", { class: "iw-status", "data-testid": "iw-head-status", "aria-live": "polite" });
  const body = h("div", { class: "iw-head-body" });
  const el = h("div", { class: "iw-panel iw-head-panel", "data-testid": "iw-head-panel" },
    h("div", { class: "iw-controls" }, title, closeBtn), status, body);
  el.style.display = "none";
  let details: DetailPart[] = [];
  const cached = cachedSource(source);

  const clear = () => {
    details.forEach((d) => d.destroy());
    details = [];
    body.replaceChildren();
  };
  const close = () => {
    clear();
    el.style.display = "none";
    delete el.dataset.layer;
    delete el.dataset.head;
    opts.onClose?.();
  };
  closeBtn.addEventListener("click", close);

  return {
    el,
    show(p) {
      clear();
      el.style.display = "";
      el.dataset.layer = String(p.layer);
      el.dataset.head = String(p.head);
      title.textContent = `L${p.layer}H${p.head}: attention on the ${p.names.join(" and the ")} prompt`;
      status.textContent = "";
      status.dataset.kind = "info";
      p.names.forEach((name, prompt) => {
        const ctx: ViewContext = {
          root: env.root,
          data: p.data,
          selection: createStore({ prompt, layer: p.layer, head: p.head }),
          theme: env.theme,
          lut: () => heatLut(env.theme()),
          tooltip: env.tooltip,
          width: () => Math.max(360, Math.floor(env.width() / Math.min(2, p.names.length)) - 16),
        };
        const detail = createDetail(ctx, {
          source: cached,
          windowSize: opts.windowSize,
          initialWindow: p.windows[prompt] ?? null,
          onSettled: () => {},
        });
        details.push(detail);
        detail.onSelection(null);
        body.append(h("div", { class: "iw-head-side", "data-testid": "iw-head-side", "data-name": name },
          h("div", { class: "iw-muted" }, `${name}: ${p.data.prompts[prompt].tokens.length} tokens`), detail.el));
      });
    },
    message(text, kind = "info") {
      el.style.display = "";
      status.textContent = text;
      status.dataset.kind = kind;
    },
    close,
    redraw() {
      details.forEach((d) => d.redraw());
    },
    destroy: clear,
  };
}
