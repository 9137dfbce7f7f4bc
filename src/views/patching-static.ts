// Static pages (notebook snapshots, exported HTML): a heatmap embedded as StaticHeatmap JSON with
// base64 payloads, drawn by the same view without a kernel (no controls, no head patterns).
import type { StaticHeatmap } from "../schema/generated";
import { decodeBase64Payloads } from "../schema/wire";
import { createStore } from "../attention/store";
import { decodeHeatmap } from "./heatmap-math";
import { renderPatching } from "./patching";

export const HEATMAP_SELECTOR = '[data-iw-static="heatmap"]';

/** Render the heatmap held in `container` (a `[data-iw-static="heatmap"]` element with a `script.iw-static-data` child). */
export function mountHeatmapStatic(container: HTMLElement): () => void {
  const script = container.querySelector("script.iw-static-data");
  if (!script?.textContent) throw new Error("no embedded data (script.iw-static-data) in this element");
  const doc = decodeBase64Payloads(JSON.parse(script.textContent)) as StaticHeatmap;
  if (doc.kind !== "heatmap" || doc.version !== 1) {
    throw new Error(`cannot show embedded data of kind ${JSON.stringify(doc.kind)} version ${doc.version}`);
  }
  const s = doc.state;
  container.dataset.iwMounted = "1";
  container.querySelector(".iw-fallback")?.remove();
  return renderPatching(container, {
    state: createStore({
      modelName: s.model_name, nLayers: s.n_layers, nHeads: s.n_heads, hasMlp: s.has_mlp, controls: false,
      clean: s.clean, corrupted: s.corrupted, metric: s.metric, answer: s.answer, wrong: s.wrong,
      component: s.component, receiver: s.receiver, normalize: s.normalize,
      result: s.result ? decodeHeatmap(s.result) : null,
      status: { ...s.status, state: s.status.state === "running" ? "idle" : s.status.state },
    }),
    actions: null,
  });
}

/** Mount every not-yet-mounted static heatmap in `doc`. */
export function mountAllHeatmaps(doc: Document): void {
  for (const el of Array.from(doc.querySelectorAll<HTMLElement>(`${HEATMAP_SELECTOR}:not([data-iw-mounted])`))) {
    try {
      mountHeatmapStatic(el);
    } catch (err) {
      el.dataset.iwMounted = "error";
      const msg = doc.createElement("div");
      msg.textContent = `interp-widget could not render this view: ${err instanceof Error ? err.message : String(err)}`;
      el.append(msg);
    }
  }
}
