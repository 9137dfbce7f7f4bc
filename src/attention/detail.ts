// Detail view of the selected head: a token-by-token heatmap of the visible window (queries are
// rows, keys columns) on one canvas, a minimap of the whole head to move the window, and a
// tooltip with the source token, destination token and weight under the pointer.
import type { GetPatternRequest } from "../schema/generated";
import {
  type ViewContext, context2d, formatWeight, h, headLabel, paintValues, sameHead, sizeCanvas, tokenSpan,
} from "./dom";
import { type DetailLayout, cellAt, clampStart, detailLayout, tokenLabel, windowAround } from "./math";
import { type Window, isExact, thumbWindow, valueAt } from "./model";
import type { PatternSource } from "./source";
import type { Selection } from "./store";
import { lutIndex, rgbCss } from "./theme";

export interface DetailOptions {
  source: PatternSource & { peek(req: GetPatternRequest): Window | undefined };
  windowSize: number;
  initialWindow?: Window | null;
  /** the first time the selected head's exact window is on screen (or failed to load) */
  onSettled(): void;
  /** resolution of the minimap requested from the source */
  minimapSize?: number;
}

export interface DetailPart {
  el: HTMLElement;
  canvas: HTMLCanvasElement;
  /** the selection changed: keep the window position within a prompt, reset it across prompts */
  onSelection(previous: Selection | null): void;
  redraw(): void;
  /** move the window so that it starts at (q0, k0) */
  moveTo(q0: number, k0: number): void;
  bounds(): { q0: number; q1: number; k0: number; k1: number };
  destroy(): void;
}

const MINIMAP_PX = 150;

