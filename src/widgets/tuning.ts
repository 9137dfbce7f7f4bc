// anywidget entry of the tuning-curve widget (interp_widget/widgets/static/tuning.js): binds the widget
// model (traits, the open_stimulus command) to the pure tuning view. In a static page it mounts every
// embedded tuning plot (`[data-iw-static="tuning"]`).
import type { AnyModel, RenderProps } from "@anywidget/types";
import type { StimulusReply, TuningState } from "../schema/generated";
import type { Invoke } from "../attention/source";
import { createStore } from "../attention/store";
import { callCommand, mountAll, onDocumentReady } from "../views/vision-common";
import { mountTuningStatic, renderTuning, tuningViewState } from "../views/vision-tuning";

export { mountTuningStatic, renderTuning } from "../views/vision-tuning";

const KEYS = ["title", "param", "unit_of_param", "values", "units", "activations", "stimuli", "prompts", "visible",
  "selected", "has_detail", "note"] as const;

function read(model: AnyModel<TuningState>): TuningState {
  const s: Record<string, unknown> = {};
  for (const k of KEYS) s[k] = model.get(k);
  return s as unknown as TuningState;
}

/** Mount the tuning view for `model` into `el`; returns a cleanup. Exported for tests. */
export function bindTuning(model: AnyModel<TuningState>, el: HTMLElement, invoke: Invoke): () => void {
  const state = createStore(tuningViewState(read(model)));
  const onData = () => state.set(tuningViewState(read(model)));
  const onSel = () => state.set({ visible: model.get("visible"), selected: model.get("selected") });
  const dataKeys = KEYS.filter((k) => k !== "visible" && k !== "selected");
  for (const k of dataKeys) model.on(`change:${k}`, onData);
  model.on("change:visible", onSel);
  model.on("change:selected", onSel);
  const cleanup = renderTuning(el, {
    state,
    actions: {
      openStimulus: (index) => callCommand<StimulusReply>(invoke, "open_stimulus", { index, top_k: 12 }),
      edit: (patch) => {
        if (patch.visible) model.set("visible", patch.visible);
        if (patch.selected !== undefined) model.set("selected", patch.selected);
        model.save_changes();
      },
    },
  });
  return () => {
    for (const k of dataKeys) model.off(`change:${k}`, onData);
    model.off("change:visible", onSel);
    model.off("change:selected", onSel);
    cleanup();
  };
}

function render({ model, el, experimental }: RenderProps<TuningState>): () => void {
  return bindTuning(model, el, experimental.invoke as Invoke);
}

export default { render };

onDocumentReady((doc) => mountAll(doc, "tuning", mountTuningStatic));
