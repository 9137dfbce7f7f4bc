// anywidget entry of the circuit graph widget (interp_widget/widgets/static/circuit.js): binds the widget
// model (the graph, the initial pruning, commands) to the pure circuit view. Pruning in the view sends
// nothing to the kernel. When the bundle runs in a static page it mounts every embedded circuit graph.
import type { AnyModel, RenderProps } from "@anywidget/types";
import type { CircuitEnvelope, CircuitState, ErrorReply, FaithfulnessReply, HeadPatternsReply } from "../schema/generated";
import { CommandError, putBuffers } from "../schema/wire";
import { type Invoke, invokeSource } from "../attention/source";
import { createStore } from "../attention/store";
import { decodeCircuit } from "../views/circuit-model";
import { type CircuitViewState, type ViewMemory, renderCircuit } from "../views/circuit";
import { mountAllCircuits } from "../views/circuit-static";
import { decodeHeadPatterns } from "../views/patching-heads";

export { renderCircuit } from "../views/circuit";
export { mountAllCircuits, mountCircuitStatic } from "../views/circuit-static";

async function call<T>(invoke: Invoke, name: string, msg: unknown, timeoutMs: number): Promise<T> {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(new Error(`no reply from the kernel to ${name} within ${timeoutMs / 1000} s`)), timeoutMs);
  try {
    const [response, buffers] = await invoke<unknown>(name, msg, { signal: ctrl.signal });
    if (response === null || typeof response !== "object" || !("reply" in response)) {
      throw new Error(`malformed ${name} response: ${JSON.stringify(response)?.slice(0, 200)}`);
    }
    const env = response as CircuitEnvelope;
    const reply = putBuffers(env.reply, env.buffer_paths, buffers);
    if (!reply.ok) throw new CommandError((reply as ErrorReply).error);
    return reply as unknown as T;
  } finally {
    clearTimeout(timer);
  }
}

export function viewState(model: AnyModel<CircuitState>, graph = decodeCircuit(model.get("graph"))): CircuitViewState {
  return {
    graph,
    threshold: model.get("threshold"),
    topK: model.get("top_k"),
    maxDrawn: model.get("max_drawn"),
    hasContext: model.get("has_context"),
  };
}

/** The view's pruning and selection, kept when JupyterLab re-creates the view (a cell scrolled out of a
 * long notebook and back). anywidget hands each view a new model proxy and may evaluate this bundle again,
 * so the memories live on the page, keyed by a fingerprint of the graph (a new graph: a fresh memory). */
const memories: Map<string, ViewMemory> = ((globalThis as { __iwCircuitViews?: Map<string, ViewMemory> }).__iwCircuitViews ??= new Map());

export function graphKey(g: CircuitState["graph"]): string {
  let hash = 2166136261;
  for (const p of [g.scores, g.senders, g.receivers]) {
    const bytes = new Uint8Array(p.data.buffer, p.data.byteOffset, Math.min(p.data.byteLength, 4096));
    for (const b of bytes) hash = Math.imul(hash ^ b, 16777619) >>> 0;
  }
  return `${g.title}|${g.nodes.length}|${g.scores.data.byteLength}|${hash.toString(16)}`;
}

function memoryOf(model: AnyModel<CircuitState>): ViewMemory {
  const key = graphKey(model.get("graph"));
  let memory = memories.get(key);
  if (!memory) memories.set(key, (memory = {}));
  return memory;
}

/** Mount the view for `model` into `el`; returns a cleanup. Exported for tests. */
export function bindCircuit(model: AnyModel<CircuitState>, el: HTMLElement, invoke: Invoke): () => void {
  const state = createStore(viewState(model));
  const memory = memoryOf(model);
  const onGraph = () => state.set(viewState(model));
  const onPruning = () => state.set(viewState(model, state.get().graph));
  model.on("change:graph", onGraph);
  for (const k of ["threshold", "top_k", "max_drawn", "has_context"] as const) model.on(`change:${k}`, onPruning);
  const cleanup = renderCircuit(el, {
    state,
    memory,
    actions: {
      faithfulness: (req) => call<FaithfulnessReply>(invoke, "faithfulness", req, 300_000),
      openHead: async (layer, head) =>
        decodeHeadPatterns(await call<HeadPatternsReply>(invoke, "open_head", { layer, head, window_size: 48 }, 60_000)),
      source: invokeSource(invoke),
    },
  });
  return () => {
    model.off("change:graph", onGraph);
    for (const k of ["threshold", "top_k", "max_drawn", "has_context"] as const) model.off(`change:${k}`, onPruning);
    cleanup();
  };
}

function render({ model, el, experimental }: RenderProps<CircuitState>): () => void {
  return bindCircuit(model, el, experimental.invoke as Invoke);
}

export default { render };

if (typeof document !== "undefined") {
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", () => mountAllCircuits(document));
  else mountAllCircuits(document);
}
