// The circuit graph as the view uses it: decoded edge arrays (sorted by decreasing |score|), and the
// pure functions behind the controls: pruning (threshold, top-k, drawing cap), which nodes have a drawn
// edge, a node's edges, the edges among selected nodes, the slider's threshold scale, edge styles.
import type { CircuitGraphData, CircuitNode } from "../schema/generated";
import { checkPayload } from "../schema/tensor";

export const TARGETS = ["", "q", "k", "v"] as const;

export interface CircuitGraph {
  title: string;
  method: string;
  metric: string;
  cleanMetric: number | null;
  corruptedMetric: number | null;
  nLayers: number;
  nHeads: number;
  hasMlp: boolean;
  nodes: CircuitNode[];
  nEdgesTotal: number;
  note: string;
  senders: Uint16Array;
  receivers: Uint16Array;
  targets: Uint8Array;
  scores: Float32Array;
  /** largest |score| (1 when there is no edge or every score is 0) */
  maxAbs: number;
}

function bytes(p: CircuitGraphData["scores"], dtype: string): Uint8Array {
  if (p.dtype !== dtype) throw new Error(`expected a ${dtype} payload, got ${p.dtype}`);
  checkPayload(p);
  return new Uint8Array(p.data.buffer, p.data.byteOffset, p.data.byteLength);
}

/** Copy a little-endian payload into a typed array (copies: DataViews need not be aligned). */
function typed<T extends Uint16Array | Float32Array | Uint8Array>(p: CircuitGraphData["scores"], dtype: string,
  make: (n: number) => T, size: number): T {
  const src = bytes(p, dtype);
  const out = make(src.byteLength / size);
  new Uint8Array(out.buffer).set(src);
  return out;
}

export function decodeCircuit(d: CircuitGraphData): CircuitGraph {
  const senders = typed(d.senders, "uint16", (n) => new Uint16Array(n), 2);
  const receivers = typed(d.receivers, "uint16", (n) => new Uint16Array(n), 2);
  const targets = typed(d.targets, "uint8", (n) => new Uint8Array(n), 1);
  const scores = typed(d.scores, "float32", (n) => new Float32Array(n), 4);
  const n = scores.length;
  if (senders.length !== n || receivers.length !== n || targets.length !== n) {
    throw new Error(`edge arrays differ in length: ${senders.length} senders, ${receivers.length} receivers, `
      + `${targets.length} targets, ${n} scores`);
  }
  let maxAbs = 0;
  for (let i = 0; i < n; i++) {
    if (senders[i] >= d.nodes.length || receivers[i] >= d.nodes.length) {
      throw new Error(`edge ${i} names node ${Math.max(senders[i], receivers[i])}; the graph has ${d.nodes.length} nodes`);
    }
    if (targets[i] > 3) throw new Error(`edge ${i} has target code ${targets[i]} (0..3)`);
    maxAbs = Math.max(maxAbs, Math.abs(scores[i]));
  }
  return {
    title: d.title, method: d.method, metric: d.metric, cleanMetric: d.clean_metric,
    corruptedMetric: d.corrupted_metric, nLayers: d.n_layers, nHeads: d.n_heads, hasMlp: d.has_mlp,
    nodes: d.nodes, nEdgesTotal: d.n_edges_total, note: d.note,
    senders, receivers, targets, scores, maxAbs: maxAbs > 0 ? maxAbs : 1,
  };
}

export function edgeName(g: CircuitGraph, i: number): string {
  const t = TARGETS[g.targets[i]];
  return `${g.nodes[g.senders[i]].name}->${g.nodes[g.receivers[i]].name}${t ? `.${t}` : ""}`;
}

export interface Pruned {
  /** edges with |score| >= threshold (a prefix of the sorted edges) */
  passing: number;
  /** ... of which the top-k: edges [0, kept) are the pruned circuit */
  kept: number;
  /** ... of which drawn (the cap): edges [0, drawn) */
  drawn: number;
}

/** Edges are sorted by decreasing |score|, so every pruning is a prefix; binary search for the threshold. */
export function prune(g: CircuitGraph, threshold: number, topK: number, cap: number): Pruned {
  let lo = 0;
  let hi = g.scores.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (Math.abs(g.scores[mid]) >= threshold) lo = mid + 1;
    else hi = mid;
  }
  const passing = lo;
  const kept = topK > 0 ? Math.min(passing, topK) : passing;
  return { passing, kept, drawn: Math.min(kept, Math.max(0, cap)) };
}

/** Per node: the number of edges among [0, n) that touch it. */
export function degrees(g: CircuitGraph, n: number): Uint32Array {
  const deg = new Uint32Array(g.nodes.length);
  for (let i = 0; i < n; i++) {
    deg[g.senders[i]]++;
    deg[g.receivers[i]]++;
  }
  return deg;
}

export interface NodeEdges {
  incoming: number[];
  outgoing: number[];
}

/** The edges among [0, n) into and out of `node` (strongest first: the edge order). */
export function nodeEdges(g: CircuitGraph, node: number, n: number): NodeEdges {
  const incoming: number[] = [];
  const outgoing: number[] = [];
  for (let i = 0; i < n; i++) {
    if (g.receivers[i] === node) incoming.push(i);
    if (g.senders[i] === node) outgoing.push(i);
  }
  return { incoming, outgoing };
}

/** Node indices of a selection, with the input and the logits (every sub-circuit needs both). */
export function withEnds(g: CircuitGraph, selected: Iterable<number>): number[] {
  const set = new Set(selected);
  g.nodes.forEach((node, i) => {
    if (node.kind === "input" || node.kind === "logits") set.add(i);
  });
  return [...set].sort((a, b) => a - b);
}

/** The edges among [0, n) whose sender and receiver are both in `nodes`. */
export function edgesAmong(g: CircuitGraph, nodes: Iterable<number>, n: number): number[] {
  const inside = new Uint8Array(g.nodes.length);
  for (const i of nodes) inside[i] = 1;
  const out: number[] = [];
  for (let i = 0; i < n; i++) if (inside[g.senders[i]] && inside[g.receivers[i]]) out.push(i);
  return out;
}

// --- the threshold slider: 0, then a log scale over DECADES decades below the largest |score| ----------
export const SLIDER_STEPS = 1000;
export const DECADES = 4;

export function sliderToThreshold(v: number, maxAbs: number): number {
  if (v <= 0) return 0;
  return maxAbs * 10 ** (-DECADES * (1 - Math.min(v, SLIDER_STEPS) / SLIDER_STEPS));
}

export function thresholdToSlider(t: number, maxAbs: number): number {
  if (!(t > 0)) return 0;
  const v = SLIDER_STEPS * (1 + Math.log10(t / maxAbs) / DECADES);
  return Math.max(1, Math.min(SLIDER_STEPS, Math.round(v)));
}

// --- edge style: colour by sign, width and opacity by |score| (relative to the largest, so stable) ------
export interface EdgeStyle {
  positive: boolean;
  width: number;
  opacity: number;
}

export function edgeStyle(score: number, maxAbs: number): EdgeStyle {
  const t = Math.min(1, Math.abs(score) / maxAbs);
  return { positive: score >= 0, width: 0.6 + 4.4 * Math.sqrt(t), opacity: 0.3 + 0.65 * Math.sqrt(t) };
}

export function formatScore(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return "n/a";
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e4) ? v.toExponential(2) : v.toFixed(4);
}
