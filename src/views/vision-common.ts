// What both vision views share: their CSS (on top of the attention view's theme-following
// `.iw-root` variables), painting an RGB image into a canvas, and calling a kernel command.
import { embedded } from "./features-embed";
import { ensureStyle } from "../attention/style";
import { context2d, h } from "../attention/dom";
import { type ImageStack, rgba } from "./vision-math";

export const VISION_STYLE_ID = "interp-widget-vision-style";

export const VISION_CSS = `
.iw-vision { flex-direction: column; flex-wrap: nowrap; align-items: stretch; }
.iw-vgrid { display: grid; gap: 6px; align-items: start; }
.iw-vcell { display: flex; flex-direction: column; align-items: center; gap: 1px; cursor: pointer; outline: none; }
.iw-vcell canvas { display: block; image-rendering: pixelated; outline: 1px solid var(--iw-border); background: var(--iw-bg2); }
.iw-vcell:hover canvas { outline: 2px solid var(--iw-muted); }
.iw-vcell:focus-visible canvas, .iw-vcell[aria-selected="true"] canvas { outline: 2px solid var(--iw-accent); }
.iw-vcell-label { font-size: 10px; color: var(--iw-muted); white-space: nowrap; max-width: 100%; overflow: hidden; text-overflow: ellipsis; }
.iw-venlarged { display: flex; gap: 12px; align-items: flex-start; flex-wrap: wrap; border: 1px solid var(--iw-border); padding: 6px; }
.iw-venlarged canvas { display: block; image-rendering: pixelated; }
.iw-venlarged[hidden], .iw-vdetail[hidden] { display: none; }
.iw-vbtn { background: var(--iw-bg2); color: var(--iw-fg); border: 1px solid var(--iw-border); font: inherit; padding: 0 8px; cursor: pointer; }
.iw-error { color: var(--iw-error); border: 1px solid var(--iw-error); padding: 4px 6px; white-space: pre-wrap; font-size: 12px; }
.iw-error:empty { display: none; }
.iw-tplot { position: relative; }
.iw-tplot svg { display: block; overflow: visible; }
.iw-tlegend { display: flex; gap: 10px; flex-wrap: wrap; font-size: 11px; }
.iw-tlegend label { display: inline-flex; gap: 4px; align-items: center; cursor: pointer; }
.iw-swatch { display: inline-block; width: 12px; height: 3px; border-radius: 1px; }
.iw-tlegend label[data-on="0"] { opacity: 0.45; }
.iw-tmark { position: absolute; width: 10px; height: 10px; margin: -5px 0 0 -5px; border-radius: 50%;
  border: 2px solid var(--iw-fg); pointer-events: none; display: none; }
.iw-tmark[data-visible="1"] { display: block; }
.iw-tooltip canvas { display: block; image-rendering: pixelated; margin-bottom: 3px; outline: 1px solid var(--iw-border); }
.iw-tprompt { font-family: var(--iw-code-font); white-space: pre-wrap; max-width: 360px; display: block; margin-bottom: 3px; }
.iw-vdetail { display: flex; flex-direction: column; gap: 6px; border-top: 1px solid var(--iw-border); padding-top: 6px; }
.iw-vdetail-layers { display: flex; gap: 16px; flex-wrap: wrap; align-items: flex-start; }
.iw-vdetail-layer { display: flex; flex-direction: column; gap: 3px; font-size: 11px; }
.iw-vstrip { display: block; image-rendering: pixelated; outline: 1px solid var(--iw-border); }
`;

export function ensureVisionStyle(doc: Document): void {
  ensureStyle(doc);
  if (doc.getElementById(VISION_STYLE_ID)) return;
  const style = doc.createElement("style");
  style.id = VISION_STYLE_ID;
  style.textContent = VISION_CSS;
  (doc.head ?? doc.documentElement).appendChild(style);
}

/** A canvas showing image `i` of `stack` at `scale` CSS px per pixel (nothing painted where there is no 2D context). */
export function imageCanvas(stack: ImageStack, i: number, scale: number, attrs: Record<string, string | number> = {}): HTMLCanvasElement {
  const canvas = h("canvas", attrs);
  paintImage(canvas, stack, i, scale);
  return canvas;
}

export function paintImage(canvas: HTMLCanvasElement, stack: ImageStack, i: number, scale: number): void {
  canvas.width = stack.w;
  canvas.height = stack.h;
  canvas.style.width = `${Math.round(stack.w * scale)}px`;
  canvas.style.height = `${Math.round(stack.h * scale)}px`;
  const ctx = context2d(canvas);
  if (!ctx) return;
  const img = ctx.createImageData(stack.w, stack.h);
  img.data.set(rgba(stack, i));
  ctx.putImageData(img, 0, 0);
}

import { errorText } from "./run-controls";

export { errorText };

export { callCommand } from "./command";

export { mountAll } from "./features-embed";

/** The embedded document of a static page's `[data-iw-static]` element (base64 payloads decoded). */
export function readStatic<T extends { kind: string; version: number }>(container: HTMLElement, kind: string): T {
  return embedded(container, kind) as T;
}

/** Run `fn` once the document has loaded (a bundle inlined in a static page mounts its views). */
export function onDocumentReady(fn: (doc: Document) => void): void {
  if (typeof document === "undefined") return;
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", () => fn(document));
  else fn(document);
}
