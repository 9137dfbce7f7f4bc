// CSS of the heatmap and the patching controls, on top of the attention view's stylesheet (its
// `.iw-root` variables follow JupyterLab's --jp-* theme); injected once per document.
import { ensureStyle as ensureAttentionStyle } from "../attention/style";

export const PATCHING_STYLE_ID = "interp-widget-patching-style";

export const PATCHING_CSS = `
.iw-patching { flex-direction: column; flex-wrap: nowrap; align-items: stretch; }
.iw-form { display: grid; grid-template-columns: repeat(auto-fit, minmax(240px, 1fr)); gap: 6px 12px; }
.iw-field { display: flex; flex-direction: column; gap: 2px; font-size: 11px; color: var(--iw-muted); }
.iw-field textarea, .iw-field input[type="text"], .iw-field select {
  background: var(--iw-bg2); color: var(--iw-fg); border: 1px solid var(--iw-border);
  font-family: var(--iw-code-font); font-size: 12px; padding: 2px 4px;
}
.iw-field textarea { resize: vertical; min-height: 2.4em; }
.iw-field[data-hidden="1"] { display: none; }
.iw-row { display: flex; gap: 8px; align-items: center; flex-wrap: wrap; }
.iw-btn {
  background: var(--iw-bg2); color: var(--iw-fg); border: 1px solid var(--iw-border); border-radius: 2px;
  font: inherit; padding: 2px 10px; cursor: pointer;
}
.iw-btn[data-primary="1"] { background: var(--iw-accent); color: var(--iw-bg); border-color: var(--iw-accent); }
.iw-btn:disabled { opacity: 0.5; cursor: default; }
.iw-progress { width: 160px; height: 8px; }
.iw-error {
  color: var(--iw-error); border: 1px solid var(--iw-error); padding: 4px 6px; white-space: pre-wrap;
  font-size: 12px;
}
.iw-error:empty { display: none; }
.iw-hm-canvas { display: block; cursor: pointer; outline: none; }
.iw-hm-canvas:focus-visible { box-shadow: 0 0 0 2px var(--iw-accent); }
.iw-hm-legend { display: flex; gap: 8px; align-items: center; font-size: 11px; }
.iw-hm-legend-bar { display: block; }
.iw-hm-note { font-size: 11px; }
.iw-head-body { display: flex; gap: 16px; flex-wrap: wrap; align-items: flex-start; }
.iw-head-side { display: flex; flex-direction: column; gap: 4px; }
`;

export function ensurePatchingStyle(doc: Document): void {
  ensureAttentionStyle(doc);
  if (doc.getElementById(PATCHING_STYLE_ID)) return;
  const style = doc.createElement("style");
  style.id = PATCHING_STYLE_ID;
  style.textContent = PATCHING_CSS;
  (doc.head ?? doc.documentElement).appendChild(style);
}
