// CSS of the attention view, injected once per document. Colours follow JupyterLab's --jp-*
// variables, with prefers-color-scheme fallbacks outside JupyterLab.
export const STYLE_ID = "interp-widget-attention-style";

export const CSS = `
.iw-root {
  --iw-bg: var(--jp-layout-color0, #ffffff);
  --iw-bg2: var(--jp-layout-color1, #fafafa);
  --iw-fg: var(--jp-ui-font-color1, rgba(0, 0, 0, 0.87));
  --iw-muted: var(--jp-ui-font-color2, rgba(0, 0, 0, 0.54));
  --iw-border: var(--jp-border-color2, #e0e0e0);
  --iw-accent: var(--jp-brand-color1, #1976d2);
  --iw-error: var(--jp-error-color1, #d32f2f);
  --iw-heat-light: #084594;
  --iw-heat-dark: #ffb74d;
  --iw-font: var(--jp-ui-font-family, system-ui, -apple-system, "Segoe UI", sans-serif);
  --iw-code-font: var(--jp-code-font-family, ui-monospace, Menlo, Consolas, monospace);
  background: var(--iw-bg);
  color: var(--iw-fg);
  font-family: var(--iw-font);
  font-size: var(--jp-ui-font-size1, 13px);
  position: relative;
  display: flex;
  flex-wrap: wrap;
  gap: 16px;
  padding: 8px;
  box-sizing: border-box;
  max-width: 100%;
}
@media (prefers-color-scheme: dark) {
  .iw-root {
    --iw-bg: var(--jp-layout-color0, #1e1e1e);
    --iw-bg2: var(--jp-layout-color1, #252526);
    --iw-fg: var(--jp-ui-font-color1, rgba(255, 255, 255, 0.87));
    --iw-muted: var(--jp-ui-font-color2, rgba(255, 255, 255, 0.54));
    --iw-border: var(--jp-border-color2, #424242);
    --iw-accent: var(--jp-brand-color1, #64b5f6);
    --iw-error: var(--jp-error-color1, #ef9a9a);
  }
}
.iw-root * { box-sizing: border-box; }
.iw-panel { display: flex; flex-direction: column; gap: 6px; min-width: 0; }
.iw-title { font-weight: 600; }
.iw-muted { color: var(--iw-muted); }
.iw-controls { display: flex; gap: 8px; align-items: center; flex-wrap: wrap; }
.iw-controls select {
  background: var(--iw-bg2); color: var(--iw-fg); border: 1px solid var(--iw-border);
  font: inherit; padding: 1px 4px; max-width: 28em;
}
.iw-grid { display: grid; align-items: center; outline: none; }
.iw-grid:focus-visible { box-shadow: 0 0 0 2px var(--iw-accent); }
.iw-grid-label { color: var(--iw-muted); font-size: 11px; text-align: center; white-space: nowrap; }
.iw-cell {
  display: block; image-rendering: pixelated; cursor: pointer;
  outline: 1px solid var(--iw-border); background: var(--iw-bg);
}
.iw-cell:hover { outline: 2px solid var(--iw-muted); }
.iw-cell[aria-selected="true"] { outline: 2px solid var(--iw-accent); outline-offset: 1px; }
.iw-detail-canvas { display: block; cursor: crosshair; outline: none; }
.iw-detail-canvas:focus-visible { box-shadow: 0 0 0 2px var(--iw-accent); }
.iw-minimap { display: block; image-rendering: pixelated; cursor: pointer; outline: 1px solid var(--iw-border); }
.iw-detail-row { display: flex; gap: 12px; align-items: flex-start; flex-wrap: wrap; }
.iw-side { display: flex; flex-direction: column; gap: 6px; font-size: 11px; max-width: 200px; }
.iw-status { min-height: 1.3em; font-size: 11px; color: var(--iw-muted); }
.iw-status[data-kind="error"] { color: var(--iw-error); }
.iw-scores { display: flex; gap: 14px; flex-wrap: wrap; align-items: flex-start; }
.iw-score { display: flex; flex-direction: column; gap: 3px; font-size: 11px; }
.iw-score canvas { display: block; cursor: pointer; image-rendering: pixelated; outline: 1px solid var(--iw-border); }
.iw-tooltip {
  position: absolute; z-index: 10; pointer-events: none; display: none;
  background: var(--iw-bg2); color: var(--iw-fg); border: 1px solid var(--iw-border);
  box-shadow: 0 2px 6px rgba(0, 0, 0, 0.25); padding: 4px 6px; font-size: 12px; white-space: nowrap;
}
.iw-tooltip[data-visible="1"] { display: block; }
.iw-tok { font-family: var(--iw-code-font); background: var(--iw-bg); border: 1px solid var(--iw-border); padding: 0 2px; }
.iw-static { max-width: 100%; overflow-x: auto; }
.iw-fallback img { image-rendering: pixelated; max-width: 100%; }
`;

/** Add the stylesheet to `doc` once (anywidget also accepts `_css`, but static pages need it too). */
export function ensureStyle(doc: Document): void {
  if (doc.getElementById(STYLE_ID)) return;
  const style = doc.createElement("style");
  style.id = STYLE_ID;
  style.textContent = CSS;
  (doc.head ?? doc.documentElement).appendChild(style);
}
