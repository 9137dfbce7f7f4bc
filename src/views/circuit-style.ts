// CSS of the circuit view, on top of the patching view's (buttons, errors) and the attention view's
// stylesheet (its `.iw-root` variables follow JupyterLab's --jp-* theme); injected once per document.
import { ensurePatchingStyle } from "./patching-style";

export const CIRCUIT_STYLE_ID = "interp-widget-circuit-style";

export const CIRCUIT_CSS = `
.iw-circuit { flex-direction: column; flex-wrap: nowrap; align-items: stretch; }
.iw-circuit .iw-small { font-size: 11px; }
.iw-circuit .iw-mono { font-family: var(--iw-code-font); font-size: 12px; }
.iw-circuit input[type="range"] { width: 200px; vertical-align: middle; }
.iw-circuit input[type="number"] {
  width: 6em; background: var(--iw-bg2); color: var(--iw-fg); border: 1px solid var(--iw-border); font: inherit;
}
.iw-circuit-body { display: flex; gap: 12px; align-items: flex-start; }
.iw-circuit-scroll { overflow: auto; max-height: 720px; max-width: 100%; flex: 1 1 auto; border: 1px solid var(--iw-border); }
.iw-circuit-scroll svg { display: block; user-select: none; -webkit-user-select: none; }
.iw-circuit-scroll.iw-panning { cursor: grabbing; }
.iw-zoom-controls { display: inline-flex; gap: 4px; align-items: center; margin-left: 8px; }
.iw-circuit-scroll [data-node]:hover rect { stroke-width: 2; }
.iw-node-detail { flex: 0 0 260px; font-size: 12px; max-height: 720px; overflow: auto; }
.iw-edge-list table { border-collapse: collapse; width: 100%; font-size: 12px; }
.iw-edge-list td { padding: 1px 4px; border-bottom: 1px solid var(--iw-border); }
.iw-edge-list td[data-role="score"] { text-align: right; }
.iw-legend { display: inline-flex; gap: 8px; align-items: center; }
.iw-swatch { display: inline-block; width: 18px; height: 4px; margin-right: 4px; vertical-align: middle; }
.iw-faith { font-size: 12px; }
.iw-faith:empty { display: none; }
.iw-faith[data-state="running"] { color: var(--iw-muted); }
`;

export function ensureCircuitStyle(doc: Document): void {
  ensurePatchingStyle(doc);
  if (doc.getElementById(CIRCUIT_STYLE_ID)) return;
  const style = doc.createElement("style");
  style.id = CIRCUIT_STYLE_ID;
  style.textContent = CIRCUIT_CSS;
  (doc.head ?? doc.documentElement).appendChild(style);
}
