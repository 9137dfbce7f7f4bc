// The result heatmap: one canvas of rows x cols cells with axis labels, a selector per sliced axis, a
// colour legend and a tooltip with the cell's labels, value and the clean / corrupted metrics.
// It knows nothing of anywidget: `set()` gives it a decoded Heatmap, `onCellClick` reports clicks.
import { type Tooltip, context2d, h, sizeCanvas } from "../attention/dom";
import { type RGB, type Theme, heatLut, rgbCss } from "../attention/theme";
import {
  type Grid, type Heatmap, type HeatmapLayout, type Range, cellIndex, cellOfHead, colorIndex, colorRange,
  divergingLut, formatValue, gridOf, headOf, heatmapCellAt, heatmapLayout, labelWidth, normalizedValue,
  slicedAxes, strongest,
} from "./heatmap-math";

export interface HeatmapContext {
  root: HTMLElement;
  theme(): Theme;
  tooltip: Tooltip;
  /** width available in CSS px */
  width(): number;
}

export interface CellInfo {
  /** one index per axis */
  index: number[];
  row: number;
  col: number;
  value: number;
  /** (layer, head) when the heatmap's cells are heads */
  head: { layer: number; head: number } | null;
}

export interface HeatmapPart {
  el: HTMLElement;
  canvas: HTMLCanvasElement;
  /** show `data` (null: an empty placeholder) */
  set(data: Heatmap | null): void;
  /** outline the cell of this head (null: none) */
  mark(head: { layer: number; head: number } | null): void;
  redraw(): void;
  /** the grid on screen and its layout (for tests) */
  current(): { data: Heatmap; grid: Grid; layout: HeatmapLayout; range: Range } | null;
}

const NEG: Record<"light" | "dark", RGB> = { light: [178, 24, 43], dark: [239, 138, 98] };
const POS: Record<"light" | "dark", RGB> = { light: [33, 102, 172], dark: [103, 169, 207] };

/** The 256-entry colour table of a heatmap's scale in `theme`. */
export function heatmapLut(theme: Theme, scale: Heatmap["scale"]): Uint8ClampedArray {
  const mode = theme.dark ? "dark" : "light";
  return scale === "diverging" ? divergingLut(NEG[mode], theme.bg, POS[mode]) : heatLut(theme);
}

function axisLabel(axis: string, label: string): string {
  if (axis === "layer") return `L${label}`;
  if (axis === "head") return `H${label}`;
  return label;
}