export function createDetail(ctx: ViewContext, opts: DetailOptions): DetailPart {
  const { data, selection } = ctx;
  const title = h("div", { class: "iw-title", "data-testid": "iw-detail-title" });
  const canvas = h("canvas", {
    class: "iw-detail-canvas",
    "data-testid": "iw-detail-canvas",
    tabindex: 0,
    "aria-label": "attention pattern of the selected head; rows are destination (query) tokens, columns source (key) tokens",
  });
  const minimap = h("canvas", { class: "iw-minimap", "data-testid": "iw-minimap", "aria-label": "whole head; click to move the window" });
  const box = h("div", { "data-testid": "iw-minimap-box" });
  box.style.cssText = "position:absolute;pointer-events:none;border:1.5px solid var(--iw-accent);";
  const miniWrap = h("div", {}, minimap, box);
  miniWrap.style.cssText = `position:relative;width:${MINIMAP_PX}px;height:${MINIMAP_PX}px;`;
  minimap.style.width = minimap.style.height = `${MINIMAP_PX}px`;
  const status = h("div", { class: "iw-status", "data-testid": "iw-status", "aria-live": "polite" });
  const help = h("div", { class: "iw-muted" },
    "Wheel or ↑↓: move along the diagonal. Shift+wheel or ←→: move the keys. Click the minimap to jump.");
  const side = h("div", { class: "iw-side" }, miniWrap, help, status);
  const el = h("div", { class: "iw-panel iw-detail", "data-testid": "iw-detail" },
    title, h("div", { class: "iw-detail-row" }, canvas, side));

  let q0 = 0;
  let k0 = 0;
  let exact: Window | null = null;
  let mini: Window | null = null;
  let layout: DetailLayout | null = null;
  let hover: { row: number; col: number } | null = null;
  let pending: AbortController | null = null;
  let settled = false;
  let failed = false;
  let frame = 0;
  let initial = opts.initialWindow ?? null;

  const n = () => data.prompts[selection.get().prompt].tokens.length;
  const size = () => Math.min(opts.windowSize, n());
  const bounds = () => ({ q0, q1: q0 + size(), k0, k1: k0 + size() });
  const request = (): GetPatternRequest => ({ ...selection.get(), ...bounds(), precision: "float16" });
  const isCurrent = (w: Window) => {
    const b = bounds();
    return sameHead(w, selection.get()) && w.q0 === b.q0 && w.q1 === b.q1 && w.k0 === b.k0 && w.k1 === b.k1;
  };

  const setStatus = (text: string, kind: "info" | "error" = "info") => {
    status.textContent = text;
    status.dataset.kind = kind;
  };

  const settle = () => {
    if (!settled) {
      settled = true;
      opts.onSettled();
    }
  };

  function draw(): void {
    frame = 0;
    const s = selection.get();
    const tokens = data.prompts[s.prompt].tokens;
    const b = bounds();
    const rows = b.q1 - b.q0;
    const cols = b.k1 - b.k0;
    layout = detailLayout(Math.max(320, ctx.width() - MINIMAP_PX - 90), rows, cols);
    const L = layout;
    title.textContent = `${headLabel(s.layer, s.head)} · queries ${b.q0}–${b.q1 - 1} × keys ${b.k0}–${b.k1 - 1} of ${tokens.length} tokens`
      + (exact ? "" : failed ? " (not available)" : " (loading…)");
    canvas.dataset.layer = String(s.layer);
    canvas.dataset.head = String(s.head);
    canvas.dataset.q0 = String(b.q0);
    canvas.dataset.k0 = String(b.k0);
    canvas.dataset.exact = exact ? "1" : "0";
    const g = sizeCanvas(canvas, L.width, L.height);
    if (!g) return;
    const theme = ctx.theme();
    g.fillStyle = rgbCss(theme.bg);
    g.fillRect(0, 0, L.width, L.height);
    // cells: one pixel per token pair on an offscreen canvas, scaled up without smoothing; until the
    // exact window is here, the minimap stands in if it is fine enough (a pooled cell of <= 4 tokens)
    const fine = mini && (mini.q1 - mini.q0) / mini.rows <= 4 && (mini.k1 - mini.k0) / mini.cols <= 4;
    const src = exact ?? (fine ? mini : null);
    if (src) {
      const vals = new Float32Array(rows * cols);
      for (let r = 0; r < rows; r++) {
        for (let c = 0; c < cols; c++) {
          vals[r * cols + c] = exact ? exact.values[r * exact.cols + c] : valueAt(src, b.q0 + r, b.k0 + c);
        }
      }
      const off = document.createElement("canvas");
      paintValues(off, vals, rows, cols, ctx.lut(), lutIndex);
      g.imageSmoothingEnabled = false;
      g.drawImage(off, L.left, L.top, cols * L.cell, rows * L.cell);
    }
    // labels
    const fontPx = Math.max(8, Math.min(12, L.cell - 2));
    const every = L.cell >= 9 ? 1 : Math.ceil(9 / L.cell);
    g.font = `${fontPx}px ${theme.font}`;
    g.textBaseline = "middle";
    for (let r = 0; r < rows; r += every) {
      g.fillStyle = hover?.row === r ? theme.accent : theme.fg;
      g.textAlign = "right";
      g.fillText(tokenLabel(tokens[b.q0 + r]), L.left - 4, L.top + (r + 0.5) * L.cell, L.left - 6);
    }
    for (let c = 0; c < cols; c += every) {
      g.save();
      g.translate(L.left + (c + 0.5) * L.cell, L.top - 4);
      g.rotate(-Math.PI / 2);
      g.fillStyle = hover?.col === c ? theme.accent : theme.fg;
      g.textAlign = "left";
      g.fillText(tokenLabel(tokens[b.k0 + c]), 0, 0, L.top - 6);
      g.restore();
    }
    g.fillStyle = theme.muted;
    g.textAlign = "left";
    g.fillText("dest ↓  src →", 2, 8);
    if (hover) {
      g.strokeStyle = theme.accent;
      g.lineWidth = 1.5;
      g.strokeRect(L.left + hover.col * L.cell, L.top + hover.row * L.cell, L.cell, L.cell);
    }
  }

  const schedule = () => {
    if (frame) return;
    frame = typeof requestAnimationFrame === "function" ? requestAnimationFrame(draw) : (setTimeout(draw, 0) as unknown as number);
  };

  function drawMinimap(): void {
    const nn = n();
    if (mini) paintValues(minimap, mini.values, mini.rows, mini.cols, ctx.lut(), lutIndex);
    const b = bounds();
    const pct = (v: number) => `${(100 * v) / nn}%`;
    Object.assign(box.style, { left: pct(b.k0), top: pct(b.q0), width: pct(b.k1 - b.k0), height: pct(b.q1 - b.q0) });
  }

  function loadMinimap(): void {
    const s = selection.get();
    if (sameHead(mini, s)) return;
    mini = thumbWindow(data, s.prompt, s.layer, s.head);
    const nn = n();
    const want = Math.min(nn, opts.minimapSize ?? 128);
    if (mini.rows >= want) return;
    const req: GetPatternRequest = { ...s, q0: 0, q1: nn, k0: 0, k1: nn, max_size: want, precision: "uint8" };
    opts.source.getWindow(req).then((w) => {
      if (!sameHead(w, selection.get())) return;
      mini = w;
      drawMinimap();
      if (!exact) schedule();
    }, () => { /* keep the thumbnail */ });
  }

  function refresh(): void {
    loadMinimap();
    const req = request();
    const known = opts.source.peek(req) ?? (initial && isCurrent(initial) ? initial : undefined);
    pending?.abort();
    pending = null;
    failed = false;
    if (known && isExact(known)) {
      exact = known;
      setStatus("");
      draw();
      drawMinimap();
      settle();
      return;
    }
    exact = null;
    drawMinimap();
    schedule();
    setStatus("loading…");
    const ctrl = new AbortController();
    pending = ctrl;
    opts.source.getWindow(req, ctrl.signal).then(
      (w) => {
        if (ctrl.signal.aborted || !isCurrent(w)) return;
        pending = null;
        exact = w;
        setStatus("");
        draw();
        settle();
      },
      (err: unknown) => {
        if (ctrl.signal.aborted) return;
        pending = null;
        failed = true;
        setStatus(err instanceof Error ? err.message : String(err), "error");
        draw();
        settle();
      },
    );
  }

  function moveTo(nq0: number, nk0: number): void {
    const nq = clampStart(nq0, size(), n());
    const nk = clampStart(nk0, size(), n());
    if (nq === q0 && nk === k0) return;
    q0 = nq;
    k0 = nk;
    refresh();
  }

  // --- interaction -------------------------------------------------------------
  const pointerCell = (ev: MouseEvent) => {
    if (!layout) return null;
    const r = canvas.getBoundingClientRect();
    return cellAt(layout, ev.clientX - r.left, ev.clientY - r.top);
  };
  canvas.addEventListener("mousemove", (ev) => {
    const cell = pointerCell(ev);
    if (!cell) {
      if (hover) { hover = null; schedule(); }
      return ctx.tooltip.hide();
    }
    const s = selection.get();
    const tokens = data.prompts[s.prompt].tokens;
    const q = q0 + cell.row;
    const k = k0 + cell.col;
    const w = exact ? exact.values[cell.row * exact.cols + cell.col] : Number.NaN;
    ctx.tooltip.show([
      h("b", {}, headLabel(s.layer, s.head)), " destination ", tokenSpan(tokenLabel(tokens[q], 24), "dest"), ` (q=${q}) ← source `,
      tokenSpan(tokenLabel(tokens[k], 24), "src"), ` (k=${k}): `,
      h("b", { "data-role": "weight" }, exact ? formatWeight(w) : "…"),
    ], ev.clientX, ev.clientY);
    if (!hover || hover.row !== cell.row || hover.col !== cell.col) {
      hover = cell;
      schedule();
    }
  });
  canvas.addEventListener("mouseleave", () => {
    ctx.tooltip.hide();
    hover = null;
    schedule();
  });
  canvas.addEventListener("wheel", (ev) => {
    if (size() >= n()) return;
    ev.preventDefault();
    const step = Math.max(1, Math.round(size() / 8));
    const horizontal = ev.shiftKey || Math.abs(ev.deltaX) > Math.abs(ev.deltaY);
    const dir = Math.sign(horizontal ? ev.deltaX || ev.deltaY : ev.deltaY);
    if (horizontal) moveTo(q0, k0 + dir * step);
    else moveTo(q0 + dir * step, k0 + dir * step);
  }, { passive: false });
  canvas.addEventListener("keydown", (ev) => {
    const step = Math.max(1, Math.round(size() / 8));
    const moves: Record<string, [number, number]> = {
      ArrowDown: [step, step], ArrowUp: [-step, -step], ArrowRight: [0, step], ArrowLeft: [0, -step],
      PageDown: [size(), size()], PageUp: [-size(), -size()],
    };
    if (ev.key === "Home") moveTo(0, 0);
    else if (ev.key === "End") moveTo(n(), n());
    else if (moves[ev.key]) moveTo(q0 + moves[ev.key][0], k0 + moves[ev.key][1]);
    else return;
    ev.preventDefault();
  });
  minimap.addEventListener("click", (ev) => {
    const r = minimap.getBoundingClientRect();
    const fx = (ev.clientX - r.left) / MINIMAP_PX;
    const fy = (ev.clientY - r.top) / MINIMAP_PX;
    const nn = n();
    moveTo(windowAround(Math.floor(fy * nn), size(), nn)[0], windowAround(Math.floor(fx * nn), size(), nn)[0]);
  });

  return {
    el,
    canvas,
    onSelection(previous) {
      const s = selection.get();
      if (!previous || previous.prompt !== s.prompt) {
        q0 = clampStart(initial && sameHead(initial, s) ? initial.q0 : 0, size(), n());
        k0 = clampStart(initial && sameHead(initial, s) ? initial.k0 : 0, size(), n());
      }
      hover = null;
      refresh();
    },
    redraw() {
      draw();
      drawMinimap();
    },
    moveTo,
    bounds,
    destroy() {
      pending?.abort();
      initial = null;
      if (frame && typeof cancelAnimationFrame === "function") cancelAnimationFrame(frame);
      const g = context2d(canvas);
      g?.clearRect(0, 0, canvas.width, canvas.height);
    },
  };
}
