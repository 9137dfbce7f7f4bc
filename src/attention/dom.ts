// Small DOM helpers shared by the parts of the attention view.
import type { AttentionData, Window } from "./model";
import type { Selection, Store } from "./store";
import type { Theme } from "./theme";

/** What every part of the view shares. */
export interface ViewContext {
  root: HTMLElement;
  data: AttentionData;
  selection: Store<Selection>;
  theme(): Theme;
  lut(): Uint8ClampedArray;
  tooltip: Tooltip;
  /** width available to the view in CSS px */
  width(): number;
}

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") el.className = String(v);
    else el.setAttribute(k, String(v));
  }
  el.append(...children);
  return el;
}

/** Size a canvas for `w x h` CSS px at the device pixel ratio; returns its 2D context (null where there is none, e.g. jsdom). */
export function sizeCanvas(canvas: HTMLCanvasElement, w: number, h: number): CanvasRenderingContext2D | null {
  const dpr = typeof devicePixelRatio === "number" && devicePixelRatio > 0 ? devicePixelRatio : 1;
  canvas.style.width = `${w}px`;
  canvas.style.height = `${h}px`;
  canvas.width = Math.max(1, Math.round(w * dpr));
  canvas.height = Math.max(1, Math.round(h * dpr));
  const ctx = context2d(canvas);
  ctx?.setTransform(dpr, 0, 0, dpr, 0, 0);
  return ctx;
}

export function context2d(canvas: HTMLCanvasElement): CanvasRenderingContext2D | null {
  try {
    return canvas.getContext("2d");
  } catch {
    return null;
  }
}

/** Paint values in [0, 1] (row-major `rows x cols`) into `canvas` at one pixel per value. */
export function paintValues(
  canvas: HTMLCanvasElement,
  values: ArrayLike<number>,
  rows: number,
  cols: number,
  lut: Uint8ClampedArray,
  toIndex: (v: number) => number,
): void {
  canvas.width = cols;
  canvas.height = rows;
  const ctx = context2d(canvas);
  if (!ctx) return;
  const img = ctx.createImageData(cols, rows);
  const px = img.data;
  for (let i = 0; i < rows * cols; i++) {
    const j = toIndex(values[i]) * 4;
    px[4 * i] = lut[j];
    px[4 * i + 1] = lut[j + 1];
    px[4 * i + 2] = lut[j + 2];
    px[4 * i + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}

export interface Tooltip {
  el: HTMLElement;
  show(content: (Node | string)[], clientX: number, clientY: number): void;
  hide(): void;
}

export function createTooltip(root: HTMLElement): Tooltip {
  const el = h("div", { class: "iw-tooltip", "data-testid": "iw-tooltip", role: "tooltip" });
  root.append(el);
  return {
    el,
    show(content, clientX, clientY) {
      el.replaceChildren(...content);
      el.dataset.visible = "1";
      const box = root.getBoundingClientRect();
      el.style.left = `${Math.max(0, clientX - box.left + 12)}px`;
      el.style.top = `${Math.max(0, clientY - box.top + 12)}px`;
    },
    hide() {
      el.dataset.visible = "0";
    },
  };
}

/** A token shown in tooltips: `<span class="iw-tok">`. */
export function tokenSpan(text: string, role: string): HTMLElement {
  return h("span", { class: "iw-tok", "data-role": role }, text);
}

export function headLabel(layer: number, head: number): string {
  return `L${layer}H${head}`;
}

export function sameHead(w: Window | null | undefined, s: Selection): boolean {
  return !!w && w.prompt === s.prompt && w.layer === s.layer && w.head === s.head;
}

export function formatWeight(v: number): string {
  return Number.isFinite(v) ? v.toFixed(3) : "n/a";
}
