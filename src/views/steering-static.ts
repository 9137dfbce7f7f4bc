// Static pages: the steering widget embedded as StaticSteering JSON, drawn without a kernel (no controls).
import { createStore } from "../attention/store";
import type { StaticSteering } from "../schema/generated";
import { embedded } from "./features-embed";
import { renderSteering, steeringViewState } from "./steering";

export function mountSteeringStatic(container: HTMLElement): () => void {
  const view = steeringViewState((embedded(container, "steering") as StaticSteering).state);
  const status = { ...view.status, state: view.status.state === "running" ? ("idle" as const) : view.status.state };
  return renderSteering(container, { state: createStore({ ...view, status }), actions: null });
}
