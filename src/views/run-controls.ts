// The Run / Cancel row shared by the views of long kernel jobs (patching, steering): shows a RunStatus
// (buttons, progress bar, status line, the error of a failed run once) and wires the two buttons.
import type { Store } from "../attention/store";
import type { RunStatus } from "../schema/generated";

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export interface RunControlElements {
  root: HTMLElement;
  runBtn: HTMLButtonElement;
  cancelBtn: HTMLButtonElement;
  progress: HTMLProgressElement;
  statusText: HTMLElement;
  error: HTMLElement;
}

export interface RunControlActions<R> {
  /** Called before a run starts (e.g. to flush the form). */
  before(): void;
  start(): Promise<R>;
  started?(reply: R): void;
  cancel(runId: number | null): Promise<unknown>;
}

export interface RunControls<R> {
  /** Show `st` (call from the view's sync). */
  show(st: RunStatus): void;
  /** Wire the buttons to `actions` (null: a static view, the buttons do nothing). */
  wire(actions: RunControlActions<R> | null): void;
}

export function runControls<R>(
  els: RunControlElements,
  state: Store<{ status: RunStatus }>,
  progressText: (s: RunStatus) => string,
): RunControls<R> {
  const { root, runBtn, cancelBtn, progress, statusText, error } = els;
  let lastError = -1;
  return {
    show(st) {
      const running = st.state === "running";
      root.dataset.state = st.state;
      root.dataset.runId = String(st.run_id);
      runBtn.disabled = running;
      cancelBtn.disabled = !running;
      progress.max = Math.max(1, st.total);
      progress.value = st.state === "done" ? progress.max : st.done;
      progress.style.visibility = running ? "visible" : "hidden";
      statusText.textContent = progressText(st);
      statusText.dataset.state = st.state;
      if (st.state === "error" && st.run_id !== lastError) {
        lastError = st.run_id;
        error.textContent = `${st.error_type}: ${st.message}`;
      }
    },
    wire(actions) {
      runBtn.addEventListener("click", () => {
        if (!actions) return;
        actions.before();
        error.textContent = "";
        runBtn.disabled = true;
        statusText.textContent = "sending…";
        actions.start().then(
          (reply) => {
            actions.started?.(reply);
            if (state.get().status.state !== "running") runBtn.disabled = false;
          },
          (err: unknown) => {
            error.textContent = errorText(err);
            runBtn.disabled = state.get().status.state === "running";
            statusText.textContent = progressText(state.get().status);
          },
        );
      });
      cancelBtn.addEventListener("click", () => {
        if (!actions) return;
        cancelBtn.disabled = true;
        statusText.textContent = "cancelling…";
        actions.cancel(state.get().status.run_id || null).catch((err: unknown) => { error.textContent = errorText(err); });
      });
    },
  };
}
