// Where pattern windows come from: the kernel (anywidget command `get_pattern`), or patterns
// embedded in a static page. Both answer the same GetPatternRequest.
import type { GetPatternRequest } from "../schema/generated";
import { decodeFloat32 } from "../schema/tensor";
import type { TensorPayload } from "../schema/generated";
import { unpackReply } from "../schema/wire";
import { maxPool2d } from "./math";
import { decodeWindow, type Window } from "./model";

export interface PatternSource {
  getWindow(req: GetPatternRequest, signal?: AbortSignal): Promise<Window>;
}

/** anywidget's `experimental.invoke`. */
export type Invoke = <T>(
  name: string,
  msg?: unknown,
  options?: { buffers?: DataView[]; signal?: AbortSignal },
) => Promise<[T, DataView[]]>;

function withTimeout(signal: AbortSignal | undefined, ms: number): { signal: AbortSignal; done: () => void } {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(new Error(`no reply from the kernel within ${ms / 1000} s`)), ms);
  const onAbort = () => ctrl.abort(signal?.reason);
  if (signal) {
    if (signal.aborted) ctrl.abort(signal.reason);
    else signal.addEventListener("abort", onAbort, { once: true });
  }
  return {
    signal: ctrl.signal,
    done: () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    },
  };
}

/** Ask the kernel (the widget's `get_pattern` command). */
export function invokeSource(invoke: Invoke, timeoutMs = 15000): PatternSource {
  return {
    async getWindow(req, signal) {
      const t = withTimeout(signal, timeoutMs);
      try {
        const [response, buffers] = await invoke<unknown>("get_pattern", req, { signal: t.signal });
        return decodeWindow(unpackReply(response, buffers).window);
      } finally {
        t.done();
      }
    },
  };
}

/** Slice full patterns held in the page: `patterns[prompt]` is [n_layers, n_heads, n, n] (or null). */
export function staticSource(patterns: (TensorPayload | null)[], nHeads: number): PatternSource {
  const decoded = new Map<number, Float32Array>();
  return {
    async getWindow(req) {
      const payload = patterns[req.prompt];
      if (!payload) {
        throw new Error("this static page holds only the thumbnails and the first window of this prompt; "
          + "run the notebook to look at other heads in detail");
      }
      let values = decoded.get(req.prompt);
      if (!values) {
        values = decodeFloat32(payload).values;
        decoded.set(req.prompt, values);
      }
      const n = payload.shape[2];
      const q1 = Math.min(req.q1, n);
      const k1 = Math.min(req.k1, n);
      if (req.q0 >= n || req.k0 >= n || req.layer >= payload.shape[0] || req.head >= nHeads) {
        throw new Error(`window out of range: layer ${req.layer}, head ${req.head}, q ${req.q0}, k ${req.k0} (n=${n})`);
      }
      const rows = q1 - req.q0;
      const cols = k1 - req.k0;
      const block = new Float32Array(rows * cols);
      const base = (req.layer * nHeads + req.head) * n * n;
      for (let r = 0; r < rows; r++) {
        const src = base + (req.q0 + r) * n + req.k0;
        block.set(values.subarray(src, src + cols), r * cols);
      }
      const m = req.max_size ?? Math.max(rows, cols);
      const pooled = maxPool2d(block, rows, cols, m, m);
      return {
        prompt: req.prompt, layer: req.layer, head: req.head,
        q0: req.q0, q1, k0: req.k0, k1,
        rows: pooled.rows, cols: pooled.cols, values: pooled.values,
      };
    },
  };
}

/** Remember the last `capacity` windows (keyed by request). */
export function cachedSource(source: PatternSource, capacity = 64): PatternSource & { peek(req: GetPatternRequest): Window | undefined } {
  const cache = new Map<string, Window>();
  const key = (r: GetPatternRequest) =>
    [r.prompt, r.layer, r.head, r.q0, r.q1, r.k0, r.k1, r.max_size ?? "", r.precision ?? ""].join("/");
  return {
    peek(req) {
      return cache.get(key(req));
    },
    async getWindow(req, signal) {
      const k = key(req);
      const hit = cache.get(k);
      if (hit) {
        cache.delete(k);
        cache.set(k, hit);
        return hit;
      }
      const w = await source.getWindow(req, signal);
      cache.set(k, w);
      while (cache.size > capacity) cache.delete(cache.keys().next().value as string);
      return w;
    },
  };
}
