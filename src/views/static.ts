// Mount any embedded interp-widget view by its kind (`data-iw-static="attention" | "heatmap"`): what
// the JupyterLab extension's snapshot renderer calls for a notebook opened without its kernel.
import { mountStatic as mountAttention } from "../attention/static";
import { mountHeatmapStatic } from "./patching-static";

export function mountStatic(container: HTMLElement): () => void {
  return container.dataset.iwStatic === "heatmap" ? mountHeatmapStatic(container) : mountAttention(container);
}
