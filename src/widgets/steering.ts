// anywidget entry of the steering widget (interp_widget/widgets/static/steering.js): binds the widget
// model (form traits, start_generate / cancel_run, pushed status messages) to the pure steering view.
// When the bundle runs in a static page it mounts every embedded `[data-iw-static="steering"]`.
import type { AnyModel, RenderProps } from "@anywidget/types";
import { createStore } from "../attention/store";
import type { CancelReply, GenerateStarted, RunStatus, SteeringState } from "../schema/generated";
import { type Invoke, callCommand } from "../views/command";
import { mountAll } from "../views/features-embed";
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
  const newer = (s: RunStatus) => {
    const cur = state.get().status;
    return s.run_id > cur.run_id || (s.run_id === cur.run_id && !(cur.state !== "running" && s.state === "running"));
  };
  const onResult = () => state.set({ result: steeringViewState(snapshot(model)).result });
  const onStatus = () => {
    const s = model.get("status");
    if (newer(s)) state.set({ status: s });
  };
  const onForm = () => state.set({ form: steeringViewState(snapshot(model)).form });
  const onCustom = (msg: unknown) => {
    const m = msg as { kind?: string; status?: RunStatus };
    if (m && m.kind === "iw-status" && m.status && newer(m.status)) state.set({ status: m.status });
  };
  model.on("change:result", onResult);
  model.on("change:status", onStatus);
  for (const k of STEER_FORM_KEYS) model.on(`change:${k}`, onForm);
  model.on("msg:custom", onCustom);
  let saveTimer = 0;
  const cleanup = renderSteering(el, {
    state,
    actions: {
      generate: (form) => {
        clearTimeout(saveTimer);
        return callCommand<GenerateStarted>(invoke, "start_generate", form, 60_000);
      },
      cancel: (runId) => callCommand<CancelReply>(invoke, "cancel_run", { run_id: runId }, 30_000),
      edit: (patch: Partial<SteerForm>) => {
        for (const [k, v] of Object.entries(patch)) model.set(k as keyof SteeringState, v as never);
        clearTimeout(saveTimer);
        saveTimer = setTimeout(() => model.save_changes(), 300) as unknown as number;
      },
    },
  });
  return () => {
    clearTimeout(saveTimer);
    model.off("change:result", onResult);
    model.off("change:status", onStatus);
    for (const k of STEER_FORM_KEYS) model.off(`change:${k}`, onForm);
    model.off("msg:custom", onCustom);
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
