// anywidget entry of the steering widget (interp_widget/widgets/static/steering.js): binds the widget
// model (form traits, start_generate / cancel_run, pushed status messages) to the pure steering view.
// When the bundle runs in a static page it mounts every embedded `[data-iw-static="steering"]`.
import type { AnyModel, RenderProps } from "@anywidget/types";
import { createStore } from "../attention/store";
import type { CancelReply, GenerateStarted, SteeringState } from "../schema/generated";
import { type Invoke, callCommand } from "../views/command";
import { mountAll } from "../views/features-embed";
import { bindRunModel } from "../views/run-binding";
import { STEER_FORM_KEYS, type SteerForm, renderSteering, steeringViewState } from "../views/steering";
import { mountSteeringStatic } from "../views/steering-static";

export { renderSteering } from "../views/steering";
export { mountSteeringStatic } from "../views/steering-static";

function snapshot(model: AnyModel<SteeringState>): SteeringState {
  const out: Record<string, unknown> = {};
  for (const k of ["model_name", "sites", "directions", "strength_min", "strength_max", "controls", "result", "status",
    ...STEER_FORM_KEYS] as const) out[k] = model.get(k);
  return out as unknown as SteeringState;
}

/** Mount the view for `model` into `el`; returns a cleanup. Exported for tests. */
export function bindSteering(model: AnyModel<SteeringState>, el: HTMLElement, invoke: Invoke): () => void {
  const state = createStore(steeringViewState(snapshot(model)));
  const binding = bindRunModel<SteeringState, SteerForm>(model, state, STEER_FORM_KEYS,
    () => state.set({ result: steeringViewState(snapshot(model)).result }),
    () => state.set({ form: steeringViewState(snapshot(model)).form }));
  const cleanup = renderSteering(el, {
    state,
    actions: {
      generate: (form) => {
        binding.cancelSave();
        return callCommand<GenerateStarted>(invoke, "start_generate", form, 60_000);
      },
      cancel: (runId) => callCommand<CancelReply>(invoke, "cancel_run", { run_id: runId }, 30_000),
      edit: (patch: Partial<SteerForm>) => binding.edit(patch),
    },
  });
  return () => {
    binding.dispose();
    cleanup();
  };
}

function render({ model, el, experimental }: RenderProps<SteeringState>): () => void {
  return bindSteering(model, el, experimental.invoke as Invoke);
}

export default { render };

if (typeof document !== "undefined") {
  const mount = () => mountAll(document, "steering", mountSteeringStatic);
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mount);
  else mount();
}
