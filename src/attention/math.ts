// Layout and downsampling math of the attention view. Pure functions, no DOM.

/** Start index of each of `size` max-pooling blocks over `n` items: block i is [floor(i*n/size), floor((i+1)*n/size)).
 * Same formula as interp_widget/widgets/_patterns.py:pool_edges. When size >= n every block is one item. */
export function poolEdges(n: number, size: number): number[] {
  const m = Math.min(n, size);
  const edges: number[] = [];
  for (let i = 0; i < m; i++) edges.push(Math.floor((i * n) / m));
  return edges;
}

/** The pooling block (of `m = min(n, size)`) that item `x` of `n` falls in: inverse of poolEdges. */
export function blockOf(x: number, n: number, size: number): number {
  const m = Math.min(n, size);
  return Math.ceil(((x + 1) * m) / n) - 1;
}

/** Max-pool a row-major `rows x cols` matrix to at most `outRows x outCols` (blocks from poolEdges). */
export function maxPool2d(
  values: ArrayLike<number>,
  rows: number,
  cols: number,
  outRows: number,
  outCols: number,
): { rows: number; cols: number; values: Float32Array } {
  const re = poolEdges(rows, outRows);
  const ce = poolEdges(cols, outCols);
  const r = re.length;
  const c = ce.length;
  const out = new Float32Array(r * c);
  for (let i = 0; i < r; i++) {
    const r0 = re[i];
    const r1 = i + 1 < r ? re[i + 1] : rows;
    for (let j = 0; j < c; j++) {
      const c0 = ce[j];
      const c1 = j + 1 < c ? ce[j + 1] : cols;
      let best = Number.NEGATIVE_INFINITY;
      for (let y = r0; y < r1; y++) {
        const base = y * cols;
        for (let x = c0; x < c1; x++) {
          const v = values[base + x];
          if (v > best) best = v;
        }
      }
      out[i * c + j] = best;
    }
  }
  return { rows: r, cols: c, values: out };
}

/** A window of `size` positions starting near `start`, clamped into [0, n). */
export function clampStart(start: number, size: number, n: number): number {
  const s = Math.min(size, n);
  return Math.max(0, Math.min(Math.round(start), n - s));
}

/** The window [start, start + size) that puts `center` in the middle, clamped into [0, n). */
export function windowAround(center: number, size: number, n: number): [number, number] {
  const s = Math.min(size, n);
  const start = clampStart(center - Math.floor(s / 2), s, n);
  return [start, start + s];
}

export interface GridLayout {
  /** CSS pixels of one head's square cell */
  cell: number;
  /** gap between cells */
  gap: number;
  /** width of the layer-label column */
  labelWidth: number;
}

/** Size the overview grid (n_layers rows x n_heads columns) to fit `width` CSS pixels. */
export function gridLayout(width: number, nHeads: number, opts: { min?: number; max?: number } = {}): GridLayout {
  const min = opts.min ?? 14;
  const max = opts.max ?? 56;
  const labelWidth = 34;
  const gap = nHeads > 24 ? 1 : 2;
  const avail = Math.max(0, width - labelWidth - 8);
  const cell = Math.floor(avail / nHeads) - gap;
  return { cell: Math.max(min, Math.min(max, cell)), gap, labelWidth };
}

export interface DetailLayout {
  /** left margin (query/destination labels) in CSS px */
  left: number;
  /** top margin (key/source labels) in CSS px */
  top: number;
  /** CSS px per token cell */
  cell: number;
  rows: number;
  cols: number;
  width: number;
  height: number;
}

/** Size the detail heatmap: `rows` query positions x `cols` key positions within `width` CSS px. */
export function detailLayout(width: number, rows: number, cols: number): DetailLayout {
  const left = 96;
  const top = 74;
  const cell = Math.max(6, Math.min(22, Math.floor((width - left - 4) / Math.max(1, cols))));
  return { left, top, cell, rows, cols, width: left + cols * cell, height: top + rows * cell };
}

/** Which (row, col) of the detail heatmap a point in canvas CSS px falls on, or null outside. */
export function cellAt(layout: DetailLayout, x: number, y: number): { row: number; col: number } | null {
  const col = Math.floor((x - layout.left) / layout.cell);
  const row = Math.floor((y - layout.top) / layout.cell);
  if (x < layout.left || y < layout.top || col < 0 || row < 0 || col >= layout.cols || row >= layout.rows) return null;
  return { row, col };
}

/** Readable token label: whitespace made visible, long tokens shortened. */
export function tokenLabel(tok: string, max = 10): string {
  const shown = tok === "" ? "∅" : tok.replace(/ /g, "␣").replace(/\n/g, "⏎").replace(/\t/g, "⇥");
  return shown.length > max ? `${shown.slice(0, max - 1)}…` : shown;
}

/** Index of the largest finite value (NaN and ±Infinity skipped), -1 if none. */
export function argmax(values: ArrayLike<number>): number {
  let best = -1;
  let bestV = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (Number.isFinite(v) && v > bestV) {
      bestV = v;
      best = i;
    }
  }
  return best;
}
