// @vitest-environment jsdom
// The circuit graph view: decoding and pruning (checked against brute-force loops), the dagre layout of a
// GPT-2-small-shaped graph (158 nodes: rows, ranks, no overlaps), and the DOM through the anywidget entry
// with a fake model and kernel: pruning sends nothing, node detail, selection, the faithfulness request,
// errors, SVG export, and the static page.
import { afterEach, describe, expect, it } from "vitest";
import type { CircuitGraphData, CircuitNode, CircuitState, TensorPayload } from "../schema/generated";
import { FakeModel, f32 } from "../attention/testdata";
import type { Invoke } from "../attention/source";
import { bindCircuit } from "../widgets/circuit";
import {
  DECADES, SLIDER_STEPS, decodeCircuit, degrees, edgeName, edgesAmong, edgeStyle, nodeEdges, prune,
  sliderToThreshold, thresholdToSlider, withEnds,
} from "./circuit-model";
import { layoutCircuit, rankOf } from "./circuit-layout";
import { mountAllCircuits } from "./circuit-static";
import { palette } from "./circuit-svg";
import { ZOOM_MAX, ZOOM_MIN, clampZoom, countText, fitZoom } from "./circuit";

function typed(dtype: "uint16" | "uint8", values: number[]): TensorPayload {
  const arr = dtype === "uint16" ? Uint16Array.from(values) : Uint8Array.from(values);
  return { dtype, shape: [values.length], data: new DataView(arr.buffer) };
}

/** A Blob's text (jsdom's Blob has no .text()). */
function blobText(blob: Blob): Promise<string> {
  return new Promise<string>((resolve) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result));
    reader.readAsText(blob);
  });
}

/** Seeded uniform numbers in [0, 1). */
function rng(seed: number): () => number {
  let s = seed;
  return () => (s = (s * 16807) % 2147483647) / 2147483647;
}

/** Every edge of an `nLayers x nHeads` model (as interp_widget's EdgeIndex), seeded random scores,
 * sorted by decreasing |score| like the Python side ships them. */
function graphData(nLayers: number, nHeads: number, hasMlp = true, seed = 1): CircuitGraphData {
  const nodes: CircuitNode[] = [{ name: "input", kind: "input", layer: -1, head: null }];
  const edges: [number, number, number][] = [];
  for (let l = 0; l < nLayers; l++) {
    const upstream = nodes.length;
    for (let h = 0; h < nHeads; h++) for (let t = 1; t <= 3; t++) for (let s = 0; s < upstream; s++) edges.push([s, upstream + h, t]);
    for (let h = 0; h < nHeads; h++) nodes.push({ name: `L${l}H${h}`, kind: "head", layer: l, head: h });
    if (hasMlp) {
      const m = nodes.length;
      for (let s = 0; s < m; s++) edges.push([s, m, 0]);
      nodes.push({ name: `MLP${l}`, kind: "mlp", layer: l, head: null });
    }
  }
  const logits = nodes.length;
  for (let s = 0; s < logits; s++) edges.push([s, logits, 0]);
  nodes.push({ name: "logits", kind: "logits", layer: nLayers, head: null });
  const r = rng(seed);
  const scored = edges.map((e) => ({ e, s: (r() - 0.5) * r() ** 4 }));
  scored.sort((a, b) => Math.abs(b.s) - Math.abs(a.s));
  return {
    title: "test circuit", method: "eap", metric: "logit diff", clean_metric: 2, corrupted_metric: 0.5,
    n_layers: nLayers, n_heads: nHeads, has_mlp: hasMlp, nodes, n_edges_total: edges.length,
    senders: typed("uint16", scored.map((x) => x.e[0])), receivers: typed("uint16", scored.map((x) => x.e[1])),
    targets: typed("uint8", scored.map((x) => x.e[2])), scores: f32(scored.map((x) => x.s), [scored.length]), note: "",
  };
}

function state(over: Partial<CircuitState> = {}, data = graphData(12, 12)): CircuitState {
  return { graph: data, threshold: 0, top_k: 100, max_drawn: 2000, has_context: true, ...over };
}

const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));
const q = <T extends Element>(el: Element, sel: string) => el.querySelector<T & HTMLElement>(sel)!;
const drawnPaths = (el: Element) =>
  [...el.querySelectorAll("[data-testid='iw-circuit-edge']")].filter((p) => p.getAttribute("display") !== "none");

