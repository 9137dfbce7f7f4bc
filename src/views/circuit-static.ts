// Static pages (notebook snapshots, exported HTML): a circuit graph embedded as StaticCircuit JSON with
// base64 payloads, drawn by the same view without a kernel (pruning, tooltips, details and export work;
// faithfulness and attention patterns need the kernel).
import type { StaticCircuit } from "../schema/generated";
import { decodeBase64Payloads } from "../schema/wire";
import { createStore } from "../attention/store";
import { decodeCircuit } from "./circuit-model";
import { renderCircuit } from "./circuit";

export const CIRCUIT_SELECTOR = '[data-iw-static="circuit"]';

/** Render the graph held in `container` (a `[data-iw-static="circuit"]` element with a `script.iw-static-data` child). */
export function mountCircuitStatic(container: HTMLElement): () => void {
  const script = container.querySelector("script.iw-static-data");
  if (!script?.textContent) throw new Error("no embedded data (script.iw-static-data) in this element");
  const doc = decodeBase64Payloads(JSON.parse(script.textContent)) as StaticCircuit;
  if (doc.kind !== "circuit" || doc.version !== 1) {
    throw new Error(`cannot show embedded data of kind ${JSON.stringify(doc.kind)} version ${doc.version}`);
  }
  const s = doc.state;
  container.dataset.iwMounted = "1";
  container.querySelector(".iw-fallback")?.remove();
  return renderCircuit(container, {
    state: createStore({ graph: decodeCircuit(s.graph), threshold: s.threshold, topK: s.top_k, maxDrawn: s.max_drawn,
      hasContext: false }),
    actions: null,
  });
}

/** Mount every not-yet-mounted static circuit graph in `doc`. */
export function mountAllCircuits(doc: Document): void {
  for (const el of Array.from(doc.querySelectorAll<HTMLElement>(`${CIRCUIT_SELECTOR}:not([data-iw-mounted])`))) {
    try {
      mountCircuitStatic(el);
    } catch (err) {
      el.dataset.iwMounted = "error";
      const msg = doc.createElement("div");
      msg.textContent = `interp-widget could not render this view: ${err instanceof Error ? err.message : String(err)}`;
      el.append(msg);
    }
  }
}
