// The superposition view: for the selected sparsity, W^T W as a heatmap, one bar per feature (length: its
// norm; colour: how much it shares its direction, as in Elhage et al. 2022) and the feature directions
// projected on two principal axes of the hidden space. A slider switches between the trained sparsities.
import type { Store } from "../attention/store";
import type { RGB } from "../attention/theme";
import type { SuperpositionData } from "../schema/generated";
import { decodeFloat32 } from "../schema/tensor";
import { colorIndex, colorRange, divergingLut, formatValue } from "./heatmap-math";
import { ensurePatchingStyle } from "./patching-style";

const SVG = "http://www.w3.org/2000/svg";
const NEG: RGB = [178, 24, 43];
const POS: RGB = [33, 102, 172];
const BG: RGB = [247, 247, 247];
const LUT = divergingLut(NEG, BG, POS);

export interface Decoded {
  title: string;
  k: number;
  n: number;
  m: number;
  labels: string[];
  threshold: number;
  models: SuperpositionData["models"];
  gram: Float32Array; // [k, n, n]
  norms: Float32Array; // [k, n]
  sup: Float32Array; // [k, n]
  proj: Float32Array; // [k, n, 2]
}

export function decodeSuperposition(d: SuperpositionData): Decoded {
  const k = d.models.length;
  const n = d.n_features;
  const get = (p: SuperpositionData["gram"], shape: number[]) => {
    const t = decodeFloat32(p);
    if (t.shape.join(",") !== shape.join(",")) throw new Error(`expected shape [${shape}], got [${t.shape}]`);
    return t.values;
  };
  return {
    title: d.title, k, n, m: d.n_hidden, labels: d.feature_labels, threshold: d.represented_threshold, models: d.models,
    gram: get(d.gram, [k, n, n]), norms: get(d.norms, [k, n]), sup: get(d.superposition, [k, n]),
    proj: get(d.projection, [k, n, 2]),
  };
}

