// Decoded attention data: what the view draws from (typed arrays, no DataViews).
import type { AttentionState, PatternWindow, PromptData } from "../schema/generated";
import { decodeFloat32, rawUint8 } from "../schema/tensor";
import { blockOf } from "./math";

export interface Thumbs {
  /** thumbnails are size x size */
  size: number;
  /** uint8 [n_layers, n_heads, size, size] */
  bytes: Uint8Array;
  scale: number;
  offset: number;
}

export interface Score {
  kind: string;
  label: string;
  /** float32 [n_layers * n_heads], row-major; NaN where undefined */
  values: Float32Array;
}

export interface PromptView {
  text: string;
  tokens: string[];
  thumbs: Thumbs;
  scores: Score[];
}

export interface AttentionData {
  modelName: string;
  nLayers: number;
  nHeads: number;
  prompts: PromptView[];
}

/** A rectangle of one head's pattern: rows are queries q0..q1, columns keys k0..k1 (maybe max-pooled). */
export interface Window {
  prompt: number;
  layer: number;
  head: number;
  q0: number;
  q1: number;
  k0: number;
  k1: number;
  rows: number;
  cols: number;
  values: Float32Array;
}

export function decodePrompt(p: PromptData, nLayers: number, nHeads: number): PromptView {
  const shape = p.thumbs.shape;
  if (shape.length !== 4 || shape[0] !== nLayers || shape[1] !== nHeads || shape[2] !== shape[3]) {
    throw new Error(`thumbnails must be [${nLayers}, ${nHeads}, t, t]; got [${shape}]`);
  }
  return {
    text: p.text,
    tokens: p.tokens,
    thumbs: {
      size: shape[2],
      bytes: rawUint8(p.thumbs),
      scale: p.thumbs.scale ?? 1 / 255,
      offset: p.thumbs.offset ?? 0,
    },
    scores: p.scores.map((s) => {
      const t = decodeFloat32(s.values);
      if (t.values.length !== nLayers * nHeads) {
        throw new Error(`score ${s.kind} has shape [${t.shape}], expected [${nLayers}, ${nHeads}]`);
      }
      return { kind: s.kind, label: s.label, values: t.values };
    }),
  };
}

export function decodeState(s: Pick<AttentionState, "model_name" | "n_layers" | "n_heads" | "prompts">): AttentionData {
  return {
    modelName: s.model_name,
    nLayers: s.n_layers,
    nHeads: s.n_heads,
    prompts: s.prompts.map((p) => decodePrompt(p, s.n_layers, s.n_heads)),
  };
}

export function decodeWindow(w: PatternWindow): Window {
  const t = decodeFloat32(w.values);
  if (t.shape.length !== 2) throw new Error(`a pattern window is 2-D; got shape [${t.shape}]`);
  return {
    prompt: w.prompt,
    layer: w.layer,
    head: w.head,
    q0: w.q0,
    q1: w.q1,
    k0: w.k0,
    k1: w.k1,
    rows: t.shape[0],
    cols: t.shape[1],
    values: t.values,
  };
}

/** The thumbnail of one head as a Window over the whole prompt (values in [0, 1]). */
export function thumbWindow(data: AttentionData, prompt: number, layer: number, head: number): Window {
  const p = data.prompts[prompt];
  const { size, bytes, scale, offset } = p.thumbs;
  const start = (layer * data.nHeads + head) * size * size;
  const values = new Float32Array(size * size);
  for (let i = 0; i < values.length; i++) values[i] = bytes[start + i] * scale + offset;
  const n = p.tokens.length;
  return { prompt, layer, head, q0: 0, q1: n, k0: 0, k1: n, rows: size, cols: size, values };
}

/** Value of window `w` at absolute query `q`, key `k` (nearest pooled cell), or NaN outside it. */
export function valueAt(w: Window, q: number, k: number): number {
  if (q < w.q0 || q >= w.q1 || k < w.k0 || k >= w.k1) return Number.NaN;
  const r = blockOf(q - w.q0, w.q1 - w.q0, w.rows);
  const c = blockOf(k - w.k0, w.k1 - w.k0, w.cols);
  return w.values[r * w.cols + c];
}

/** True when `w` holds every cell of the rectangle exactly (not pooled). */
export function isExact(w: Window): boolean {
  return w.rows === w.q1 - w.q0 && w.cols === w.k1 - w.k0;
}
