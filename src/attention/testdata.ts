// Test data for the view tests: a synthetic widget state built like the Python side builds it,
// and a fake anywidget model. Not part of the bundle.
import type { AttentionState, PatternWindow, TensorPayload } from "../schema/generated";
import { maxPool2d, poolEdges } from "./math";

export function f32(values: ArrayLike<number>, shape: number[]): TensorPayload {
  const arr = Float32Array.from(values);
  return { dtype: "float32", shape, data: new DataView(arr.buffer) };
}

export function u8(values: ArrayLike<number>, shape: number[], scale = 1 / 255, offset = 0): TensorPayload {
  const arr = Uint8Array.from(values);
  return { dtype: "uint8", shape, data: new DataView(arr.buffer), scale, offset };
}

/** A causal pattern per head: head h of layer l attends (l + h) % 3 + 1 tokens back (or to BOS). */
export function syntheticPatterns(nLayers: number, nHeads: number, n: number): Float32Array {
  const out = new Float32Array(nLayers * nHeads * n * n);
  for (let l = 0; l < nLayers; l++) {
    for (let h = 0; h < nHeads; h++) {
      const back = ((l + h) % 3) + 1;
      const base = (l * nHeads + h) * n * n;
      for (let q = 0; q < n; q++) {
        const k = Math.max(0, q - back);
        out[base + q * n + k] = 0.75;
        out[base + q * n] += 0.25; // BOS
      }
    }
  }
  return out;
}

export function headBlock(patterns: Float32Array, nHeads: number, n: number, layer: number, head: number): Float32Array {
  const base = (layer * nHeads + head) * n * n;
  return patterns.slice(base, base + n * n);
}

export function windowPayload(
  patterns: Float32Array, nHeads: number, n: number, prompt: number, layer: number, head: number,
  q0: number, q1: number, k0: number, k1: number,
): PatternWindow {
  const block = headBlock(patterns, nHeads, n, layer, head);
  const vals: number[] = [];
  for (let q = q0; q < q1; q++) for (let k = k0; k < k1; k++) vals.push(block[q * n + k]);
  return { prompt, layer, head, q0, q1, k0, k1, values: f32(vals, [q1 - q0, k1 - k0]) };
}

export function makeState(nLayers: number, nHeads: number, n: number, opts: { windowSize?: number; thumb?: number } = {}): {
  state: AttentionState;
  patterns: Float32Array;
} {
  const thumb = opts.thumb ?? 8;
  const windowSize = opts.windowSize ?? 16;
  const patterns = syntheticPatterns(nLayers, nHeads, n);
  const t = poolEdges(n, thumb).length;
  const thumbs: number[] = [];
  for (let l = 0; l < nLayers; l++) {
    for (let h = 0; h < nHeads; h++) {
      const pooled = maxPool2d(headBlock(patterns, nHeads, n, l, h), n, n, thumb, thumb);
      for (const v of pooled.values) thumbs.push(Math.round(v * 255));
    }
  }
  const prev = Array.from({ length: nLayers * nHeads }, (_, i) => (i % 3 === 0 ? 0.75 : 0.05));
  const ind = Array.from({ length: nLayers * nHeads }, (_, i) => i / (nLayers * nHeads));
  const tokens = Array.from({ length: n }, (_, i) => (i === 0 ? "<bos>" : `t${i % 7}`));
  const s = Math.min(windowSize, n);
  return {
    patterns,
    state: {
      model_name: "toy-model",
      n_layers: nLayers,
      n_heads: nHeads,
      prompts: [{
        text: tokens.join(""),
        tokens,
        thumbs: u8(thumbs, [nLayers, nHeads, t, t]),
        scores: [
          { kind: "previous_token", label: "previous token", values: f32(prev, [nLayers, nHeads]) },
          { kind: "induction", label: "induction", values: f32(ind, [nLayers, nHeads]) },
        ],
      }],
      prompt: 0,
      layer: 0,
      head: 0,
      window_size: windowSize,
      thumb_size: thumb,
      window: windowPayload(patterns, nHeads, n, 0, 0, 0, 0, s, 0, s),
    },
  };
}

type Listener = (...args: unknown[]) => void;

/** Enough of anywidget's model for the entry: get/set/on/off/save_changes, with Backbone's change events. */
export class FakeModel<T extends object> {
  readonly sets: [keyof T, unknown][] = [];
  saves = 0;
  private listeners = new Map<string, Set<Listener>>();
  constructor(public state: T) {}
  get<K extends keyof T>(key: K): T[K] {
    return this.state[key];
  }
  set<K extends keyof T>(key: K, value: T[K]): void {
    if (this.state[key] === value) return;
    this.state[key] = value;
    this.sets.push([key, value]);
    this.emit(`change:${String(key)}`);
  }
  save_changes(): void {
    this.saves++;
  }
  on(name: string, cb: Listener): void {
    if (!this.listeners.has(name)) this.listeners.set(name, new Set());
    this.listeners.get(name)!.add(cb);
  }
  off(name?: string | null, cb?: Listener | null): void {
    if (!name) this.listeners.clear();
    else if (!cb) this.listeners.delete(name);
    else this.listeners.get(name)?.delete(cb);
  }
  emit(name: string, ...args: unknown[]): void {
    for (const cb of [...(this.listeners.get(name) ?? [])]) cb(...args);
  }
  listenerCount(): number {
    let c = 0;
    for (const s of this.listeners.values()) c += s.size;
    return c;
  }
  send(): void {}
  widget_manager = { get_model: () => Promise.reject(new Error("no manager")) };
}

function b64(dv: DataView): string {
  let s = "";
  for (const byte of new Uint8Array(dv.buffer, dv.byteOffset, dv.byteLength)) s += String.fromCharCode(byte);
  return btoa(s);
}

/** The JSON a static page embeds (StaticAttention with base64 payloads), like interp_widget/widgets/_static.py. */
export function staticDocumentJson(nLayers: number, nHeads: number, n: number, withPatterns: boolean, windowSize = 8): string {
  const { state, patterns } = makeState(nLayers, nHeads, n, { windowSize });
  const enc = <P extends { data: DataView }>(p: P) => ({ ...p, data: b64(p.data) });
  return JSON.stringify({
    kind: "attention",
    version: 1,
    state: {
      ...state,
      prompts: state.prompts.map((p) => ({ ...p, thumbs: enc(p.thumbs), scores: p.scores.map((s) => ({ ...s, values: enc(s.values) })) })),
      window: { ...state.window!, values: enc(state.window!.values) },
    },
    patterns: [withPatterns ? enc(f32(patterns, [nLayers, nHeads, n, n])) : null],
  });
}

/** The markup of interp_widget/widgets/_static.py:embed_view (without the inlined bundle's source). */
export function staticHtml(json: string, fallback = "fallback"): string {
  return `<div class="iw-static" data-iw-static="attention"><div class="iw-fallback">${fallback}</div>`
    + `<script type="application/json" class="iw-static-data">${json.replace(/<\//g, "<\\/")}</script></div>`
    + `<script type="module">/* bundle */</script>`;
}
