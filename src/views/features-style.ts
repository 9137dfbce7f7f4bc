// CSS of the feature dashboard and the steering widget, on top of the patching controls' stylesheet
// (its `.iw-root` variables follow JupyterLab's --jp-* theme); injected once per document.
import { ensurePatchingStyle } from "./patching-style";

export const FEATURES_STYLE_ID = "interp-widget-features-style";

export const FEATURES_CSS = `
.iw-features, .iw-steering { flex-direction: column; flex-wrap: nowrap; align-items: stretch; gap: 8px; }
.iw-fd-cols { display: flex; gap: 16px; flex-wrap: wrap; align-items: flex-start; }
.iw-fd-col { display: flex; flex-direction: column; gap: 6px; min-width: 220px; flex: 1 1 260px; max-width: 100%; }
.iw-fd-h { font-weight: 600; font-size: 12px; }
.iw-fd-example { font-family: var(--iw-code-font); font-size: 12px; line-height: 1.7; display: flex; gap: 4px;
  align-items: baseline; min-width: 0; }
.iw-tokrun { display: inline-flex; flex-wrap: wrap; row-gap: 2px; min-width: 0; }
.iw-fd-value { color: var(--iw-muted); display: inline-block; min-width: 4.5em; }
.iw-tok { border-radius: 2px; padding: 0 1px; white-space: pre; }
.iw-tok[data-peak="1"] { outline: 1px solid var(--iw-accent); }
.iw-tok[data-diff="1"] { text-decoration: underline; text-decoration-color: var(--iw-accent); }
.iw-tok[data-prompt="1"] { color: var(--iw-muted); }
.iw-fd-effects { display: grid; grid-template-columns: auto auto; gap: 0 12px; font-family: var(--iw-code-font);
  font-size: 12px; }
.iw-fd-links { display: flex; flex-wrap: wrap; gap: 4px; }
.iw-link { font-family: var(--iw-code-font); font-size: 11px; }
.iw-link[data-sign="-"] { border-style: dashed; }
.iw-fd-hist svg { max-width: 100%; height: auto; }
.iw-st-sample { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 12px;
  font-family: var(--iw-code-font); font-size: 12px; line-height: 1.7; border-top: 1px solid var(--iw-border);
  padding-top: 4px; }
.iw-st-sample > div { display: flex; flex-wrap: wrap; align-content: flex-start; row-gap: 2px; min-width: 0; }
.iw-st-strength { display: flex; gap: 6px; align-items: center; }
.iw-st-strength input[type="range"] { width: 200px; }
.iw-field input[type="number"] { background: var(--iw-bg2); color: var(--iw-fg); border: 1px solid var(--iw-border);
  font-size: 12px; padding: 2px 4px; width: 6em; }
`;

export function ensureFeaturesStyle(doc: Document): void {
  ensurePatchingStyle(doc);
  if (doc.getElementById(FEATURES_STYLE_ID)) return;
  const style = doc.createElement("style");
  style.id = FEATURES_STYLE_ID;
  style.textContent = FEATURES_CSS;
  doc.head.append(style);
}
