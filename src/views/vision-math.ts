// Pure helpers of the vision views (no DOM): uint8 RGB image stacks, the grid's layout, the tuning
// plot's rows and nearest point, the detail's channel strip. Tested in node (vision.test.ts).
import type { TensorPayload } from "../schema/generated";
import { decodeFloat32, rawUint8 } from "../schema/tensor";

/** `n` RGB images of `h x w` pixels, bytes in [n, h, w, 3] order. */
export interface ImageStack {
  n: number;
  h: number;
  w: number;
  rgb: Uint8Array;
}

export function decodeImages(p: TensorPayload): ImageStack {
  if (p.shape.length !== 4 || p.shape[3] !== 3) {
    throw new Error(`expected uint8 RGB images [n, h, w, 3], got shape [${p.shape}]`);
  }
  const [n, h, w] = p.shape;
  return { n, h, w, rgb: rawUint8(p) };
}

/** Image `i` of `stack` as RGBA bytes (what ImageData holds). */
export function rgba(stack: ImageStack, i: number): Uint8ClampedArray {
  if (!(i >= 0 && i < stack.n)) throw new Error(`image ${i} is out of range: ${stack.n} images`);
  const px = stack.h * stack.w;
  const out = new Uint8ClampedArray(px * 4);
  const base = i * px * 3;
  for (let k = 0; k < px; k++) {
    out[4 * k] = stack.rgb[base + 3 * k];
    out[4 * k + 1] = stack.rgb[base + 3 * k + 1];
    out[4 * k + 2] = stack.rgb[base + 3 * k + 2];
    out[4 * k + 3] = 255;
  }
  return out;
}

/** Thumbnail size in CSS px: images scaled by a whole factor (crisp pixels) to about `target` px. */
export function thumbScale(h: number, w: number, target = 64): number {
  const side = Math.max(h, w, 1);
  return side >= target ? target / side : Math.max(1, Math.floor(target / side));
}

/** Columns of a grid of `n` cells of `cell` px (+ `gap`) in `width` px: at least 1, at most n. */
export function gridColumns(width: number, cell: number, gap: number, n: number): number {
  const fit = Math.floor((Math.max(width, cell) + gap) / (cell + gap));
  return Math.max(1, Math.min(n, fit));
}

/** Short number text for labels and tooltips. */
export function fmt(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return "n/a";
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e4 || a < 1e-3)) return v.toExponential(2);
  return Number(v.toPrecision(4)).toString();
}

// --- tuning curves -------------------------------------------------------------------------------
export interface Curves {
  values: Float32Array; // [n_values]
  units: string[];
  /** activations, row-major [n_units, n_values] */
  acts: Float32Array;
}

export interface CurveRow {
  unit: string;
  u: number;
  i: number;
  x: number;
  y: number;
  /** the raw activation (y is divided by the unit's max when normalised) */
  raw: number;
}

export function decodeCurves(values: TensorPayload, activations: TensorPayload, units: string[]): Curves {
  const v = decodeFloat32(values).values;
  const a = decodeFloat32(activations);
  if (a.shape.length !== 2 || a.shape[0] !== units.length || a.shape[1] !== v.length) {
    throw new Error(`activations of shape [${a.shape}] do not match ${units.length} units x ${v.length} values`);
  }
  return { values: v, units, acts: a.values };
}

/** The largest |activation| of unit `u` (1 when all are 0 or not finite). */
export function unitScale(c: Curves, u: number): number {
  const n = c.values.length;
  let m = 0;
  for (let i = 0; i < n; i++) {
    const y = Math.abs(c.acts[u * n + i]);
    if (Number.isFinite(y) && y > m) m = y;
  }
  return m > 0 ? m : 1;
}

/** One row per (visible unit, stimulus) with a finite activation, in parameter order per unit. */
export function curveRows(c: Curves, visible: readonly boolean[], normalize = false): CurveRow[] {
  const n = c.values.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => c.values[a] - c.values[b]);
  const rows: CurveRow[] = [];
  c.units.forEach((unit, u) => {
    if (!visible[u]) return;
    const s = normalize ? unitScale(c, u) : 1;
    for (const i of order) {
      const raw = c.acts[u * n + i];
      if (Number.isFinite(raw) && Number.isFinite(c.values[i])) rows.push({ unit, u, i, x: c.values[i], y: raw / s, raw });
    }
  });
  return rows;
}

/** The parameter value where each unit peaks (first maximum; NaN when it has no finite value). */
export function peaks(c: Curves): number[] {
  const n = c.values.length;
  return c.units.map((_, u) => {
    let best = -1;
    for (let i = 0; i < n; i++) {
      const y = c.acts[u * n + i];
      if (Number.isFinite(y) && (best < 0 || y > c.acts[u * n + best])) best = i;
    }
    return best < 0 ? Number.NaN : c.values[best];
  });
}

/** The row nearest to (px, py) in screen space within `maxDist` px, or null. `project` maps a row to px. */
export function nearestRow(
  rows: readonly CurveRow[],
  project: (r: CurveRow) => [number, number],
  px: number,
  py: number,
  maxDist = 24,
): CurveRow | null {
  let best: CurveRow | null = null;
  let bestD = maxDist * maxDist;
  for (const r of rows) {
    const [x, y] = project(r);
    const d = (x - px) ** 2 + (y - py) ** 2;
    if (d <= bestD) {
      bestD = d;
      best = r;
    }
  }
  return best;
}

/** [lo, hi] covering `ys` and 0, padded 5% (a flat curve still gets a range). */
export function yDomain(ys: readonly number[]): [number, number] {
  let lo = 0;
  let hi = 0;
  for (const y of ys) {
    if (!Number.isFinite(y)) continue;
    if (y < lo) lo = y;
    if (y > hi) hi = y;
  }
  const pad = (hi - lo || 1) * 0.05;
  return [lo - (lo < 0 ? pad : 0), hi + pad];
}

/** A categorical palette readable on light and dark backgrounds (Observable 10). */
export const PALETTE = ["#4269d0", "#efb118", "#ff725c", "#6cc5b0", "#3ca951", "#ff8ab7", "#a463f2", "#97bbf5", "#9c6b4e", "#9498a0"];

export function unitColor(u: number): string {
  return PALETTE[u % PALETTE.length];
}

/** `"conv2:5"` or `"conv2:5@3,4"` -> `{layer: "conv2", channel: 5}`; null for other names. */
export function unitChannel(unit: string): { layer: string; channel: number } | null {
  const m = /^(.+?):(\d+)(?:@.*)?$/.exec(unit);
  return m ? { layer: m[1], channel: Number(m[2]) } : null;
}

/** Values mapped to [0, 1] over their finite min..max (all equal: 0.5). */
export function unitInterval(values: ArrayLike<number>): Float32Array {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (Number.isFinite(v)) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    out[i] = !Number.isFinite(v) ? 0 : hi > lo ? (v - lo) / (hi - lo) : 0.5;
  }
  return out;
}
