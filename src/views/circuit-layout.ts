// Layered layout of a circuit graph with dagre: the input at the bottom, the logits at the top, one band
// per layer (its heads, and its MLP just above them, since the MLP reads the heads' output).
//
// dagre ranks the nodes and orders each rank to reduce crossings; it has no rank constraints, so every
// layout edge gets minlen = the rank difference we want, and chain edges between adjacent ranks (input ->
// layer 0's heads -> MLP 0 -> layer 1's heads ... -> logits; head h -> head h without MLPs) connect the
// graph: every edge can then be tight, the unique optimum of dagre's network-simplex ranking. The
// strongest short edges join the layout graph, so each row's order follows them. Each row is then packed
// in dagre's order (dagre's own x spreads rows far apart around long edges); y comes from the band.
import dagre from "@dagrejs/dagre";
import type { CircuitGraph } from "./circuit-model";

export const NODE_W = 52;
export const NODE_H = 26;
export const END_W = 84;
/** gap between nodes in a row */
export const GAP = 8;
/** height of a layer's band: its heads, with the MLP above them when there is one */
export function bandHeight(hasMlp: boolean): number {
  return hasMlp ? 80 : 56;
}
export const MARGIN = { left: 56, right: 16, top: 16, bottom: 16 };
/** how many of the strongest edges shape the layout (beyond the chains) */
export const LAYOUT_EDGES = 60;
/** ... among those spanning at most this many ranks (long edges add a dummy node per rank crossed) */
export const LAYOUT_SPAN = 2;

