// Binding shared by the widgets that run long kernel jobs (patching, steering): keeps the view's store in
// step with the model's `result`, `status` (trait and pushed `iw-status` messages, stale ones dropped) and
// form traits, and saves form edits to the kernel after a short pause.
import type { AnyModel } from "@anywidget/types";
import type { Store } from "../attention/store";
import type { RunStatus } from "../schema/generated";

export interface RunBinding<F> {
  /** Set form traits on the model; saved to the kernel 300 ms after the last edit. */
  edit(patch: Partial<F>): void;
  /** Drop a pending save (the run command carries the form itself). */
  cancelSave(): void;
  /** Stop listening to the model. */
  dispose(): void;
}

/** True when `s` is newer than `cur`: a later run, or the same run not going back to "running" once ended. */
export function isNewerStatus(s: RunStatus, cur: RunStatus): boolean {
  return s.run_id > cur.run_id || (s.run_id === cur.run_id && !(cur.state !== "running" && s.state === "running"));
}

export function bindRunModel<M extends { status: RunStatus }, F>(
  model: AnyModel<M>,
  state: Store<{ status: RunStatus }>,
  formKeys: readonly (keyof M & string)[],
  onResult: () => void,
  onForm: () => void,
): RunBinding<F> {
  const onStatus = () => {
    const s = model.get("status");
    if (isNewerStatus(s, state.get().status)) state.set({ status: s });
  };
  const onCustom = (msg: unknown) => {
    const m = msg as { kind?: string; status?: RunStatus };
    if (m && m.kind === "iw-status" && m.status && isNewerStatus(m.status, state.get().status)) state.set({ status: m.status });
  };
  model.on("change:result", onResult);
  model.on("change:status", onStatus);
  for (const k of formKeys) model.on(`change:${k}`, onForm);
  model.on("msg:custom", onCustom);
  let saveTimer = 0;
  const cancelSave = () => clearTimeout(saveTimer);
  return {
    edit(patch) {
      for (const [k, v] of Object.entries(patch as object)) model.set(k as keyof M, v as never);
      cancelSave();
      saveTimer = setTimeout(() => model.save_changes(), 300) as unknown as number;
    },
    cancelSave,
    dispose() {
      cancelSave();
      model.off("change:result", onResult);
      model.off("change:status", onStatus);
      for (const k of formKeys) model.off(`change:${k}`, onForm);
      model.off("msg:custom", onCustom);
    },
  };
}