export function createHeatmap(ctx: HeatmapContext, opts: { onCellClick?(cell: CellInfo): void } = {}): HeatmapPart {
  const title = h("div", { class: "iw-title", "data-testid": "iw-heatmap-title" });
  const note = h("div", { class: "iw-muted iw-hm-note", "data-testid": "iw-heatmap-note" });
  const metrics = h("div", { class: "iw-muted", "data-testid": "iw-heatmap-metrics" });
  const slices = h("div", { class: "iw-controls", "data-testid": "iw-heatmap-slices" });
  const canvas = h("canvas", {
    class: "iw-hm-canvas", "data-testid": "iw-heatmap-canvas", tabindex: 0,
    "aria-label": "result heatmap; hover a cell for its value, click a head to open its attention pattern",
  });
  const legendBar = h("canvas", { class: "iw-hm-legend-bar", "data-testid": "iw-heatmap-legend" });
  const legendText = h("span", { class: "iw-muted", "data-role": "range" });
  const legend = h("div", { class: "iw-hm-legend" }, legendBar, legendText);
  const empty = h("div", { class: "iw-muted", "data-testid": "iw-heatmap-empty" }, "No result yet: run patching.");
  const el = h("div", { class: "iw-panel iw-heatmap", "data-testid": "iw-heatmap", "data-version": 0 },
    title, metrics, slices, canvas, legend, note, empty);

  let data: Heatmap | null = null;
  let slice: number[] = [];
  let grid: Grid | null = null;
  let layout: HeatmapLayout | null = null;
  let range: Range = { lo: 0, hi: 1 };
  let marked: { layer: number; head: number } | null = null;
  let hover: { row: number; col: number } | null = null;
  let focus: { row: number; col: number } | null = null;
  let version = 0;

  function draw(): void {
    if (!data || !grid) return;
    const theme = ctx.theme();
    const rowAxis = data.axes[data.rows];
    const colAxis = data.cols === null ? "" : data.axes[data.cols];
    const rowLabels = data.labels[data.rows].map((s) => axisLabel(rowAxis, s));
    const colLabels = data.cols === null ? [] : data.labels[data.cols].map((s) => axisLabel(colAxis, s));
    const fontPx = 11;
    const probe = heatmapLayout(ctx.width(), grid.nRows, grid.nCols, { rowLabel: labelWidth(rowLabels, fontPx) });
    const rotate = colLabels.some((s) => s.length * fontPx * 0.6 > probe.cell);
    layout = heatmapLayout(ctx.width(), grid.nRows, grid.nCols, {
      rowLabel: labelWidth(rowLabels, fontPx),
      colLabel: colLabels.length === 0 ? 18 : rotate ? Math.max(28, labelWidth(colLabels, fontPx, 90)) : 30,
    });
    const L = layout;
    const g = sizeCanvas(canvas, L.width, L.height);
    canvas.dataset.cell = String(L.cell);
    canvas.dataset.left = String(L.left);
    canvas.dataset.top = String(L.top);
    if (!g) return;
    g.fillStyle = rgbCss(theme.bg);
    g.fillRect(0, 0, L.width, L.height);
    const lut = heatmapLut(theme, data.scale);
    for (let r = 0; r < grid.nRows; r++) {
      for (let c = 0; c < grid.nCols; c++) {
        const j = colorIndex(grid.values[r * grid.nCols + c], range);
        g.fillStyle = j < 0 ? theme.border : `rgb(${lut[4 * j]}, ${lut[4 * j + 1]}, ${lut[4 * j + 2]})`;
        g.fillRect(L.left + c * L.cell, L.top + r * L.cell, L.cell, L.cell);
      }
    }
    g.font = `${fontPx}px ${theme.font}`;
    g.textBaseline = "middle";
    const every = Math.max(1, Math.ceil(12 / L.cell));
    g.textAlign = "right";
    for (let r = 0; r < grid.nRows; r += every) {
      g.fillStyle = hover?.row === r ? theme.accent : theme.fg;
      g.fillText(rowLabels[r], L.left - 4, L.top + (r + 0.5) * L.cell, L.left - 6);
    }
    for (let c = 0; c < colLabels.length; c += every) {
      g.fillStyle = hover?.col === c ? theme.accent : theme.fg;
      if (rotate) {
        g.save();
        g.translate(L.left + (c + 0.5) * L.cell, L.top - 4);
        g.rotate(-Math.PI / 2);
        g.textAlign = "left";
        g.fillText(colLabels[c], 0, 0, L.top - 6);
        g.restore();
      } else {
        g.textAlign = "center";
        g.fillText(colLabels[c], L.left + (c + 0.5) * L.cell, L.top - 10);
      }
    }
    g.fillStyle = theme.muted;
    g.textAlign = "left";
    g.fillText(`${rowAxis} ↓${colAxis ? `  ${colAxis} →` : ""}`, 2, 8);
    const outline = (cell: { row: number; col: number } | null, colour: string, w: number) => {
      if (!cell) return;
      g.strokeStyle = colour;
      g.lineWidth = w;
      g.strokeRect(L.left + cell.col * L.cell + w / 2, L.top + cell.row * L.cell + w / 2, L.cell - w, L.cell - w);
    };
    outline(marked ? cellOfHead({ ...data, slice }, marked.layer, marked.head) : null, theme.accent, 2);
    outline(hover ?? focus, theme.fg, 1);
    drawLegend(theme, lut);
  }

  function drawLegend(theme: Theme, lut: Uint8ClampedArray): void {
    if (!data) return;
    const w = 160;
    const g = sizeCanvas(legendBar, w, 10);
    if (g) {
      for (let x = 0; x < w; x++) {
        const j = Math.round((x / (w - 1)) * 255) * 4;
        g.fillStyle = `rgb(${lut[j]}, ${lut[j + 1]}, ${lut[j + 2]})`;
        g.fillRect(x, 0, 1, 10);
      }
      g.strokeStyle = theme.border;
      g.strokeRect(0, 0, w, 10);
    }
    const mid = data.scale === "diverging" ? ` · ${formatValue(data.center)} (unpatched)` : "";
    legendText.textContent = `${formatValue(range.lo)}${mid} · ${formatValue(range.hi)}`;
  }

  function regrid(): void {
    if (!data) return;
    grid = gridOf(data, slice);
    range = colorRange(grid.values, data.scale, data.center);
    el.dataset.rows = String(grid.nRows);
    el.dataset.cols = String(grid.nCols);
    el.dataset.slice = slice.join(",");
    const best = strongest(grid.values, data.center);
    el.dataset.strongest = best < 0 ? "" : `${Math.floor(best / grid.nCols)},${best % grid.nCols}`;
    draw();
  }

  function buildSlices(): void {
    slices.replaceChildren();
    if (!data) return;
    for (const a of slicedAxes(data)) {
      const select = h("select", { "data-testid": "iw-heatmap-slice", "data-axis": data.axes[a], "aria-label": data.axes[a] });
      data.labels[a].forEach((label, i) => select.append(h("option", { value: i }, axisLabel(data!.axes[a], label))));
      select.value = String(slice[a]);
      select.addEventListener("change", () => {
        slice = [...slice];
        slice[a] = Number(select.value);
        regrid();
      });
      slices.append(h("label", { class: "iw-muted" }, `${data.axes[a]} `, select));
    }
  }

  function info(cell: { row: number; col: number }): CellInfo | null {
    if (!data || !grid) return null;
    const index = cellIndex(data, cell.row, cell.col, slice);
    return { index, row: cell.row, col: cell.col, value: grid.values[cell.row * grid.nCols + cell.col], head: headOf(data, index) };
  }

  function showTooltip(cell: { row: number; col: number }, clientX: number, clientY: number): void {
    const c = info(cell);
    if (!c || !data) return;
    const where = c.index.map((i, a) => `${data!.axes[a]} ${axisLabel(data!.axes[a], data!.labels[a][i])}`).join(", ");
    const parts: (Node | string)[] = [
      h("b", { "data-role": "cell" }, c.head ? `L${c.head.layer}H${c.head.head}` : where), c.head ? ` (${where})` : "",
      h("br"), `${data.kind === "head_scores" ? "score" : data.metric}: `, h("b", { "data-role": "value" }, formatValue(c.value)),
    ];
    if (!data.normalized) {
      const n = normalizedValue(c.value, data.clean, data.corrupted);
      if (n !== null) parts.push(" · normalised ", h("span", { "data-role": "normalized" }, formatValue(n)));
    }
    if (data.clean !== null || data.corrupted !== null) {
      parts.push(h("br"), "clean ", h("span", { "data-role": "clean" }, formatValue(data.clean)),
        " · corrupted ", h("span", { "data-role": "corrupted" }, formatValue(data.corrupted)));
    }
    if (c.head && opts.onCellClick) parts.push(h("br"), h("span", { class: "iw-muted" }, "click: attention pattern"));
    ctx.tooltip.show(parts, clientX, clientY);
  }

  const pointerCell = (ev: MouseEvent) => {
    if (!layout) return null;
    const r = canvas.getBoundingClientRect();
    return heatmapCellAt(layout, ev.clientX - r.left, ev.clientY - r.top);
  };
  canvas.addEventListener("mousemove", (ev) => {
    const cell = pointerCell(ev);
    if (!cell) {
      ctx.tooltip.hide();
      if (hover) { hover = null; draw(); }
      return;
    }
    showTooltip(cell, ev.clientX, ev.clientY);
    if (!hover || hover.row !== cell.row || hover.col !== cell.col) {
      hover = cell;
      draw();
    }
  });
  canvas.addEventListener("mouseleave", () => {
    ctx.tooltip.hide();
    hover = null;
    draw();
  });
  canvas.addEventListener("click", (ev) => {
    const cell = pointerCell(ev);
    const c = cell ? info(cell) : null;
    if (c) opts.onCellClick?.(c);
  });
  canvas.addEventListener("keydown", (ev) => {
    if (!grid) return;
    const moves: Record<string, [number, number]> = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };
    if (ev.key === "Enter" && focus) {
      const c = info(focus);
      if (c) opts.onCellClick?.(c);
    } else if (moves[ev.key]) {
      const f = focus ?? { row: 0, col: 0 };
      focus = {
        row: Math.max(0, Math.min(grid.nRows - 1, f.row + moves[ev.key][0])),
        col: Math.max(0, Math.min(grid.nCols - 1, f.col + moves[ev.key][1])),
      };
      const r = canvas.getBoundingClientRect();
      if (layout) showTooltip(focus, r.left + layout.left + (focus.col + 1) * layout.cell, r.top + layout.top + (focus.row + 1) * layout.cell);
      draw();
    } else {
      return;
    }
    ev.preventDefault();
  });
  canvas.addEventListener("blur", () => {
    focus = null;
    ctx.tooltip.hide();
  });

  return {
    el,
    canvas,
    set(next) {
      data = next;
      hover = null;
      focus = null;
      if (data) version += 1; // results shown so far
      el.dataset.version = String(version);
      const has = data !== null;
      for (const part of [title, metrics, slices, canvas, legend, note]) part.style.display = has ? "" : "none";
      empty.style.display = has ? "none" : "";
      if (!data) {
        grid = null;
        layout = null;
        el.dataset.title = "";
        context2d(canvas)?.clearRect(0, 0, canvas.width, canvas.height);
        return;
      }
      slice = [...data.slice];
      title.textContent = data.title;
      el.dataset.title = data.title;
      el.dataset.kind = data.kind;
      metrics.textContent = data.clean !== null || data.corrupted !== null
        ? `clean ${formatValue(data.clean)} · corrupted ${formatValue(data.corrupted)}${data.normalized ? " · normalised: 0 = corrupted, 1 = clean" : ""}`
        : "";
      note.textContent = data.note;
      buildSlices();
      regrid();
    },
    mark(head) {
      marked = head;
      draw();
    },
    redraw: draw,
    current() {
      return data && grid && layout ? { data, grid, layout, range } : null;
    },
  };
}
