// Mount any embedded interp-widget view by its kind (`data-iw-static="attention" | "heatmap" | "circuit"`): what
// the JupyterLab extension's snapshot renderer calls for a notebook opened without its kernel.
import { mountStatic as mountAttention } from "../attention/static";
import { mountCircuitStatic } from "./circuit-static";
import { mountFeaturesStatic } from "./features-static";
import { mountHeatmapStatic } from "./patching-static";
import { mountSteeringStatic } from "./steering-static";
import { mountSuperpositionStatic } from "./superposition-static";
import { mountGridStatic } from "./vision-grid";
import { mountTuningStatic } from "./vision-tuning";

export function mountStatic(container: HTMLElement): () => void {
  if (container.dataset.iwStatic === "circuit") return mountCircuitStatic(container);
  if (container.dataset.iwStatic === "features") return mountFeaturesStatic(container);
  if (container.dataset.iwStatic === "steering") return mountSteeringStatic(container);
  if (container.dataset.iwStatic === "superposition") return mountSuperpositionStatic(container);
  if (container.dataset.iwStatic === "vision_grid") return mountGridStatic(container);
  if (container.dataset.iwStatic === "tuning") return mountTuningStatic(container);
  return container.dataset.iwStatic === "heatmap" ? mountHeatmapStatic(container) : mountAttention(container);
}
