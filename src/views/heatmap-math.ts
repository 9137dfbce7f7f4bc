// Heatmap math, free of the DOM: decoding a HeatmapData, taking the 2-D grid shown (rows x cols, the
// other axes at one index each), the colour scale, the layout and hit testing.
import type { HeatmapData } from "../schema/generated";
import { decodeFloat32 } from "../schema/tensor";
import type { RGB } from "../attention/theme";

export interface Heatmap {
  title: string;
  kind: string;
  sites: string;
  metric: string;
  axes: string[];
  labels: string[][];
  shape: number[];
  /** C order over `shape`; NaN where a cell does not exist */
  values: Float32Array;
  rows: number;
  cols: number | null;
  /** per axis: the index shown (ignored for the rows / cols axes) */
  slice: number[];
  clean: number | null;
  corrupted: number | null;
  normalized: boolean;
  scale: "diverging" | "sequential";
  center: number;
  note: string;
}

export function decodeHeatmap(d: HeatmapData): Heatmap {
  const t = decodeFloat32(d.values);
  const n = d.axes.length;
  if (d.labels.length !== n || t.shape.length !== n || t.shape.some((s, i) => s !== d.labels[i].length)) {
    throw new Error(`heatmap values of shape [${t.shape}] do not match the labels of axes ${JSON.stringify(d.axes)}`);
  }
  if (d.rows >= n || (d.cols !== null && (d.cols >= n || d.cols === d.rows))) {
    throw new Error(`heatmap rows=${d.rows} / cols=${d.cols} are not two different axes of ${JSON.stringify(d.axes)}`);
  }
  return {
    title: d.title, kind: d.kind, sites: d.sites, metric: d.metric, axes: d.axes, labels: d.labels,
    shape: t.shape, values: t.values, rows: d.rows, cols: d.cols,
    slice: d.axes.map((_, i) => clampIndex(d.slice[i] ?? 0, t.shape[i])),
    clean: d.clean_metric, corrupted: d.corrupted_metric, normalized: d.normalized,
    scale: d.scale, center: d.center, note: d.note,
  };
}

function clampIndex(i: number, n: number): number {
  return Math.max(0, Math.min(n - 1, Math.trunc(i)));
}

/** Axes that are neither rows nor columns: each gets a selector. */
export function slicedAxes(h: Heatmap): number[] {
  return h.axes.map((_, i) => i).filter((i) => i !== h.rows && i !== h.cols);
}

/** C-order strides of `shape`. */
export function strides(shape: readonly number[]): number[] {
  const out = new Array<number>(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) out[i] = out[i + 1] * shape[i + 1];
  return out;
}

export interface Grid {
  nRows: number;
  nCols: number;
  /** row-major nRows x nCols */
  values: Float32Array;
}

/** The grid shown: rows axis down, cols axis across (one column if none), other axes at `slice`. */
export function gridOf(h: Heatmap, slice: readonly number[] = h.slice): Grid {
  const st = strides(h.shape);
  let base = 0;
  for (const a of slicedAxes(h)) base += clampIndex(slice[a], h.shape[a]) * st[a];
  const nRows = h.shape[h.rows];
  const nCols = h.cols === null ? 1 : h.shape[h.cols];
  const cs = h.cols === null ? 0 : st[h.cols];
  const values = new Float32Array(nRows * nCols);
  for (let r = 0; r < nRows; r++) {
    for (let c = 0; c < nCols; c++) values[r * nCols + c] = h.values[base + r * st[h.rows] + c * cs];
  }
  return { nRows, nCols, values };
}

/** The full index (one entry per axis) of grid cell (row, col). */
export function cellIndex(h: Heatmap, row: number, col: number, slice: readonly number[] = h.slice): number[] {
  const idx = h.axes.map((_, i) => clampIndex(slice[i], h.shape[i]));
  idx[h.rows] = row;
  if (h.cols !== null) idx[h.cols] = col;
  return idx;
}

export interface Range {
  lo: number;
  hi: number;
}

/** Colour range: symmetric around `center` (diverging) or min(0, min)..max (sequential). */
export function colorRange(values: ArrayLike<number>, scale: Heatmap["scale"], center: number): Range {
  let span = 0;
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isFinite(v)) continue;
    span = Math.max(span, Math.abs(v - center));
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  if (scale === "diverging") {
    const s = span > 0 ? span : 1;
    return { lo: center - s, hi: center + s };
  }
  if (!Number.isFinite(lo)) return { lo: 0, hi: 1 };
  lo = Math.min(0, lo);
  return { lo, hi: hi > lo ? hi : lo + 1 };
}