/** Bar colour of a feature: dark when it has a direction of its own, yellow as others share it (1 and up). */
export function barColor(superposition: number): string {
  const t = Math.max(0, Math.min(1, superposition));
  const lo: RGB = [40, 40, 60];
  const hi: RGB = [240, 190, 30];
  const c = lo.map((v, i) => Math.round(v + (hi[i] - v) * t));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

/** Fill of a W^T W cell on a diverging scale symmetric around 0. */
export function gramColor(v: number, range: { lo: number; hi: number }): string {
  const i = colorIndex(v, range);
  if (i < 0) return "rgb(200,200,200)";
  return `rgb(${LUT[4 * i]},${LUT[4 * i + 1]},${LUT[4 * i + 2]})`;
}

export function sparsityLabel(d: Decoded, i: number): string {
  const s = d.models[i];
  return `S = ${s.sparsity} (1 − S = ${formatValue(1 - s.sparsity)}) · ${s.n_represented}/${d.n} features represented · ` +
    `${s.dims_per_feature.toFixed(3)} dimensions per feature`;
}

function svg(tag: string, attrs: Record<string, string | number>, parent?: Element): SVGElement {
  const e = document.createElementNS(SVG, tag);
  for (const [a, v] of Object.entries(attrs)) e.setAttribute(a, String(v));
  parent?.append(e);
  return e;
}

function tip(e: Element, text: string): void {
  svg("title", {}, e).textContent = text;
}

function heatmap(d: Decoded, sel: number): SVGElement {
  const cell = Math.max(8, Math.min(16, Math.floor(320 / d.n)));
  const top = 16;
  const size = cell * d.n;
  const root = svg("svg", { width: Math.max(size, 200), height: size + top, "data-role": "gram" });
  const vals = d.gram.subarray(sel * d.n * d.n, (sel + 1) * d.n * d.n);
  const range = colorRange(vals, "diverging", 0);
  svg("text", { x: 0, y: 10, "font-size": 11, fill: "currentColor" }, root).textContent = "WᵀW (interference off the diagonal)";
  for (let i = 0; i < d.n; i++) {
    for (let j = 0; j < d.n; j++) {
      const v = vals[i * d.n + j];
      const r = svg("rect", { x: j * cell, y: top + i * cell, width: cell, height: cell,
        fill: gramColor(v, range), "data-i": i, "data-j": j }, root);
      tip(r, `${d.labels[i]} · ${d.labels[j]}: ${formatValue(v)}`);
    }
  }
  return root;
}

function bars(d: Decoded, sel: number): SVGElement {
  const row = 14;
  const labelW = 36;
  const barW = 180;
  const root = svg("svg", { width: labelW + barW + 40, height: 18 + row * d.n, "data-role": "bars" });
  svg("text", { x: 0, y: 10, "font-size": 11, fill: "currentColor" }, root).textContent = "‖Wᵢ‖ (colour: superposition)";
  let max = 1;
  for (let i = 0; i < d.n; i++) max = Math.max(max, d.norms[sel * d.n + i]);
  for (let i = 0; i < d.n; i++) {
    const norm = d.norms[sel * d.n + i];
    const sup = d.sup[sel * d.n + i];
    const y = 16 + i * row;
    svg("text", { x: labelW - 4, y: y + row - 4, "text-anchor": "end", "font-size": 10, fill: "currentColor" }, root)
      .textContent = d.labels[i];
    const r = svg("rect", { x: labelW, y: y + 1, width: Math.max(0.5, (barW * norm) / max), height: row - 3,
      fill: barColor(sup), "data-feature": i, "data-represented": norm >= d.threshold ? 1 : 0 }, root);
    tip(r, `${d.labels[i]}: norm ${formatValue(norm)}, superposition ${formatValue(sup)}`);
  }
  const tx = labelW + (barW * d.threshold) / max;
  svg("line", { x1: tx, x2: tx, y1: 14, y2: 16 + row * d.n, stroke: "currentColor", "stroke-opacity": 0.4,
    "stroke-dasharray": "2 2" }, root);
  return root;
}

function projection(d: Decoded, sel: number): SVGElement {
  const size = 240;
  const c = size / 2;
  const root = svg("svg", { width: size, height: size + 14, "data-role": "projection" });
  svg("text", { x: 0, y: 10, "font-size": 11, fill: "currentColor" }, root).textContent =
    "feature directions (2 principal axes)";
  let max = 1e-6;
  for (let i = 0; i < d.n; i++) max = Math.max(max, d.norms[sel * d.n + i]);
  const s = (c - 20) / max;
  svg("circle", { cx: c, cy: c + 14, r: c - 20, fill: "none", stroke: "currentColor", "stroke-opacity": 0.15 }, root);
  for (let i = 0; i < d.n; i++) {
    const x = d.proj[(sel * d.n + i) * 2];
    const y = d.proj[(sel * d.n + i) * 2 + 1];
    const rep = d.norms[sel * d.n + i] >= d.threshold;
    const g = svg("g", { "data-feature": i, opacity: rep ? 1 : 0.25 }, root);
    svg("line", { x1: c, y1: c + 14, x2: c + x * s, y2: c + 14 - y * s, stroke: barColor(d.sup[sel * d.n + i]),
      "stroke-width": 2 }, g);
    svg("circle", { cx: c + x * s, cy: c + 14 - y * s, r: 3, fill: "currentColor" }, g);
    if (rep) {
      svg("text", { x: c + x * s * 1.08, y: c + 14 - y * s * 1.08 + 3, "font-size": 9, "text-anchor": "middle",
        fill: "currentColor" }, g).textContent = d.labels[i];
    }
    tip(g, `${d.labels[i]}: (${formatValue(x)}, ${formatValue(y)})`);
  }
  return root;
}

export interface SuperpositionProps {
  data: Decoded;
  store: Store<{ selected: number }>;
  /** called when the user moves the slider (null: read-only page with a local slider only) */
  onSelect: ((i: number) => void) | null;
}

/** Draw into `el`; returns a cleanup. */
export function renderSuperposition(el: HTMLElement, props: SuperpositionProps): () => void {
  ensurePatchingStyle(el.ownerDocument);
  const { data, store } = props;
  const root = document.createElement("div");
  root.className = "iw-root iw-superposition";
  root.style.flexDirection = "column";
  root.style.alignItems = "stretch";
  const title = document.createElement("div");
  title.className = "iw-fd-h";
  title.textContent = data.title;
  const row = document.createElement("div");
  row.className = "iw-row";
  const slider = document.createElement("input");
  slider.type = "range";
  slider.min = "0";
  slider.max = String(data.k - 1);
  slider.step = "1";
  slider.dataset.role = "sparsity";
  slider.setAttribute("aria-label", "sparsity");
  const label = document.createElement("span");
  label.dataset.role = "sparsity-label";
  row.append("sparsity", slider, label);
  const body = document.createElement("div");
  body.className = "iw-row";
  body.style.alignItems = "flex-start";
  root.append(title, row, body);
  el.append(root);

  const draw = () => {
    const sel = Math.max(0, Math.min(data.k - 1, store.get().selected));
    slider.value = String(sel);
    label.textContent = sparsityLabel(data, sel);
    body.replaceChildren(heatmap(data, sel), bars(data, sel), projection(data, sel));
    root.dataset.selected = String(sel);
  };
  const onInput = () => {
    const i = Number(slider.value);
    store.set({ selected: i });
    props.onSelect?.(i);
  };
  slider.addEventListener("input", onInput);
  const unsubscribe = store.subscribe(draw);
  draw();
  return () => {
    slider.removeEventListener("input", onInput);
    unsubscribe();
    root.remove();
  };
}
