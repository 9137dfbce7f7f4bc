// Static pages (notebook snapshots, exported HTML): a circuit graph embedded as StaticCircuit JSON with
// base64 payloads, drawn by the same view without a kernel (pruning, tooltips, details and export work;
// faithfulness and attention patterns need the kernel).
import type { StaticCircuit } from "../schema/generated";
import { createStore } from "../attention/store";
import { embedded, mountAll } from "./features-embed";
import { decodeCircuit } from "./circuit-model";
import { renderCircuit } from "./circuit";

export const CIRCUIT_SELECTOR = '[data-iw-static="circuit"]';

/** Render the graph held in `container` (a `[data-iw-static="circuit"]` element with a `script.iw-static-data` child). */
export function mountCircuitStatic(container: HTMLElement): () => void {
  const s = (embedded(container, "circuit") as StaticCircuit).state;
  return renderCircuit(container, {
    state: createStore({ graph: decodeCircuit(s.graph), threshold: s.threshold, topK: s.top_k, maxDrawn: s.max_drawn,
      hasContext: false }),
    actions: null,
  });
}

/** Mount every not-yet-mounted static circuit graph in `doc`. */
export function mountAllCircuits(doc: Document): void {
  mountAll(doc, "circuit", mountCircuitStatic);
}
