// Small DOM helpers and the panel's CSS (JupyterLab's --jp-* variables: follows the light/dark theme).

type Attrs = Record<string, string | number | boolean | null | undefined>;

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: (Node | string | null | undefined | false)[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = String(value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

export function button(label: string, testid: string, onClick: () => void, title = ""): HTMLButtonElement {
  const b = el("button", { class: "jp-Button iw-panel-button", "data-testid": testid, title: title || null, type: "button" }, label);
  b.addEventListener("click", (ev) => {
    ev.preventDefault();
    onClick();
  });
  return b;
}

export function numberInput(testid: string, label: string, value: number, max: number | null): HTMLInputElement {
  return el("input", {
    class: "iw-panel-number",
    type: "number",
    min: 0,
    max: max ?? null,
    value,
    "data-testid": testid,
    "aria-label": label,
    title: label,
  });
}

export function select(testid: string, label: string, options: [string, string][], value?: string): HTMLSelectElement {
  const s = el("select", { class: "iw-panel-select", "data-testid": testid, "aria-label": label, title: label });
  for (const [v, text] of options) s.append(el("option", { value: v, selected: v === value }, text));
  return s;
}

export const STYLE_ID = "interp-widget-panel-style";

const CSS = `
.iw-panel {
  display: flex;
  flex-direction: column;
  background: var(--jp-layout-color1);
  color: var(--jp-ui-font-color1);
  font-family: var(--jp-ui-font-family);
  font-size: var(--jp-ui-font-size1);
  overflow: auto;
  min-width: 240px;
}
.iw-panel-header { display: flex; align-items: center; gap: 6px; padding: 6px 8px;
  border-bottom: 1px solid var(--jp-border-color2); }
.iw-panel-title { font-weight: 600; }
.iw-panel-kernel { color: var(--jp-ui-font-color2); flex: 1; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.iw-panel-badge { border-radius: 8px; padding: 0 6px; font-size: var(--jp-ui-font-size0);
  background: var(--jp-layout-color3); color: var(--jp-ui-font-color1); }
.iw-panel-badge[data-state="connected"] { background: var(--jp-success-color2, #81c784); }
.iw-panel-badge[data-state="dead"], .iw-panel-badge[data-state="disconnected"] { background: var(--jp-error-color2, #e57373); }
.iw-panel-message { padding: 8px; color: var(--jp-ui-font-color2); display: flex; flex-direction: column; gap: 6px;
  align-items: flex-start; }
.iw-panel-message:empty { display: none; }
.iw-panel-group h3 { margin: 8px 8px 2px; font-size: var(--jp-ui-font-size0); text-transform: uppercase;
  letter-spacing: 0.05em; color: var(--jp-ui-font-color2); }
.iw-panel-list { list-style: none; margin: 0; padding: 0; }
.iw-panel-entry { padding: 3px 8px; cursor: pointer; border-left: 3px solid transparent; }
.iw-panel-entry:hover { background: var(--jp-layout-color2); }
.iw-panel-entry[aria-selected="true"] { border-left-color: var(--jp-brand-color1); background: var(--jp-layout-color2); }
.iw-panel-entry .iw-panel-label { font-weight: 600; }
.iw-panel-entry .iw-panel-names { font-family: var(--jp-code-font-family); color: var(--jp-content-link-color, var(--jp-brand-color1)); margin-left: 6px; }
.iw-panel-entry .iw-panel-detail { color: var(--jp-ui-font-color2); font-size: var(--jp-ui-font-size0); }
.iw-panel-details { padding: 6px 8px; border-top: 1px solid var(--jp-border-color2); display: flex; flex-direction: column; gap: 6px; }
.iw-panel-details:empty { display: none; }
.iw-panel-details dl { display: grid; grid-template-columns: max-content 1fr; gap: 1px 8px; margin: 0; }
.iw-panel-details dt { color: var(--jp-ui-font-color2); }
.iw-panel-details dd { margin: 0; font-family: var(--jp-code-font-family); }
.iw-panel-row { display: flex; flex-wrap: wrap; gap: 4px; align-items: center; }
.iw-panel-row input[type="text"] { flex: 1; min-width: 120px; }
.iw-panel-number { width: 4.5em; }
.iw-panel-button { padding: 1px 8px; min-height: 22px; }
.iw-panel-sites { max-height: 160px; overflow: auto; font-family: var(--jp-code-font-family); font-size: var(--jp-ui-font-size0); }
.iw-panel-snippet { font-family: var(--jp-code-font-family); font-size: var(--jp-ui-font-size0); white-space: pre-wrap;
  background: var(--jp-layout-color2); padding: 4px; margin: 0; }
.iw-panel-snippet:empty { display: none; }
.iw-panel-error { color: var(--jp-error-color1); white-space: pre-wrap; padding: 4px 8px; }
.iw-panel-viewarea { border-top: 1px solid var(--jp-border-color2); min-height: 40px; overflow: auto; }
.iw-panel-viewarea .iw-panel-view { overflow: auto; }
.iw-panel-viewarea .lm-Panel { position: relative; }
`;

export function ensureStyle(doc: Document = document): void {
  if (doc.getElementById(STYLE_ID)) return;
  const style = doc.createElement("style");
  style.id = STYLE_ID;
  style.textContent = CSS;
  doc.head.append(style);
}
