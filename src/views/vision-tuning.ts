// The joint tuning view: every unit's activation against the swept parameter, one line per unit
// (Observable Plot), a legend whose entries toggle units, hover -> the stimulus and the value,
// click -> the stimulus's activations from the kernel. A pure function of (el, props) returning a
// cleanup; `actions` null is a static page (hover works, clicking explains that it needs the kernel).
import * as Plot from "@observablehq/plot";
import type { StaticTuning, StimulusReply, TuningState } from "../schema/generated";
import { createTooltip, h } from "../attention/dom";
import { type Store, createStore } from "../attention/store";
import { readTheme, watchTheme } from "../attention/theme";
import { ensureVisionStyle, errorText, imageCanvas, readStatic } from "./vision-common";
import { renderStimulusDetail } from "./vision-detail";
import {
  type CurveRow, type Curves, type ImageStack, curveRows, decodeCurves, decodeImages, fmt, nearestRow, peaks, unitColor, yDomain,
} from "./vision-math";

export interface TuningViewState {
  title: string;
  param: string;
  unitOfParam: string;
  curves: Curves;
  stimuli: ImageStack | null;
  prompts: string[];
  visible: boolean[];
  selected: number;
  hasDetail: boolean;
  note: string;
}

export interface TuningActions {
  openStimulus(index: number): Promise<StimulusReply>;
  edit(patch: Partial<Pick<TuningViewState, "visible" | "selected">>): void;
}

export interface TuningViewProps {
  state: Store<TuningViewState>;
  actions: TuningActions | null;
  /** plot width in CSS px (default: the element's width, 320..760) */
  width?: number;
}

export interface TuningHandle {
  (): void;
  /** the row under a point in the plot's own px (for tests), or null */
  rowAt(x: number, y: number): CurveRow | null;
}

export function xLabel(param: string, unit: string): string {
  return unit ? `${param} (${unit})` : param;
}

