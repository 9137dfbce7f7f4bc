// A clicked stimulus's activations (the tuning widget's `open_stimulus` reply): the stimulus, each
// plotted unit's value, and per layer a strip of every channel's value (spatial max) plus a bar
// chart (Observable Plot) of the strongest channels, the plotted units' channels highlighted.
import * as Plot from "@observablehq/plot";
import type { LayerDetail, StimulusReply } from "../schema/generated";
import { context2d, h } from "../attention/dom";
import { type Theme, heatLut, lutIndex } from "../attention/theme";
import { decodeFloat32 } from "../schema/tensor";
import { imageCanvas } from "./vision-common";
import { type ImageStack, fmt, unitColor, unitInterval } from "./vision-math";

export interface DetailContext {
  theme: Theme;
  units: string[];
  param: string;
  unitOfParam: string;
  stimuli: ImageStack | null;
  prompts: string[];
}

/** Layout of a channel strip: `cols` cells per row of `cell` px. */
export function stripLayout(n: number, maxCols = 64): { cols: number; rows: number; cell: number } {
  const cols = Math.max(1, Math.min(n, maxCols));
  return { cols, rows: Math.ceil(n / cols), cell: n <= 32 ? 10 : n <= 128 ? 7 : 5 };
}

function strip(layer: LayerDetail, theme: Theme): HTMLCanvasElement | null {
  if (!layer.values) return null;
  const vals = decodeFloat32(layer.values).values;
  const t = unitInterval(vals);
  const { cols, rows, cell } = stripLayout(vals.length);
  const canvas = h("canvas", { class: "iw-vstrip", "data-testid": "iw-detail-strip", "data-n": vals.length,
    title: `${vals.length} channels, light → strong` });
  canvas.width = cols * cell;
  canvas.height = rows * cell;
  const g = context2d(canvas);
  if (!g) return canvas;
  const lut = heatLut(theme);
  for (let i = 0; i < vals.length; i++) {
    const j = lutIndex(t[i]) * 4;
    g.fillStyle = `rgb(${lut[j]}, ${lut[j + 1]}, ${lut[j + 2]})`;
    g.fillRect((i % cols) * cell, Math.floor(i / cols) * cell, cell, cell);
  }
  g.strokeStyle = theme.accent;
  g.lineWidth = 2;
  for (const c of layer.marked) g.strokeRect((c % cols) * cell + 1, Math.floor(c / cols) * cell + 1, cell - 2, cell - 2);
  return canvas;
}

function bars(layer: LayerDetail): Element {
  const marked = new Set(layer.marked);
  const data = layer.top.map((c, k) => ({ label: `ch ${c}`, value: layer.top_values[k], marked: marked.has(c) }));
  return Plot.plot({
    width: 260, height: 16 * data.length + 36, marginLeft: 56, marginRight: 12,
    style: { background: "transparent", color: "var(--iw-fg)", fontFamily: "var(--iw-font)", fontSize: "10px" },
    x: { label: "activation", grid: true },
    y: { label: null, domain: data.map((d) => d.label) },
    marks: [
      Plot.barX(data, { x: "value", y: "label", fill: (d: { marked: boolean }) => (d.marked ? "var(--iw-accent)" : "var(--iw-muted)") }),
      Plot.ruleX([0], { stroke: "var(--iw-border)" }),
    ],
  });
}

export function renderStimulusDetail(reply: StimulusReply, ctx: DetailContext): HTMLElement {
  const head: (Node | string)[] = [];
  if (ctx.stimuli && reply.index < ctx.stimuli.n) {
    head.push(imageCanvas(ctx.stimuli, reply.index, 128 / Math.max(ctx.stimuli.h, ctx.stimuli.w), { "data-testid": "iw-detail-stimulus" }));
  }
  const prompt = ctx.prompts[reply.index];
  const title = h("div", { class: "iw-title" }, `stimulus ${reply.index}: `,
    prompt !== undefined ? h("span", { class: "iw-tprompt", "data-testid": "iw-detail-prompt" }, prompt) : reply.label);
  const unitList = h("div", { class: "iw-panel", "data-testid": "iw-detail-units" }, ...reply.units.map((v, u) =>
    h("div", { "data-unit": ctx.units[u] }, h("span", { class: "iw-swatch", style: `background:${unitColor(u)}` }), ` ${ctx.units[u]}: `,
      h("b", { "data-role": "value" }, fmt(v)))));
  const layers = h("div", { class: "iw-vdetail-layers" }, ...reply.layers.map((layer) => {
    const n = layer.values ? layer.values.shape[0] : null;
    const caption = `${layer.layer} · ${layer.reduce}${n !== null ? ` · ${n} channels` : ""} · top ${layer.top.length}`;
    const parts: (Node | string)[] = [h("div", { class: "iw-title" }, caption)];
    const s = strip(layer, ctx.theme);
    if (s) parts.push(s);
    parts.push(h("div", { "data-testid": "iw-detail-bars" }, bars(layer)));
    return h("div", { class: "iw-vdetail-layer", "data-testid": "iw-detail-layer", "data-layer": layer.layer }, ...parts);
  }));
  return h("div", { class: "iw-panel" }, h("div", { class: "iw-detail-row" }, ...head, h("div", { class: "iw-panel" }, title, unitList)), layers);
}