describe("circuit model", () => {
  const g = decodeCircuit(graphData(3, 4));

  it("decodes the edge arrays and names edges like the Python side", () => {
    expect(g.nodes.length).toBe(1 + 3 * 5 + 1);
    // heads: 3 targets x upstream senders; MLPs and logits: upstream senders
    let expected = 0;
    for (let l = 0; l < 3; l++) expected += 4 * 3 * (1 + 5 * l) + (1 + 5 * l + 4);
    expected += 1 + 15;
    expect(g.scores.length).toBe(expected);
    const names = new Set(Array.from(g.scores, (_, i) => edgeName(g, i)));
    expect(names.size).toBe(expected);
    expect(names.has("L0H1->L1H2.k")).toBe(true);
    expect(names.has("MLP2->logits")).toBe(true);
    expect(names.has("L1H2->L0H1.q")).toBe(false);
  });

  it("prunes as a prefix: threshold, top-k, drawing cap (brute force agrees)", () => {
    for (const [thr, k, cap] of [[0, 0, 10_000], [0.01, 0, 10_000], [0.01, 30, 10_000], [0.001, 50, 20], [1e9, 5, 5]]) {
      const pr = prune(g, thr, k, cap);
      let passing = 0;
      for (const s of g.scores) if (Math.abs(s) >= thr) passing++;
      expect(pr.passing).toBe(passing);
      expect(pr.kept).toBe(k > 0 ? Math.min(k, passing) : passing);
      expect(pr.drawn).toBe(Math.min(pr.kept, cap));
    }
  });

  it("maps the slider to a threshold on a log scale and back", () => {
    expect(sliderToThreshold(0, 2)).toBe(0);
    expect(sliderToThreshold(SLIDER_STEPS, 2)).toBeCloseTo(2);
    expect(sliderToThreshold(SLIDER_STEPS / 2, 2)).toBeCloseTo(2 * 10 ** (-DECADES / 2));
    for (const v of [1, 250, 500, 999]) expect(thresholdToSlider(sliderToThreshold(v, 3), 3)).toBe(v);
    expect(thresholdToSlider(0, 3)).toBe(0);
  });

  it("finds a node's edges, degrees and the edges among selected nodes", () => {
    const n = 200;
    const node = g.nodes.findIndex((x) => x.name === "L1H0");
    const { incoming, outgoing } = nodeEdges(g, node, n);
    for (const e of incoming) expect(g.receivers[e]).toBe(node);
    for (const e of outgoing) expect(g.senders[e]).toBe(node);
    expect(degrees(g, n)[node]).toBe(incoming.length + outgoing.length);
    const sel = withEnds(g, [node, g.nodes.findIndex((x) => x.name === "L2H3")]);
    expect(sel.map((i) => g.nodes[i].name)).toEqual(["input", "L1H0", "L2H3", "logits"]);
    const among = edgesAmong(g, sel, n);
    const brute = [];
    for (let e = 0; e < n; e++) if (sel.includes(g.senders[e]) && sel.includes(g.receivers[e])) brute.push(e);
    expect(among).toEqual(brute);
  });

  it("styles edges by sign and |score|", () => {
    expect(edgeStyle(1, 2).positive).toBe(true);
    expect(edgeStyle(-1, 2).positive).toBe(false);
    expect(edgeStyle(-2, 2).width).toBeGreaterThan(edgeStyle(0.5, 2).width);
    expect(edgeStyle(0, 2).width).toBeGreaterThan(0);
  });

  it("follows the theme: colours for light and dark backgrounds", () => {
    const base = { heat: [0, 0, 0] as [number, number, number], fg: "#000", muted: "#666", border: "#ccc", accent: "#06c", font: "x" };
    const light = palette({ ...base, dark: false, bg: [255, 255, 255] });
    const dark = palette({ ...base, dark: true, bg: [30, 30, 30] });
    expect(light.bg).toBe("rgb(255, 255, 255)");
    expect(dark.bg).toBe("rgb(30, 30, 30)");
    expect(dark.positive).not.toBe(light.positive);
    expect(dark.negative).not.toBe(light.negative);
    expect(light.accent).toBe("#06c");
  });

  it("refuses edge arrays that do not match", () => {
    const d = graphData(1, 2);
    expect(() => decodeCircuit({ ...d, targets: typed("uint8", [0]) })).toThrow(/differ in length/);
    expect(() => decodeCircuit({ ...d, scores: typed("uint8", [0]) })).toThrow(/float32/);
  });
});