export function renderTuning(el: HTMLElement, props: TuningViewProps): TuningHandle {
  const { state, actions } = props;
  ensureVisionStyle(el.ownerDocument);
  const root = h("div", { class: "iw-root iw-vision iw-tuning", "data-testid": "iw-tuning", "data-mode": actions ? "live" : "static" });
  const title = h("div", { class: "iw-title" });
  const note = h("div", { class: "iw-muted" });
  const legend = h("div", { class: "iw-tlegend", "data-testid": "iw-tuning-legend" });
  const normalize = h("input", { type: "checkbox", "data-testid": "iw-tuning-normalize" });
  const options = h("div", { class: "iw-controls" }, h("label", { class: "iw-muted" }, normalize, " each unit ÷ its max"));
  const plotBox = h("div", { class: "iw-tplot", "data-testid": "iw-tuning-plot" });
  const mark = h("div", { class: "iw-tmark", "data-testid": "iw-tuning-mark" });
  const error = h("div", { class: "iw-error", "data-testid": "iw-tuning-error", role: "alert" });
  const detail = h("div", { class: "iw-vdetail", "data-testid": "iw-tuning-detail", hidden: "" });
  root.append(title, note, legend, options, plotBox, error, detail);
  el.append(root);
  const tooltip = createTooltip(root);

  let rows: CurveRow[] = [];
  let svg: (SVGSVGElement | HTMLElement) & Plot.Plot | null = null;
  let plotWidth = 0;
  let hovered: CurveRow | null = null;
  let token = 0;
  let shown: StimulusReply | null = null;

  const width = () => props.width ?? Math.max(320, Math.min(760, (el.clientWidth || 640) - 24));

  function buildLegend(): void {
    const s = state.get();
    const pk = peaks(s.curves);
    legend.replaceChildren(...s.curves.units.map((unit, u) => {
      const box = h("input", { type: "checkbox", "data-testid": "iw-tuning-unit", "data-unit": unit });
      box.checked = s.visible[u] !== false;
      box.addEventListener("change", () => {
        const visible = [...state.get().visible];
        visible[u] = box.checked;
        state.set({ visible });
        actions?.edit({ visible });
      });
      return h("label", { "data-on": box.checked ? "1" : "0", title: `peak at ${fmt(pk[u])}` }, box,
        h("span", { class: "iw-swatch", style: `background:${unitColor(u)}` }), unit);
    }));
  }

  function draw(): void {
    const t0 = performance.now();
    const s = state.get();
    rows = curveRows(s.curves, s.visible, normalize.checked);
    plotWidth = width();
    const vals = Array.from(s.curves.values).filter(Number.isFinite);
    const marks: Plot.Markish[] = [
      Plot.ruleY([0], { stroke: "var(--iw-border)" }),
      Plot.line(rows, { x: "x", y: "y", z: "unit", stroke: "unit", strokeWidth: 1.8 }),
      Plot.dot(rows, { x: "x", y: "y", fill: "unit", r: 2.5 }),
    ];
    if (s.selected >= 0 && s.selected < s.curves.values.length) {
      marks.push(Plot.ruleX([s.curves.values[s.selected]], { stroke: "var(--iw-accent)", strokeDasharray: "4,3" }));
    }
    const fig = Plot.plot({
      width: plotWidth, height: 300, marginLeft: 56, marginBottom: 40, marginRight: 16,
      style: { background: "transparent", color: "var(--iw-fg)", fontFamily: "var(--iw-font)", fontSize: "11px" },
      x: { label: xLabel(s.param, s.unitOfParam), domain: vals.length ? [Math.min(...vals), Math.max(...vals)] : [0, 1] },
      y: { label: normalize.checked ? "activation ÷ unit max" : "activation", grid: true, domain: yDomain(rows.map((r) => r.y)) },
      color: { domain: s.curves.units, range: s.curves.units.map((_, u) => unitColor(u)) },
      marks,
    });
    fig.setAttribute("data-testid", "iw-tuning-svg");
    svg = fig;
    plotBox.replaceChildren(fig, mark);
    root.dataset.points = String(rows.length);
    root.dataset.units = String(s.visible.filter(Boolean).length);
    hovered = null;
    mark.dataset.visible = "0";
    root.dataset.renderMs = (performance.now() - t0).toFixed(1); // the last plot's build time (benchmarks, tests)
  }

  /** A row's position in the plot's own px. */
  function project(r: CurveRow): [number, number] {
    const xs = svg!.scale("x")!;
    const ys = svg!.scale("y")!;
    return [xs.apply(r.x) as number, ys.apply(r.y) as number];
  }

  function rowAt(x: number, y: number): CurveRow | null {
    return svg ? nearestRow(rows, project, x, y) : null;
  }

  /** The pointer in the plot's own px (the svg may be scaled down by CSS). */
  function local(ev: MouseEvent): [number, number] {
    const r = svg!.getBoundingClientRect();
    const k = r.width > 0 ? plotWidth / r.width : 1;
    return [(ev.clientX - r.left) * k, (ev.clientY - r.top) * k];
  }

  function showTip(row: CurveRow, ev: MouseEvent): void {
    const s = state.get();
    const parts: (Node | string)[] = [];
    if (s.stimuli && row.i < s.stimuli.n) {
      parts.push(imageCanvas(s.stimuli, row.i, 96 / Math.max(s.stimuli.h, s.stimuli.w), { "data-testid": "iw-tooltip-stimulus", "data-index": row.i }));
    }
    if (s.prompts[row.i] !== undefined) parts.push(h("span", { class: "iw-tprompt", "data-testid": "iw-tooltip-prompt" }, s.prompts[row.i]));
    parts.push(
      h("span", { class: "iw-swatch", style: `background:${unitColor(row.u)}` }), " ", h("b", { "data-role": "unit" }, row.unit), h("br"),
      `${s.param} `, h("span", { "data-role": "param" }, fmt(row.x)), s.unitOfParam ? ` ${s.unitOfParam}` : "", h("br"),
      "activation ", h("b", { "data-role": "value" }, fmt(row.raw)),
    );
    parts.push(h("br"), h("span", { class: "iw-muted" }, actions ? "click: activations on this stimulus" : "static page: clicking needs the kernel"));
    tooltip.show(parts, ev.clientX, ev.clientY);
    tooltip.el.dataset.index = String(row.i);
    const [px, py] = project(row);
    const k = svg!.getBoundingClientRect().width > 0 ? svg!.getBoundingClientRect().width / plotWidth : 1;
    mark.style.left = `${px * k}px`;
    mark.style.top = `${py * k}px`;
    mark.style.borderColor = unitColor(row.u);
    mark.dataset.visible = "1";
  }

  /** (re)draw the opened stimulus's activations (the channel strip takes the theme's colours) */
  function drawDetail(): void {
    if (!shown) return;
    const s = state.get();
    detail.replaceChildren(renderStimulusDetail(shown, {
      theme: readTheme(root), units: s.curves.units, param: s.param, unitOfParam: s.unitOfParam, stimuli: s.stimuli, prompts: s.prompts,
    }));
  }

  async function open(i: number): Promise<void> {
    state.set({ selected: i });
    if (!actions) {
      error.textContent = "This is a static snapshot: run the notebook to open a stimulus's activations.";
      return;
    }
    actions.edit({ selected: i });
    const mine = ++token;
    error.textContent = "";
    root.dataset.loading = "1";
    try {
      const reply = await actions.openStimulus(i);
      if (mine !== token) return;
      shown = reply;
      drawDetail();
      detail.hidden = false;
      detail.dataset.index = String(reply.index);
    } catch (err) {
      if (mine !== token) return;
      detail.hidden = true;
      shown = null;
      error.textContent = errorText(err);
    } finally {
      if (mine === token) delete root.dataset.loading;
    }
  }

  plotBox.addEventListener("mousemove", (ev) => {
    if (!svg) return;
    const [x, y] = local(ev);
    const row = rowAt(x, y);
    hovered = row;
    if (row) showTip(row, ev);
    else {
      tooltip.hide();
      mark.dataset.visible = "0";
    }
  });
  plotBox.addEventListener("mouseleave", () => {
    hovered = null;
    tooltip.hide();
    mark.dataset.visible = "0";
  });
  plotBox.addEventListener("click", (ev) => {
    if (!svg) return;
    const [x, y] = local(ev);
    const row = rowAt(x, y) ?? hovered;
    if (row) void open(row.i);
  });
  normalize.addEventListener("change", draw);

  function setHeader(): void {
    const s = state.get();
    title.textContent = s.title;
    const n = s.curves.values.length;
    note.textContent = `${s.curves.units.length} units × ${n} stimuli${s.note ? ` · ${s.note}` : ""}`;
  }

  const unsubscribe = state.subscribe((s, prev) => {
    if (s.curves !== prev.curves || s.title !== prev.title) {
      setHeader();
      buildLegend();
    } else if (s.visible !== prev.visible) {
      buildLegend();
    }
    draw();
  });
  const unwatch = watchTheme(() => {
    draw();
    drawDetail();
  });
  setHeader();
  buildLegend();
  draw();
  const cleanup = (() => {
    unsubscribe();
    unwatch();
    tooltip.hide();
    root.remove();
  }) as TuningHandle;
  cleanup.rowAt = rowAt;
  return cleanup;
}

/** The view state of synced / embedded tuning state. */
export function tuningViewState(s: TuningState): TuningViewState {
  return {
    title: s.title, param: s.param, unitOfParam: s.unit_of_param, curves: decodeCurves(s.values, s.activations, s.units),
    stimuli: s.stimuli ? decodeImages(s.stimuli) : null, prompts: s.prompts, visible: s.visible, selected: s.selected,
    hasDetail: s.has_detail, note: s.note,
  };
}

/** Render the tuning plot embedded in a static page's `[data-iw-static="tuning"]` element. */
export function mountTuningStatic(container: HTMLElement): () => void {
  const doc = readStatic<StaticTuning>(container, "tuning");
  return renderTuning(container, { state: createStore(tuningViewState(doc.state)), actions: null });
}
