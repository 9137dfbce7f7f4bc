// anywidget entry of the patching widget (interp_widget/widgets/static/patching.js): binds the widget
// model (traits, commands, pushed status messages) to the pure patching view. When the bundle runs in
// a static page it also mounts every embedded heatmap (`[data-iw-static="heatmap"]`).
import type { AnyModel, RenderProps } from "@anywidget/types";
import type {
  CancelReply, HeadPatternsReply, PatchingState, RunStarted,
} from "../schema/generated";
import { callCommand } from "../views/command";
import { type Invoke, invokeSource } from "../attention/source";
import { createStore } from "../attention/store";
import { decodeHeatmap } from "../views/heatmap-math";
import { FORM_KEYS, type PatchingForm, type PatchingViewState, renderPatching } from "../views/patching";
import { decodeHeadPatterns } from "../views/patching-heads";
import { bindRunModel } from "../views/run-binding";
import { mountAllHeatmaps } from "../views/patching-static";

export { renderPatching } from "../views/patching";
export { mountAllHeatmaps, mountHeatmapStatic } from "../views/patching-static";

export { unpackResponse as unpackCommand } from "../views/command";
const call = callCommand;

export function viewState(model: AnyModel<PatchingState>): PatchingViewState {
  const result = model.get("result");
  return {
    modelName: model.get("model_name"),
    nLayers: model.get("n_layers"),
    nHeads: model.get("n_heads"),
    hasMlp: model.get("has_mlp"),
    controls: model.get("controls"),
    clean: model.get("clean"),
    corrupted: model.get("corrupted"),
    metric: model.get("metric"),
    answer: model.get("answer"),
    wrong: model.get("wrong"),
    component: model.get("component"),
    receiver: model.get("receiver"),
    normalize: model.get("normalize"),
    result: result ? decodeHeatmap(result) : null,
    status: model.get("status"),
  };
}

/** Mount the view for `model` into `el`; returns a cleanup. Exported for tests. */
export function bindPatching(model: AnyModel<PatchingState>, el: HTMLElement, invoke: Invoke): () => void {
  const state = createStore(viewState(model));
  const binding = bindRunModel<PatchingState, PatchingForm>(model, state, FORM_KEYS,
    () => {
      const r = model.get("result");
      state.set({ result: r ? decodeHeatmap(r) : null });
    },
    () => {
      const patch: Partial<PatchingForm> = {};
      for (const k of FORM_KEYS) (patch as Record<string, unknown>)[k] = model.get(k);
      state.set(patch);
    });
  const cleanup = renderPatching(el, {
    state,
    actions: {
      run: (form) => {
        binding.cancelSave();
        return call<RunStarted>(invoke, "start_run", form, 60_000);
      },
      cancel: (runId) => call<CancelReply>(invoke, "cancel_run", { run_id: runId }, 30_000),
      openHead: async (layer, head) =>
        decodeHeadPatterns(await call<HeadPatternsReply>(invoke, "open_head", { layer, head, window_size: 48 }, 60_000)),
      source: invokeSource(invoke),
      edit: (patch) => binding.edit(patch),
    },
  });
  return () => {
    binding.dispose();
    cleanup();
  };
}

function render({ model, el, experimental }: RenderProps<PatchingState>): () => void {
  return bindPatching(model, el, experimental.invoke as Invoke);
}

export default { render };

if (typeof document !== "undefined") {
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", () => mountAllHeatmaps(document));
  else mountAllHeatmaps(document);
}