describe("layout", () => {
  it("lays out a GPT-2-small-shaped graph in rows: input at the bottom, logits at the top", () => {
    const g = decodeCircuit(graphData(12, 12));
    expect(g.nodes.length).toBe(158);
    const L = layoutCircuit(g);
    expect(L.misplaced).toBe(0);
    const byName = new Map(g.nodes.map((n, i) => [n.name, L.boxes[i]]));
    const input = byName.get("input")!;
    const logits = byName.get("logits")!;
    for (let l = 0; l < 12; l++) {
      const ys = new Set(Array.from({ length: 12 }, (_, h) => byName.get(`L${l}H${h}`)!.y));
      expect(ys.size).toBe(1); // one row per layer
      const y = [...ys][0];
      expect(y).toBeLessThan(input.y);
      expect(y).toBeGreaterThan(logits.y);
      expect(byName.get(`MLP${l}`)!.y).toBeLessThan(y); // the MLP above its heads
      if (l > 0) expect(y).toBeLessThan(byName.get(`L${l - 1}H0`)!.y); // later layers higher
    }
    // no two boxes overlap
    for (let i = 0; i < L.boxes.length; i++) {
      for (let j = i + 1; j < L.boxes.length; j++) {
        const a = L.boxes[i];
        const b = L.boxes[j];
        const overlap = a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
        expect(overlap, `${g.nodes[i].name} and ${g.nodes[j].name} overlap`).toBe(false);
      }
    }
    for (const b of L.boxes) {
      expect(b.x).toBeGreaterThanOrEqual(0);
      expect(b.x + b.w).toBeLessThanOrEqual(L.width);
      expect(b.y + b.h).toBeLessThanOrEqual(L.height);
    }
  });

  it("ranks attention-only models one rank per layer", () => {
    const g = decodeCircuit(graphData(2, 3, false));
    expect(g.nodes.map((_, i) => rankOf(g, i))).toEqual([0, 1, 1, 1, 2, 2, 2, 3]);
    expect(layoutCircuit(g).misplaced).toBe(0);
  });
});