export interface NodeBox {
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface Layout {
  width: number;
  height: number;
  boxes: NodeBox[];
  /** band i (0: input, 1..n_layers: layers, n_layers + 1: logits): its top y and height */
  bands: { y: number; h: number; label: string }[];
  ms: number;
  /** nodes whose dagre rank came out other than asked (0 unless dagre changes) */
  misplaced: number;
}

export function rankOf(g: CircuitGraph, i: number): number {
  const n = g.nodes[i];
  const per = g.hasMlp ? 2 : 1;
  if (n.kind === "input") return 0;
  if (n.kind === "logits") return per * g.nLayers + 1;
  return n.kind === "mlp" ? 2 * n.layer + 2 : per * n.layer + 1;
}

function band(g: CircuitGraph, i: number): number {
  const n = g.nodes[i];
  return n.kind === "input" ? 0 : n.kind === "logits" ? g.nLayers + 1 : n.layer + 1;
}

const now = () => (typeof performance !== "undefined" ? performance.now() : Date.now());

/** dagre's ranks (forced) and order within each rank; returns each node's dagre x. */
function dagreOrder(g: CircuitGraph, rank: number[], nLayoutEdges: number): { x: number[]; misplaced: number } {
  const dg = new dagre.graphlib.Graph({ multigraph: false });
  dg.setGraph({ rankdir: "BT", nodesep: 10, edgesep: 4, ranksep: 20, marginx: 0, marginy: 0, ranker: "longest-path" });
  dg.setDefaultEdgeLabel(() => ({}));
  g.nodes.forEach((n, i) => {
    dg.setNode(String(i), { width: n.kind === "input" || n.kind === "logits" ? END_W : NODE_W, height: NODE_H });
  });
  const addEdge = (s: number, r: number, weight: number) => {
    const minlen = rank[r] - rank[s];
    if (minlen <= 0) return;
    const old = dg.edge(String(s), String(r)) as { weight?: number } | undefined;
    dg.setEdge(String(s), String(r), { minlen, weight: (old?.weight ?? 0) + weight });
  };
  // chains between adjacent ranks (no dummy nodes): input -> layer 0 -> (MLP 0 ->) layer 1 ... -> logits
  const rows: number[][] = [];
  g.nodes.forEach((_, i) => (rows[rank[i]] ??= []).push(i));
  for (let r = 1; r < rows.length; r++) {
    const below = rows[r - 1] ?? [];
    const here = rows[r] ?? [];
    if (below.length === 1 || here.length === 1 || below.length !== here.length) {
      for (const s of below) for (const t of here) if (below.length === 1 || here.length === 1) addEdge(s, t, 1);
    } else {
      below.forEach((s, j) => addEdge(s, here[j], 1)); // head h -> head h (attention-only models)
    }
  }
  // the strongest short edges: each row's order follows them
  for (let e = 0, used = 0; e < g.scores.length && used < nLayoutEdges; e++) {
    const span = rank[g.receivers[e]] - rank[g.senders[e]];
    if (span < 1 || span > LAYOUT_SPAN) continue;
    addEdge(g.senders[e], g.receivers[e], 2);
    used++;
  }
  dagre.layout(dg, (globalThis as { IW_DAGRE_DEBUG?: boolean }).IW_DAGRE_DEBUG ? { debugTiming: true } as never : undefined);
  const seen = new Map<number, number>();
  let misplaced = 0;
  const x = g.nodes.map((_, i) => {
    const d = dg.node(String(i)) as { x: number; rank?: number };
    if (d.rank !== undefined) {
      if (seen.has(rank[i]) && seen.get(rank[i]) !== d.rank) misplaced++;
      else seen.set(rank[i], d.rank);
    }
    return d.x;
  });
  return { x, misplaced };
}

export function layoutCircuit(g: CircuitGraph, nLayoutEdges = LAYOUT_EDGES): Layout {
  const t0 = now();
  const rank = g.nodes.map((_, i) => rankOf(g, i));
  const { x: dx, misplaced } = dagreOrder(g, rank, nLayoutEdges);
  // x: each rank's nodes in dagre's order, packed; a lone node (an MLP) keeps its relative dagre x
  const w = g.nodes.map((n) => (n.kind === "input" || n.kind === "logits" ? END_W : NODE_W));
  const rows: number[][] = [];
  g.nodes.forEach((_, i) => (rows[rank[i]] ??= []).push(i));
  const rowWidth = (row: number[]) => row.reduce((a, i) => a + w[i], 0) + GAP * Math.max(0, row.length - 1);
  const inner = Math.max(NODE_W, ...rows.filter(Boolean).map(rowWidth));
  const dMin = Math.min(...dx);
  const dSpan = Math.max(1, Math.max(...dx) - dMin);
  const left = new Array<number>(g.nodes.length).fill(0);
  for (const row of rows) {
    if (!row) continue;
    if (row.length === 1) {
      const i = row[0];
      const c = g.nodes[i].kind === "mlp" ? ((dx[i] - dMin) / dSpan) * (inner - w[i]) + w[i] / 2 : inner / 2;
      left[i] = MARGIN.left + c - w[i] / 2;
      continue;
    }
    const sorted = [...row].sort((a, b) => dx[a] - dx[b]);
    let at = MARGIN.left + (inner - rowWidth(row)) / 2;
    for (const i of sorted) {
      left[i] = at;
      at += w[i] + GAP;
    }
  }
  // y: from the band (input at the bottom); a layer's MLP above its heads
  const nBands = g.nLayers + 2;
  const bandH = bandHeight(g.hasMlp);
  const bands = Array.from({ length: nBands }, (_, b) => ({
    y: MARGIN.top + (nBands - 1 - b) * bandH,
    h: bandH,
    label: b === 0 ? "input" : b === nBands - 1 ? "logits" : `layer ${b - 1}`,
  }));
  const boxes = g.nodes.map((n, i) => {
    const bnd = bands[band(g, i)];
    const mid = bnd.y + bnd.h / 2;
    const y = n.kind === "mlp" ? mid - NODE_H - 3 : n.kind === "head" && g.hasMlp ? mid + 3 : mid - NODE_H / 2;
    return { x: left[i], y, w: w[i], h: NODE_H };
  });
  return {
    width: Math.ceil(MARGIN.left + inner + MARGIN.right),
    height: MARGIN.top + nBands * bandH + MARGIN.bottom,
    boxes, bands, ms: now() - t0, misplaced,
  };
}

/** Where an edge leaves its sender (top centre) and enters its receiver (bottom; q/k/v ports on heads). */
export function portX(box: NodeBox, target: number): number {
  return target === 0 ? box.x + box.w / 2 : box.x + (box.w * target) / 4;
}

export function edgePath(s: NodeBox, r: NodeBox, target: number): string {
  const x1 = s.x + s.w / 2;
  const y1 = s.y;
  const x2 = portX(r, target);
  const y2 = r.y + r.h;
  const dy = Math.max(12, (y1 - y2) / 2);
  return `M${x1.toFixed(1)},${y1.toFixed(1)} C${x1.toFixed(1)},${(y1 - dy).toFixed(1)} `
    + `${x2.toFixed(1)},${(y2 + dy).toFixed(1)} ${x2.toFixed(1)},${y2.toFixed(1)}`;
}
