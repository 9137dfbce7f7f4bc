// Static pages (notebook snapshots, exported HTML): the feature dashboard embedded as StaticFeatures JSON
// with base64 payloads, drawn without a kernel.
import { createStore } from "../attention/store";
import type { StaticFeatures } from "../schema/generated";
import { embedded } from "./features-embed";
import { renderFeatures } from "./features";
import { decodePanel, decodePromptActs } from "./features-model";

export function mountFeaturesStatic(container: HTMLElement): () => void {
  const s = (embedded(container, "features") as StaticFeatures).state;
  return renderFeatures(container, {
    state: createStore({
      modelName: s.model_name, site: s.neuron_site, nNeurons: s.n_neurons, nFeatures: s.n_features,
      panel: s.panel ? decodePanel(s.panel) : null, promptActs: s.prompt_acts ? decodePromptActs(s.prompt_acts) : null,
      prompt: s.prompt,
    }),
    actions: null,
  });
}
