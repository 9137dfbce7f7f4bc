// Static pages (notebook snapshots, exported HTML): a heatmap embedded as StaticHeatmap JSON with
// base64 payloads, drawn by the same view without a kernel (no controls, no head patterns).
import type { StaticHeatmap } from "../schema/generated";
import { createStore } from "../attention/store";
import { embedded, mountAll } from "./features-embed";
import { decodeHeatmap } from "./heatmap-math";
import { renderPatching } from "./patching";

export const HEATMAP_SELECTOR = '[data-iw-static="heatmap"]';

/** Render the heatmap held in `container` (a `[data-iw-static="heatmap"]` element with a `script.iw-static-data` child). */
export function mountHeatmapStatic(container: HTMLElement): () => void {
  const s = (embedded(container, "heatmap") as StaticHeatmap).state;
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
  mountAll(doc, "heatmap", mountHeatmapStatic);
}