describe("circuit view (anywidget entry)", () => {
  let cleanup: (() => void) | null = null;
  afterEach(() => {
    cleanup?.();
    cleanup = null;
    document.body.replaceChildren();
    (globalThis as { __iwCircuitViews?: Map<string, unknown> }).__iwCircuitViews?.clear(); // views remember their graph
  });

  function mount(over: Partial<CircuitState> = {}, reply?: (name: string, msg: unknown) => unknown) {
    const model = new FakeModel<CircuitState>(state(over));
    const calls: [string, unknown][] = [];
    const invoke: Invoke = async <T>(name: string, msg?: unknown) => {
      calls.push([name, msg]);
      const r = reply ? reply(name, msg) : { ok: false, error: { type_name: "LookupError", message: "no" } };
      return [{ reply: r, buffer_paths: [] } as unknown as T, []];
    };
    const el = document.createElement("div");
    document.body.append(el);
    const downloads: [string, Blob][] = [];
    cleanup = bindCircuit(model as never, el, invoke);
    return { model, el, calls, downloads };
  }

  it("renders every node and the top-k edges; the slider and top-k prune without a kernel call", () => {
    const { model, el, calls } = mount();
    const root = q(el, "[data-testid='iw-circuit']");
    expect(el.querySelectorAll("[data-testid='iw-circuit-node']").length).toBe(158);
    expect(drawnPaths(el).length).toBe(100);
    expect(root.dataset.drawn).toBe("100");
    const g = decodeCircuit(model.get("graph"));
    const slider = q<HTMLInputElement>(el, "[data-testid='iw-threshold']");
    const v = thresholdToSlider(Math.abs(g.scores[40]), g.maxAbs) + 1; // just above the 41st strongest edge
    slider.value = String(v);
    slider.dispatchEvent(new Event("input"));
    const thr = sliderToThreshold(v, g.maxAbs);
    const expected = Math.min(100, prune(g, thr, 0, 1e9).passing);
    expect(expected).toBeLessThan(100);
    expect(expected).toBeGreaterThan(0);
    expect(drawnPaths(el).length).toBe(expected);
    expect(root.dataset.drawn).toBe(String(expected));
    const topk = q<HTMLInputElement>(el, "[data-testid='iw-topk']");
    slider.value = "0";
    slider.dispatchEvent(new Event("input"));
    topk.value = "7";
    topk.dispatchEvent(new Event("input"));
    expect(drawnPaths(el).length).toBe(7);
    // the drawn edges are the 7 strongest, and nodes without a drawn edge fade
    const drawnIdx = drawnPaths(el).map((p) => Number(p.getAttribute("data-e"))).sort((a, b) => a - b);
    expect(drawnIdx).toEqual([0, 1, 2, 3, 4, 5, 6]);
    const deg = degrees(g, 7);
    el.querySelectorAll<SVGGElement>("[data-testid='iw-circuit-node']").forEach((n, i) => {
      expect(n.dataset.faded).toBe(deg[i] === 0 ? "1" : "0");
    });
    expect(calls).toEqual([]);
    expect(model.sets).toEqual([]);
    expect(model.saves).toBe(0);
  });

  it("caps the edges drawn and says so", () => {
    const { el } = mount({ top_k: 0, max_drawn: 300 });
    expect(drawnPaths(el).length).toBe(300);
    expect(q(el, "[data-testid='iw-edge-count']").textContent).toContain("at most 300 are drawn");
    expect(countText({ passing: 10, kept: 10, drawn: 10 }, 300)).toBe("10 edges pass the threshold · 10 drawn");
  });

  it("follows the threshold and top-k traits set from Python", () => {
    const { model, el } = mount();
    model.set("top_k", 12);
    expect(drawnPaths(el).length).toBe(12);
    const g = decodeCircuit(model.get("graph"));
    model.set("threshold", Math.abs(g.scores[4]));
    expect(drawnPaths(el).length).toBe(5);
  });

  it("a re-created view keeps its pruning and selection (nothing sent)", () => {
    const { model, el, calls } = mount();
    const topk = q<HTMLInputElement>(el, "[data-testid='iw-topk']");
    topk.value = "17";
    topk.dispatchEvent(new Event("input"));
    q(el, "[data-testid='iw-circuit-node'][data-node='3']").dispatchEvent(new MouseEvent("click", { bubbles: true, shiftKey: true }));
    cleanup?.();
    const el2 = document.createElement("div");
    document.body.append(el2);
    cleanup = bindCircuit(model as never, el2, async () => { throw new Error("no kernel"); });
    expect(drawnPaths(el2).length).toBe(17);
    expect(q(el2, "[data-testid='iw-circuit']").dataset.selected).toBe("1");
    expect(q(el2, "[data-testid='iw-circuit-node'][data-node='3']").dataset.selected).toBe("1");
    model.set("top_k", 5); // Python sets the pruning: it wins
    expect(drawnPaths(el2).length).toBe(5);
    expect(calls).toEqual([]);
    expect(model.saves).toBe(0);
  });

  it("hover shows an edge's score; click opens a node's detail with its edges", () => {
    const { model, el } = mount();
    const g = decodeCircuit(model.get("graph"));
    const path = q(el, "[data-testid='iw-circuit-edge'][data-e='0']");
    path.dispatchEvent(new MouseEvent("mousemove", { bubbles: true, clientX: 5, clientY: 5 }));
    const tip = q(el, "[data-testid='iw-tooltip']");
    expect(tip.dataset.visible).toBe("1");
    expect(q(tip, "[data-role='score']").textContent).toBe(g.scores[0].toFixed(4));
    const sender = g.senders[0];
    const node = q(el, `[data-testid='iw-circuit-node'][data-node='${sender}']`);
    node.dispatchEvent(new MouseEvent("click", { bubbles: true }));
    const detail = q(el, "[data-testid='iw-node-detail']");
    expect(detail.style.display).toBe("");
    expect(detail.dataset.node).toBe(g.nodes[sender].name);
    const { incoming, outgoing } = nodeEdges(g, sender, 100);
    expect(detail.querySelectorAll("[data-role='outgoing'] tr").length).toBe(Math.min(12, outgoing.length));
    expect(detail.querySelectorAll("[data-role='incoming'] tr").length).toBe(Math.min(12, incoming.length));
    expect(q(detail, "[data-role='outgoing'] tr").getAttribute("data-e")).toBe("0");
  });

  it("shift-click selects; faithfulness sends the kept edges among the selection (with input and logits)", async () => {
    const reply = { ok: true, fraction: 0.8125, circuit_metric: 1.7, clean_metric: 2, empty_metric: 0.4, n_edges: 0,
      nodes: [], ablation: "resample" };
    const { model, el, calls } = mount({}, (_, msg) => ({ ...reply, n_edges: (msg as { edges: number[] }).edges.length,
      nodes: (msg as { nodes: string[] }).nodes }));
    const g = decodeCircuit(model.get("graph"));
    const button = q<HTMLButtonElement>(el, "[data-testid='iw-faithfulness']");
    expect(button.disabled).toBe(true);
    const pick = [g.senders[0], g.receivers[0], g.senders[1]].filter((i) => g.nodes[i].kind === "head" || g.nodes[i].kind === "mlp");
    for (const i of new Set(pick)) {
      q(el, `[data-testid='iw-circuit-node'][data-node='${i}']`).dispatchEvent(new MouseEvent("click", { bubbles: true, shiftKey: true }));
    }
    expect(q(el, "[data-testid='iw-circuit']").dataset.selected).toBe(String(new Set(pick).size));
    expect(button.disabled).toBe(false);
    button.click();
    await tick();
    expect(calls.length).toBe(1);
    const [name, msg] = calls[0] as [string, { nodes: string[]; edges: number[] }];
    expect(name).toBe("faithfulness");
    const names = new Set(msg.nodes);
    expect(names.has("input") && names.has("logits")).toBe(true);
    const brute = [];
    for (let e = 0; e < 100; e++) {
      if (names.has(g.nodes[g.senders[e]].name) && names.has(g.nodes[g.receivers[e]].name)) brute.push(e);
    }
    expect(msg.edges).toEqual(brute);
    expect(brute).toContain(0);
    const out = q(el, "[data-testid='iw-faith-result']");
    expect(out.dataset.state).toBe("done");
    expect(out.textContent).toContain("81.3%");
    expect(out.dataset.nEdges).toBe(String(brute.length));
  });

  it("shows the kernel's error reply", async () => {
    const { el } = mount({}, () => ({ ok: false, error: { type_name: "InputMismatchError", message: "this graph has no model context" } }));
    q(el, "[data-testid='iw-circuit-node'][data-node='5']").dispatchEvent(new MouseEvent("click", { bubbles: true, shiftKey: true }));
    q<HTMLButtonElement>(el, "[data-testid='iw-faithfulness']").click();
    await tick();
    expect(q(el, "[data-testid='iw-error']").textContent).toBe("InputMismatchError: this graph has no model context");
    expect(q(el, "[data-testid='iw-faith-result']").dataset.state).toBe("error");
  });

  it("asks the kernel for a head's attention pattern from the detail pane", async () => {
    const { el, calls } = mount();
    q(el, "[data-testid='iw-circuit-node'][data-name='L3H4']").dispatchEvent(new MouseEvent("click", { bubbles: true }));
    q<HTMLButtonElement>(el, "[data-testid='iw-node-attention']").click();
    await tick();
    expect(calls[0]).toEqual(["open_head", { layer: 3, head: 4, window_size: 48 }]);
    expect(q(el, "[data-testid='iw-head-status']").textContent).toBe("LookupError: no");
  });

  it("exports the drawn graph as an SVG file", async () => {
    const model = new FakeModel<CircuitState>(state({ top_k: 9 }));
    const el = document.createElement("div");
    document.body.append(el);
    const files: [string, Blob][] = [];
    const { renderCircuit } = await import("./circuit");
    const { createStore } = await import("../attention/store");
    cleanup = renderCircuit(el, {
      state: createStore({ graph: decodeCircuit(model.get("graph")), threshold: 0, topK: 9, maxDrawn: 2000, hasContext: false }),
      actions: null,
      download: (name, blob) => files.push([name, blob]),
    });
    q<HTMLButtonElement>(el, "[data-testid='iw-export-svg']").click();
    expect(files.length).toBe(1);
    expect(files[0][0]).toBe("circuit.svg");
    expect(files[0][1].type).toBe("image/svg+xml");
    const text = await blobText(files[0][1]);
    expect(text.startsWith("<?xml")).toBe(true);
    const svg = new DOMParser().parseFromString(text, "image/svg+xml");
    expect(svg.documentElement.tagName, text.slice(0, 300)).toBe("svg");
    expect(svg.querySelectorAll("[data-testid='iw-circuit-node']").length).toBe(158);
    expect(svg.querySelectorAll("[data-testid='iw-circuit-edge']").length).toBe(9);
    expect(text).toContain(">L11H11<");
    // static: no kernel buttons
    expect(q<HTMLButtonElement>(el, "[data-testid='iw-faithfulness']").disabled).toBe(true);
  });

  it("zooms without a kernel, and exports at the graph's own size", async () => {
    const model = new FakeModel<CircuitState>(state({ top_k: 9 }));
    const el = document.createElement("div");
    document.body.append(el);
    const files: [string, Blob][] = [];
    const memory: { zoom?: number } = {};
    const { renderCircuit } = await import("./circuit");
    const { createStore } = await import("../attention/store");
    cleanup = renderCircuit(el, {
      state: createStore({ graph: decodeCircuit(model.get("graph")), threshold: 0, topK: 9, maxDrawn: 2000, hasContext: false }),
      memory,
      actions: null,
      download: (name, blob) => files.push([name, blob]),
    });
    const svg = q<SVGSVGElement>(el, "[data-testid='iw-circuit-svg']");
    const w0 = Number(svg.getAttribute("width"));
    const h0 = Number(svg.getAttribute("height"));
    expect(q(el, "[data-testid='iw-zoom']").textContent).toBe("100%");
    q<HTMLButtonElement>(el, "[data-testid='iw-zoom-in']").click();
    q<HTMLButtonElement>(el, "[data-testid='iw-zoom-in']").click();
    expect(Number(svg.getAttribute("width"))).toBe(Math.round(w0 * 1.5625));
    expect(Number(svg.getAttribute("height"))).toBe(Math.round(h0 * 1.5625));
    expect(svg.getAttribute("viewBox")).toBe(`0 0 ${w0} ${h0}`);
    expect(memory.zoom).toBeCloseTo(1.5625, 6);
    for (let i = 0; i < 40; i++) q<HTMLButtonElement>(el, "[data-testid='iw-zoom-out']").click();
    expect(Number(q(el, "[data-testid='iw-circuit']").dataset.zoom)).toBe(ZOOM_MIN);
    expect(q<HTMLButtonElement>(el, "[data-testid='iw-zoom-out']").disabled).toBe(true);
    q<HTMLButtonElement>(el, "[data-testid='iw-export-svg']").click();
    const text = await blobText(files[0][1]);
    const exported = new DOMParser().parseFromString(text, "image/svg+xml").documentElement;
    expect([exported.getAttribute("width"), exported.getAttribute("height")]).toEqual([String(w0), String(h0)]);
    expect(Number(svg.getAttribute("width"))).toBe(Math.round(w0 * ZOOM_MIN)); // the view keeps its zoom
    expect(drawnPaths(el).length).toBe(9); // zoom leaves the pruning alone
  });
});

