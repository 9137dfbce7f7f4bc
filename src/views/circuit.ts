// The circuit graph view: a layered SVG graph (dagre layout) with front-end pruning (threshold slider,
// top-k), hover tooltips, a node detail pane (its edges; a head's attention pattern from the kernel),
// multi-select (shift-click, or the detail pane's button) and the faithfulness of the selection (a kernel
// command), zoom (buttons, ctrl/cmd + wheel) and drag-to-pan, and SVG / PNG export (at the graph's own size,
// whatever the zoom). A pure function of (el, props) returning a cleanup.
import type { FaithfulnessReply, FaithfulnessRequest } from "../schema/generated";
import { createTooltip, h } from "../attention/dom";
import type { PatternSource } from "../attention/source";
import type { Store } from "../attention/store";
import { readTheme, watchThemeRedraw } from "../attention/theme";
import {
  type CircuitGraph, type Pruned, SLIDER_STEPS, TARGETS, edgesAmong, formatScore, nodeEdges, prune,
  sliderToThreshold, thresholdToSlider, withEnds,
} from "./circuit-model";
import { type Layout, layoutCircuit } from "./circuit-layout";
import { type CircuitSvg, createCircuitSvg, palette, serializeSvg, svgToPng } from "./circuit-svg";
import { ensureCircuitStyle } from "./circuit-style";
import { type HeadPatterns, createHeadPanel } from "./patching-heads";
import { errorText } from "./run-controls";

export interface CircuitViewState {
  graph: CircuitGraph;
  threshold: number;
  topK: number;
  maxDrawn: number;
  hasContext: boolean;
}

export interface CircuitActions {
  faithfulness(req: FaithfulnessRequest): Promise<FaithfulnessReply>;
  openHead(layer: number, head: number): Promise<HeadPatterns>;
  source: PatternSource;
}

/** What the view's own controls hold (never sent to the kernel). The anywidget entry keeps one per widget
 * model, so a view that JupyterLab re-creates (e.g. a cell scrolled out of a long notebook and back)
 * keeps its pruning and selection. */
export interface ViewMemory {
  threshold?: number;
  topK?: number;
  selected?: number[];
  zoom?: number;
}

export interface CircuitViewProps {
  state: Store<CircuitViewState>;
  /** the controls' values, read at start and updated on every change (default: a fresh object) */
  memory?: ViewMemory;
  /** null: a static page (no kernel) */
  actions: CircuitActions | null;
  /** save a file (default: a download link) */
  download?(name: string, blob: Blob): void;
}

const DETAIL_ROWS = 12;
export const ZOOM_MIN = 0.1;
export const ZOOM_MAX = 4;
const ZOOM_STEP = 1.25;

/** The zoom that fits a graph `graphWidth` wide into `available` px (never above 1: fit only shrinks). */
export function fitZoom(graphWidth: number, available: number): number {
  if (!(graphWidth > 0) || !(available > 0)) return 1;
  return clampZoom(Math.min(1, available / graphWidth));
}

export function clampZoom(z: number): number {
  return Math.min(ZOOM_MAX, Math.max(ZOOM_MIN, Number.isFinite(z) ? z : 1));
}

export function downloadBlob(name: string, blob: Blob): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  a.style.display = "none";
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export function countText(pr: Pruned, cap: number): string {
  const fmt = (n: number) => n.toLocaleString("en-US");
  let text = `${fmt(pr.passing)} edges pass the threshold`;
  if (pr.kept < pr.passing) text += ` · top-k keeps ${fmt(pr.kept)}`;
  text += ` · ${fmt(pr.drawn)} drawn`;
  if (pr.drawn < pr.kept) text += ` (at most ${fmt(cap)} are drawn: the strongest)`;
  return text;
}