/** LUT index 0..255 of `v` on `range` (clipped); -1 for NaN. */
export function colorIndex(v: number, range: Range): number {
  if (Number.isNaN(v)) return -1;
  const t = (v - range.lo) / (range.hi - range.lo);
  if (!(t > 0)) return 0;
  return t >= 1 ? 255 : Math.round(t * 255);
}

/** 256 RGBA entries: `neg` at 0, `bg` at the middle, `pos` at 255. */
export function divergingLut(neg: RGB, bg: RGB, pos: RGB): Uint8ClampedArray {
  const lut = new Uint8ClampedArray(256 * 4);
  for (let i = 0; i < 256; i++) {
    const t = (i - 127.5) / 127.5;
    const to = t < 0 ? neg : pos;
    const a = Math.abs(t);
    for (let c = 0; c < 3; c++) lut[4 * i + c] = Math.round(bg[c] + (to[c] - bg[c]) * a);
    lut[4 * i + 3] = 255;
  }
  return lut;
}

/** `(v - corrupted) / (clean - corrupted)`: 0 = corrupted run, 1 = clean run (null where undefined). */
export function normalizedValue(v: number, clean: number | null, corrupted: number | null): number | null {
  if (clean === null || corrupted === null || !Number.isFinite(v)) return null;
  const d = clean - corrupted;
  return Math.abs(d) > 1e-12 ? (v - corrupted) / d : null;
}

export function formatValue(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return "n/a";
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(2);
  return String(Number(v.toPrecision(4)));
}

export interface HeatmapLayout {
  /** CSS px of one cell (square) */
  cell: number;
  /** room for row labels / column labels */
  left: number;
  top: number;
  width: number;
  height: number;
  nRows: number;
  nCols: number;
}

/** Fit `nRows x nCols` cells into `width` px (cells 6..36 px) with room for the labels. */
export function heatmapLayout(
  width: number, nRows: number, nCols: number,
  opts: { rowLabel?: number; colLabel?: number; min?: number; max?: number } = {},
): HeatmapLayout {
  const left = opts.rowLabel ?? 48;
  const top = opts.colLabel ?? 28;
  const min = opts.min ?? 6;
  const max = opts.max ?? 36;
  const cell = Math.max(min, Math.min(max, Math.floor((width - left - 8) / Math.max(1, nCols))));
  return { cell, left, top, width: left + nCols * cell + 8, height: top + nRows * cell + 4, nRows, nCols };
}

/** The cell under (x, y) in CSS px from the canvas's top left, or null. */
export function heatmapCellAt(l: HeatmapLayout, x: number, y: number): { row: number; col: number } | null {
  const col = Math.floor((x - l.left) / l.cell);
  const row = Math.floor((y - l.top) / l.cell);
  return row >= 0 && row < l.nRows && col >= 0 && col < l.nCols ? { row, col } : null;
}

/** Width in px a label list needs at `fontPx` (rough: 0.6 em per character, capped). */
export function labelWidth(labels: readonly string[], fontPx: number, cap = 140): number {
  let n = 0;
  for (const s of labels) n = Math.max(n, s.length);
  return Math.min(cap, Math.ceil(n * fontPx * 0.6) + 10);
}

/** (layer, head) of a cell when the heatmap has both axes (a head is clickable), else null. */
export function headOf(h: Heatmap, index: readonly number[]): { layer: number; head: number } | null {
  const li = h.axes.indexOf("layer");
  const hi = h.axes.indexOf("head");
  if (li < 0 || hi < 0) return null;
  const layer = Number(h.labels[li][index[li]]);
  const head = Number(h.labels[hi][index[hi]]);
  return Number.isInteger(layer) && Number.isInteger(head) ? { layer, head } : null;
}

/** Grid cell of (layer, head) under the current slice, or null if the grid does not show heads. */
export function cellOfHead(h: Heatmap, layer: number, head: number): { row: number; col: number } | null {
  const li = h.axes.indexOf("layer");
  const hi = h.axes.indexOf("head");
  if (li < 0 || hi < 0 || h.cols === null) return null;
  const set = new Set([h.rows, h.cols]);
  if (!set.has(li) || !set.has(hi)) return null;
  const l = h.labels[li].indexOf(String(layer));
  const k = h.labels[hi].indexOf(String(head));
  if (l < 0 || k < 0) return null;
  return h.rows === li ? { row: l, col: k } : { row: k, col: l };
}

/** Index of the largest |value - center| (NaN skipped), or -1. */
export function strongest(values: ArrayLike<number>, center: number): number {
  let best = -1;
  let bv = -1;
  for (let i = 0; i < values.length; i++) {
    const d = Math.abs(values[i] - center);
    if (Number.isFinite(d) && d > bv) {
      bv = d;
      best = i;
    }
  }
  return best;
}
