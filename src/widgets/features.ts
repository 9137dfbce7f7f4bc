// anywidget entry of the feature dashboard (interp_widget/widgets/static/features.js): binds the widget
// model (traits and the select_unit / get_activations commands) to the pure dashboard view. When the
// bundle runs in a static page it also mounts every embedded dashboard (`[data-iw-static="features"]`).
import type { AnyModel, RenderProps } from "@anywidget/types";
import { createStore } from "../attention/store";
import type { ActivationsReply, FeaturesState, PanelReply } from "../schema/generated";
import { type FeaturesViewState, renderFeatures } from "../views/features";
import { type Invoke, callCommand } from "../views/command";
import { decodePanel, decodePromptActs } from "../views/features-model";
import { mountAll } from "../views/features-embed";
import { mountFeaturesStatic } from "../views/features-static";

export { renderFeatures } from "../views/features";
export { mountFeaturesStatic } from "../views/features-static";

export function featuresViewState(model: AnyModel<FeaturesState>): FeaturesViewState {
  const panel = model.get("panel");
  const acts = model.get("prompt_acts");
  return {
    modelName: model.get("model_name"), site: model.get("neuron_site"),
    nNeurons: model.get("n_neurons"), nFeatures: model.get("n_features"),
    panel: panel ? decodePanel(panel) : null, promptActs: acts ? decodePromptActs(acts) : null,
    prompt: model.get("prompt"),
  };
}

/** Mount the dashboard for `model` into `el`; returns a cleanup. Exported for tests. */
export function bindFeatures(model: AnyModel<FeaturesState>, el: HTMLElement, invoke: Invoke): () => void {
  const state = createStore(featuresViewState(model));
  const onPanel = () => {
    const p = model.get("panel");
    state.set({ panel: p ? decodePanel(p) : null });
  };
  const onActs = () => {
    const a = model.get("prompt_acts");
    state.set({ promptActs: a ? decodePromptActs(a) : null });
  };
  model.on("change:panel", onPanel);
  model.on("change:prompt_acts", onActs);
  const cleanup = renderFeatures(el, {
    state,
    actions: {
      select: async (kind, index) =>
        decodePanel((await callCommand<PanelReply>(invoke, "select_unit", { kind, index }, 120_000)).panel),
      activations: async (kind, index, text) =>
        decodePromptActs((await callCommand<ActivationsReply>(invoke, "get_activations", { kind, index, text }, 120_000)).acts),
    },
  });
  return () => {
    model.off("change:panel", onPanel);
    model.off("change:prompt_acts", onActs);
    cleanup();
  };
}

function render({ model, el, experimental }: RenderProps<FeaturesState>): () => void {
  return bindFeatures(model, el, experimental.invoke as Invoke);
}

export default { render };

if (typeof document !== "undefined") {
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", () => mountAll(document, "features", mountFeaturesStatic));
  else mountAll(document, "features", mountFeaturesStatic);
}
