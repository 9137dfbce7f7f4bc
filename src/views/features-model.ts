// Decoded shapes of the feature dashboard's wire models (payloads -> typed arrays), and small pure
// helpers shared by the dashboard and the steering view: token highlighting colours, histogram bars.
import type { PromptActivations, UnitLink, UnitPanel } from "../schema/generated";
import { decode } from "../schema/tensor";

export type UnitKind = "neuron" | "feature";

export interface Example {
  tokens: string[];
  acts: Float32Array;
  peak: number;
  value: number;
  row: number;
}

export interface Bar {
  x0: number;
  x1: number;
  count: number;
}

export interface Panel {
  kind: UnitKind;
  index: number;
  site: string;
  title: string;
  note: string;
  top: Example[];
  bars: Bar[];
  n: number;
  nNonpositive: number;
  promoted: { token: string; value: number }[];
  suppressed: { token: string; value: number }[];
  links: UnitLink[];
  linksTitle: string;
}

export interface PromptActs {
  kind: UnitKind;
  index: number;
  text: string;
  tokens: string[];
  acts: Float32Array;
  links: UnitLink[];
}

function f32(values: Float32Array | Float64Array): Float32Array {
  return values instanceof Float32Array ? values : Float32Array.from(values);
}

export function decodePanel(p: UnitPanel): Panel {
  const counts = decode(p.histogram.counts).values;
  const edges = decode(p.histogram.edges).values;
  if (edges.length !== counts.length + 1) {
    throw new Error(`histogram has ${counts.length} bins but ${edges.length} edges`);
  }
  const bars: Bar[] = [];
  for (let i = 0; i < counts.length; i++) bars.push({ x0: edges[i], x1: edges[i + 1], count: counts[i] });
  return {
    kind: p.kind, index: p.index, site: p.site, title: p.title, note: p.note,
    top: p.top.map((e) => ({ tokens: e.tokens, acts: f32(decode(e.acts).values), peak: e.peak, value: e.value, row: e.row })),
    bars, n: p.histogram.n, nNonpositive: p.histogram.n_nonpositive,
    promoted: p.promoted, suppressed: p.suppressed, links: p.links, linksTitle: p.links_title,
  };
}

export function decodePromptActs(a: PromptActivations): PromptActs {
  const acts = f32(decode(a.acts).values);
  if (acts.length !== a.tokens.length) throw new Error(`${a.tokens.length} tokens but ${acts.length} activations`);
  return { kind: a.kind, index: a.index, text: a.text, tokens: a.tokens, acts, links: a.links };
}

/** Opacity in [0, 1] of a token's highlight: its activation over `max` (non-positive: 0). */
export function intensity(act: number, max: number): number {
  if (!(max > 0) || !Number.isFinite(act) || act <= 0) return 0;
  return Math.min(1, act / max);
}

/** The largest finite activation in `acts` (0 if none is positive). */
export function maxAct(acts: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < acts.length; i++) if (Number.isFinite(acts[i]) && acts[i] > m) m = acts[i];
  return m;
}

/** How a token is shown: visible spaces and newlines. */
export function showToken(t: string): string {
  return t.replace(/\n/g, "⏎").replace(/ /g, "\u00a0");
}

/** The bars to draw: without the tokens at or below 0 when no activation is negative (a ReLU neuron or an SAE
 * feature is 0 on most tokens, which would flatten every other bar); `hidden` is how many were left out. */
export function drawnBars(bars: Bar[], nNonpositive: number): { bars: Bar[]; hidden: number } {
  if (!bars.length || bars[0].x0 < 0 || nNonpositive <= 0) return { bars, hidden: 0 };
  const first = { ...bars[0], count: Math.max(0, bars[0].count - nNonpositive) };
  return { bars: [first, ...bars.slice(1)], hidden: bars[0].count - first.count };
}