describe("zoom", () => {
  it("clamps, and fits only by shrinking", () => {
    expect(clampZoom(100)).toBe(ZOOM_MAX);
    expect(clampZoom(0)).toBe(ZOOM_MIN);
    expect(clampZoom(Number.NaN)).toBe(1);
    expect(fitZoom(2400, 780)).toBeCloseTo(0.325, 6);
    expect(fitZoom(500, 780)).toBe(1);
    expect(fitZoom(0, 780)).toBe(1);
  });
});

describe("static page", () => {
  it("mounts an embedded circuit graph without a kernel", () => {
    const d = graphData(2, 3);
    const b64 = (p: TensorPayload) => {
      let s = "";
      for (const byte of new Uint8Array(p.data.buffer, p.data.byteOffset, p.data.byteLength)) s += String.fromCharCode(byte);
      return { dtype: p.dtype, shape: p.shape, data: btoa(s) };
    };
    const doc = { kind: "circuit", version: 1, state: { graph: { ...d, senders: b64(d.senders), receivers: b64(d.receivers),
      targets: b64(d.targets), scores: b64(d.scores) }, threshold: 0, top_k: 5, max_drawn: 2000, has_context: false } };
    document.body.innerHTML = `<div class="iw-static" data-iw-static="circuit"><div class="iw-fallback">svg</div>`
      + `<script type="application/json" class="iw-static-data">${JSON.stringify(doc)}</script></div>`;
    mountAllCircuits(document);
    const root = q(document.body, "[data-testid='iw-circuit']");
    expect(root.dataset.mode).toBe("static");
    expect(document.querySelectorAll("[data-testid='iw-circuit-node']").length).toBe(1 + 2 * 4 + 1);
    expect(drawnPaths(document.body).length).toBe(5);
    expect(document.querySelector(".iw-fallback")).toBeNull();
  });
});