export function renderCircuit(el: HTMLElement, props: CircuitViewProps): () => void {
  const { state, actions } = props;
  const download = props.download ?? downloadBlob;
  const memory = props.memory ?? {};
  const doc = el.ownerDocument;
  ensureCircuitStyle(doc);
  const t0 = typeof performance !== "undefined" ? performance.now() : Date.now();
  const root = h("div", { class: "iw-root iw-circuit", "data-testid": "iw-circuit", "data-mode": actions ? "live" : "static" });
  el.append(root);
  let theme = readTheme(root);
  const tooltip = createTooltip(root);

  // --- controls -------------------------------------------------------------------------------------
  const slider = h("input", { type: "range", min: 0, max: SLIDER_STEPS, step: 1, "data-testid": "iw-threshold",
    "aria-label": "threshold on |score|" });
  const thresholdText = h("span", { class: "iw-mono", "data-testid": "iw-threshold-value" });
  const topK = h("input", { type: "number", min: 0, step: 1, "data-testid": "iw-topk", "aria-label": "top-k edges (0: all)" });
  const counts = h("span", { class: "iw-muted", "data-testid": "iw-edge-count", "aria-live": "polite" });
  const btn = (label: string, id: string, title = "") =>
    h("button", { type: "button", class: "iw-btn", "data-testid": id, title }, label);
  const selectVisible = btn("select drawn nodes", "iw-select-visible", "select every node with a drawn edge");
  const clearSel = btn("clear selection", "iw-clear-selection");
  const FAITH_TITLE = "run the model with every edge ablated except the kept edges among the selected nodes "
    + "(the input and the logits always count as selected)";
  const faithBtn = btn("faithfulness of selection", "iw-faithfulness", FAITH_TITLE);
  const zoomOut = btn("−", "iw-zoom-out", "zoom out (or ctrl/cmd + wheel over the graph)");
  const zoomIn = btn("+", "iw-zoom-in", "zoom in (or ctrl/cmd + wheel over the graph)");
  const zoomFit = btn("fit", "iw-zoom-fit", "fit the graph's width");
  const zoomText = h("span", { class: "iw-mono iw-small", "data-testid": "iw-zoom" });
  const svgBtn = btn("export SVG", "iw-export-svg");
  const pngBtn = btn("export PNG", "iw-export-png");
  const selInfo = h("span", { class: "iw-muted", "data-testid": "iw-selection" });
  const faithOut = h("div", { class: "iw-faith", "data-testid": "iw-faith-result", "aria-live": "polite" });
  const error = h("div", { class: "iw-error", "data-testid": "iw-error", role: "alert" });
  const title = h("div", { class: "iw-title", "data-testid": "iw-circuit-title" });
  const sub = h("div", { class: "iw-muted iw-small", "data-testid": "iw-circuit-note" });
  const legend = h("span", { class: "iw-legend iw-small" });
  const header = h("div", { class: "iw-panel" }, title, sub,
    h("div", { class: "iw-controls" },
      h("label", { class: "iw-muted" }, "|score| ≥ ", slider), thresholdText,
      h("label", { class: "iw-muted" }, "top-k ", topK), counts,
      h("span", { class: "iw-zoom-controls" }, zoomOut, zoomText, zoomIn, zoomFit)),
    h("div", { class: "iw-controls" }, selectVisible, clearSel, faithBtn, selInfo, svgBtn, pngBtn, legend),
    faithOut, error);

  // --- graph, detail ------------------------------------------------------------------------------------
  const scroller = h("div", { class: "iw-circuit-scroll", "data-testid": "iw-circuit-graph" });
  const detail = h("div", { class: "iw-panel iw-node-detail", "data-testid": "iw-node-detail" });
  detail.style.display = "none";
  const width = () => Math.max(360, root.clientWidth || el.clientWidth || 760);
  const heads = createHeadPanel({ root, theme: () => theme, tooltip, width },
    actions?.source ?? { getWindow: () => Promise.reject(new Error("no kernel")) }, { windowSize: 48 });
  root.append(header, h("div", { class: "iw-circuit-body" }, scroller, detail), heads.el);

  let g: CircuitGraph | null = null;
  let layout: Layout | null = null;
  let view: CircuitSvg | null = null;
  let pr: Pruned = { passing: 0, kept: 0, drawn: 0 };
  let threshold = 0;
  let k = 0;
  let cap = 1;
  const selected = new Set<number>();
  let focused: number | null = null;
  let zoom = clampZoom(memory.zoom ?? 1);

  const legendSwatch = (color: string, text: string) => {
    const sw = h("span", { class: "iw-swatch" });
    sw.style.background = color;
    return h("span", {}, sw, text);
  };
  const drawLegend = () => {
    const pal = palette(theme);
    legend.replaceChildren(legendSwatch(pal.positive, "score > 0"), legendSwatch(pal.negative, "score < 0"),
      h("span", { class: "iw-muted" }, "· width: |score|"));
  };

  const refreshSelection = () => {
    memory.selected = [...selected];
    view?.mark(selected, focused);
    root.dataset.selected = String(selected.size);
    selInfo.textContent = selected.size ? `${selected.size} node(s) selected` : "shift-click nodes to select";
    faithBtn.disabled = !actions || !state.get().hasContext || selected.size === 0;
    faithBtn.title = !actions ? "needs the kernel" : !state.get().hasContext
      ? "this graph has no model context (make it with iw.circuit)" : FAITH_TITLE;
  };

  const apply = () => {
    if (!g || !view) return;
    memory.threshold = threshold;
    memory.topK = k;
    pr = prune(g, threshold, k, cap);
    view.show(pr.drawn);
    counts.textContent = countText(pr, cap);
    thresholdText.textContent = formatScore(threshold);
    root.dataset.passing = String(pr.passing);
    root.dataset.kept = String(pr.kept);
    root.dataset.drawn = String(pr.drawn);
    if (focused !== null) showDetail(focused);
  };

  // --- zoom and pan (the SVG's size changes, its viewBox does not; the scroller scrolls) -------------------------
  const setZoom = (z: number, anchor?: { x: number; y: number }) => {
    if (!view || !layout) return;
    const old = zoom;
    zoom = clampZoom(z);
    memory.zoom = zoom;
    // keep the graph point under the anchor (a client position inside the scroller) where it is
    const box = scroller.getBoundingClientRect();
    const ax = anchor ? anchor.x - box.left : scroller.clientWidth / 2;
    const ay = anchor ? anchor.y - box.top : scroller.clientHeight / 2;
    const gx = (scroller.scrollLeft + ax) / old;
    const gy = (scroller.scrollTop + ay) / old;
    view.svg.setAttribute("width", String(Math.round(layout.width * zoom)));
    view.svg.setAttribute("height", String(Math.round(layout.height * zoom)));
    scroller.scrollLeft = gx * zoom - ax;
    scroller.scrollTop = gy * zoom - ay;
    root.dataset.zoom = zoom.toFixed(3);
    zoomText.textContent = `${Math.round(zoom * 100)}%`;
    zoomOut.disabled = zoom <= ZOOM_MIN;
    zoomIn.disabled = zoom >= ZOOM_MAX;
  };
  zoomIn.addEventListener("click", () => setZoom(zoom * ZOOM_STEP));
  zoomOut.addEventListener("click", () => setZoom(zoom / ZOOM_STEP));
  zoomFit.addEventListener("click", () => {
    if (layout) setZoom(fitZoom(layout.width, scroller.clientWidth || width()));
  });
  scroller.addEventListener("wheel", (ev) => {
    if (!ev.ctrlKey && !ev.metaKey) return; // a plain wheel scrolls
    ev.preventDefault();
    setZoom(zoom * Math.exp(-ev.deltaY / 300), { x: ev.clientX, y: ev.clientY });
  }, { passive: false });
  let drag: { x: number; y: number; left: number; top: number; moved: boolean } | null = null;
  scroller.addEventListener("pointerdown", (ev) => {
    if (ev.button !== 0 || target(ev).node !== undefined) return; // nodes keep their clicks
    drag = { x: ev.clientX, y: ev.clientY, left: scroller.scrollLeft, top: scroller.scrollTop, moved: false };
  });
  const onMove = (ev: PointerEvent) => {
    if (!drag) return;
    const dx = ev.clientX - drag.x;
    const dy = ev.clientY - drag.y;
    if (!drag.moved && Math.abs(dx) + Math.abs(dy) < 4) return;
    drag.moved = true;
    scroller.classList.add("iw-panning");
    scroller.scrollLeft = drag.left - dx;
    scroller.scrollTop = drag.top - dy;
  };
  const endDrag = () => {
    drag = null;
    scroller.classList.remove("iw-panning");
  };
  doc.addEventListener("pointermove", onMove);
  doc.addEventListener("pointerup", endDrag);

  // --- tooltip ------------------------------------------------------------------------------------------
  const edgeTip = (i: number): (Node | string)[] => {
    const gg = g as CircuitGraph;
    const t = TARGETS[gg.targets[i]];
    return [h("div", { "data-role": "edge" }, `${gg.nodes[gg.senders[i]].name} → ${gg.nodes[gg.receivers[i]].name}${t ? `.${t}` : ""}`),
      h("div", {}, "score ", h("span", { "data-role": "score", class: "iw-mono" }, formatScore(gg.scores[i])),
        h("span", { class: "iw-muted" }, ` · #${i + 1} by |score|`))];
  };
  const nodeTip = (i: number): (Node | string)[] => {
    const gg = g as CircuitGraph;
    const { incoming, outgoing } = nodeEdges(gg, i, pr.kept);
    const sum = (es: number[]) => es.reduce((a, e) => a + gg.scores[e], 0);
    return [h("div", { "data-role": "node" }, gg.nodes[i].name),
      h("div", {}, `in: ${incoming.length} edges, Σ ${formatScore(sum(incoming))}`),
      h("div", {}, `out: ${outgoing.length} edges, Σ ${formatScore(sum(outgoing))}`),
      h("div", { class: "iw-muted" }, "click: details · shift-click: select")];
  };
  const target = (ev: Event): { edge?: number; node?: number } => {
    const t = ev.target as Element | null;
    const e = t?.closest?.("[data-e]");
    if (e) return { edge: Number(e.getAttribute("data-e")) };
    const n = t?.closest?.("[data-node]");
    if (n) return { node: Number(n.getAttribute("data-node")) };
    return {};
  };
  scroller.addEventListener("mousemove", (ev) => {
    if (!g) return;
    const hit = target(ev);
    if (hit.edge !== undefined) tooltip.show(edgeTip(hit.edge), ev.clientX, ev.clientY);
    else if (hit.node !== undefined) tooltip.show(nodeTip(hit.node), ev.clientX, ev.clientY);
    else tooltip.hide();
  });
  scroller.addEventListener("mouseleave", () => tooltip.hide());

  // --- node detail --------------------------------------------------------------------------------------------
  let headRequest = 0;
  const edgeTable = (label: string, es: number[], other: (e: number) => string) => {
    const gg = g as CircuitGraph;
    const rows = es.slice(0, DETAIL_ROWS).map((e) => h("tr", { "data-e": e },
      h("td", {}, other(e)), h("td", { class: "iw-mono", "data-role": "score" }, formatScore(gg.scores[e]))));
    const more = es.length > DETAIL_ROWS ? h("div", { class: "iw-muted iw-small" }, `… and ${es.length - DETAIL_ROWS} more`) : "";
    return h("div", { class: "iw-edge-list", "data-role": label },
      h("div", { class: "iw-muted" }, `${label} (${es.length})`), h("table", {}, ...rows), more);
  };
  const showDetail = (i: number) => {
    const gg = g as CircuitGraph;
    const node = gg.nodes[i];
    const { incoming, outgoing } = nodeEdges(gg, i, pr.kept);
    const close = btn("×", "iw-node-close");
    close.addEventListener("click", () => {
      focused = null;
      detail.style.display = "none";
      delete detail.dataset.node;
      heads.close();
      refreshSelection();
    });
    const selBtn = btn(selected.has(i) ? "deselect" : "select", "iw-node-select");
    selBtn.addEventListener("click", () => toggle(i));
    const tools = h("div", { class: "iw-controls" }, selBtn);
    if (node.kind === "head") {
      const attn = btn("attention pattern (clean prompt)", "iw-node-attention");
      attn.disabled = !actions || !state.get().hasContext;
      attn.title = attn.disabled ? "needs the kernel and the graph's model and prompts" : "";
      attn.addEventListener("click", () => openHead(node.layer, node.head ?? 0));
      tools.append(attn);
    }
    detail.replaceChildren(
      h("div", { class: "iw-controls" }, h("span", { class: "iw-title", "data-testid": "iw-node-title" }, node.name), close),
      h("div", { class: "iw-muted iw-small" }, `kept edges (threshold and top-k applied)`),
      tools,
      edgeTable("incoming", incoming, (e) => `${gg.nodes[gg.senders[e]].name}${TARGETS[gg.targets[e]] ? ` → .${TARGETS[gg.targets[e]]}` : ""}`),
      edgeTable("outgoing", outgoing, (e) => `${gg.nodes[gg.receivers[e]].name}${TARGETS[gg.targets[e]] ? `.${TARGETS[gg.targets[e]]}` : ""}`),
    );
    detail.dataset.node = node.name;
    detail.style.display = "";
  };
  const openHead = (layer: number, head: number) => {
    if (!actions) return;
    const id = ++headRequest;
    heads.message(`loading L${layer}H${head}…`);
    actions.openHead(layer, head).then(
      (p) => { if (id === headRequest) heads.show(p); },
      (err: unknown) => { if (id === headRequest) heads.message(errorText(err), "error"); },
    );
  };
  const toggle = (i: number) => {
    if (selected.has(i)) selected.delete(i);
    else selected.add(i);
    refreshSelection();
    if (focused === i) showDetail(i);
  };
  scroller.addEventListener("click", (ev) => {
    const hit = target(ev);
    if (hit.node === undefined) return;
    if (ev.shiftKey) {
      toggle(hit.node);
      return;
    }
    focused = hit.node;
    refreshSelection();
    showDetail(hit.node);
  });
  selectVisible.addEventListener("click", () => {
    if (!g || !view) return;
    const deg = view.show(pr.drawn);
    g.nodes.forEach((n, i) => {
      if (deg[i] > 0 && n.kind !== "input" && n.kind !== "logits") selected.add(i);
    });
    refreshSelection();
  });
  clearSel.addEventListener("click", () => {
    selected.clear();
    refreshSelection();
  });

  // --- faithfulness -------------------------------------------------------------------------------------------
  let faithRequest = 0;
  faithBtn.addEventListener("click", () => {
    if (!actions || !g || selected.size === 0) return;
    const nodes = withEnds(g, selected);
    const edges = edgesAmong(g, nodes, pr.kept);
    const gg = g;
    const id = ++faithRequest;
    error.textContent = "";
    faithOut.dataset.state = "running";
    faithOut.textContent = `measuring ${edges.length} edges among ${nodes.length} nodes…`;
    faithBtn.disabled = true;
    actions.faithfulness({ nodes: nodes.map((i) => gg.nodes[i].name) as [string, ...string[]], edges }).then(
      (r) => {
        if (id !== faithRequest) return;
        faithOut.dataset.state = "done";
        faithOut.dataset.fraction = r.fraction === null ? "" : String(r.fraction);
        faithOut.dataset.nEdges = String(r.n_edges);
        faithOut.textContent = `sub-circuit of ${r.n_edges} edges among ${r.nodes.length} nodes: faithfulness `
          + `${r.fraction === null ? "undefined (clean = empty)" : `${(100 * r.fraction).toFixed(1)}%`} `
          + `(metric with the sub-circuit ${formatScore(r.circuit_metric)}, clean ${formatScore(r.clean_metric)}, `
          + `everything ablated ${formatScore(r.empty_metric)}; ${r.ablation} ablation)`;
      },
      (err: unknown) => {
        if (id !== faithRequest) return;
        faithOut.dataset.state = "error";
        faithOut.textContent = "";
        error.textContent = errorText(err);
      },
    ).finally(() => refreshSelection());
  });

  // --- export -------------------------------------------------------------------------------------------------
  const svgText = () => {
    if (!view || !layout) return "";
    const copy = view.svg.cloneNode(true) as SVGSVGElement; // the file has the graph's own size, not the zoom's
    copy.setAttribute("width", String(layout.width));
    copy.setAttribute("height", String(layout.height));
    return serializeSvg(copy);
  };
  svgBtn.addEventListener("click", () => {
    if (!view) return;
    download("circuit.svg", new Blob([svgText()], { type: "image/svg+xml" }));
  });
  pngBtn.addEventListener("click", () => {
    if (!view || !layout) return;
    svgToPng(svgText(), layout.width, layout.height).then(
      (blob) => download("circuit.png", blob),
      (err: unknown) => { error.textContent = errorText(err); },
    );
  });

  // --- controls -> pruning (no kernel) -----------------------------------------------------------------------
  slider.addEventListener("input", () => {
    if (!g) return;
    threshold = sliderToThreshold(Number(slider.value), g.maxAbs);
    apply();
  });
  topK.addEventListener("input", () => {
    const v = Math.floor(Number(topK.value));
    if (!Number.isFinite(v) || v < 0) return;
    k = v;
    apply();
  });

  // --- state -> view --------------------------------------------------------------------------------------------
  let shownGraph: CircuitGraph | null = null;
  let shownPruning: [number, number] | null = null;
  const sync = (s: CircuitViewState) => {
    if (s.graph !== shownGraph) {
      if (shownGraph !== null) {
        delete memory.threshold;
        delete memory.topK;
        delete memory.selected;
      }
      shownGraph = s.graph;
      g = s.graph;
      selected.clear();
      focused = null;
      detail.style.display = "none";
      heads.close();
      layout = layoutCircuit(g);
      view = createCircuitSvg(doc, g, layout, palette(theme));
      scroller.replaceChildren(view.svg);
      setZoom(zoom);
      root.dataset.nodes = String(g.nodes.length);
      root.dataset.layoutMs = layout.ms.toFixed(1);
      title.textContent = g.title;
      sub.textContent = [`${g.method} · ${g.metric}`,
        g.cleanMetric !== null ? `clean ${formatScore(g.cleanMetric)}` : "",
        g.corruptedMetric !== null ? `corrupted ${formatScore(g.corruptedMetric)}` : "",
        `${g.nodes.length} nodes · ${g.scores.length.toLocaleString("en-US")} of ${g.nEdgesTotal.toLocaleString("en-US")} edges kept`,
        g.note].filter(Boolean).join(" · ");
    }
    // the traits set the pruning when they change (Python set them); a re-created view keeps its own
    if (shownPruning === null && memory.threshold !== undefined && memory.topK !== undefined) {
      threshold = memory.threshold;
      k = memory.topK;
      for (const i of memory.selected ?? []) if (i >= 0 && i < (g as CircuitGraph).nodes.length) selected.add(i);
    } else if (shownPruning === null || shownPruning[0] !== s.threshold || shownPruning[1] !== s.topK) {
      threshold = s.threshold;
      k = s.topK;
    }
    shownPruning = [s.threshold, s.topK];
    cap = Math.max(1, s.maxDrawn);
    slider.value = String(thresholdToSlider(threshold, (g as CircuitGraph).maxAbs));
    topK.value = String(k);
    apply();
    refreshSelection();
  };
  drawLegend();
  sync(state.get());
  const t1 = typeof performance !== "undefined" ? performance.now() : Date.now();
  root.dataset.renderMs = (t1 - t0).toFixed(1);
  const unsubscribe = state.subscribe((s) => sync(s));

  const retheme = () => {
    theme = readTheme(root);
    view?.recolor(palette(theme));
    drawLegend();
    heads.redraw();
  };
  const unwatch = watchThemeRedraw(retheme);
  return () => {
    unsubscribe();
    unwatch();
    doc.removeEventListener("pointermove", onMove);
    doc.removeEventListener("pointerup", endDrag);
    heads.destroy();
    root.remove();
  };
}
