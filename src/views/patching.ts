// The patching view: controls (prompts, metric, component, Run / Cancel, progress, errors), the
// result heatmap, and the clicked head's attention on the clean and corrupted prompt. A pure function
// of (el, props) returning a cleanup; the state is a Store and the kernel is behind `actions`.
import type { PatchingState, RunStarted, RunStatus } from "../schema/generated";
import { createTooltip, h } from "../attention/dom";
import type { PatternSource } from "../attention/source";
import type { Store } from "../attention/store";
import { readTheme, watchThemeRedraw } from "../attention/theme";
import { type CellInfo, createHeatmap } from "./heatmap";
import type { Heatmap } from "./heatmap-math";
import { type HeadPatterns, createHeadPanel } from "./patching-heads";
import { ensurePatchingStyle } from "./patching-style";
import { errorText, runControls } from "./run-controls";

export const FORM_KEYS = ["clean", "corrupted", "metric", "answer", "wrong", "component", "receiver", "normalize"] as const;
export type FormKey = (typeof FORM_KEYS)[number];
export type PatchingForm = Pick<PatchingState, FormKey>;

export interface PatchingViewState extends PatchingForm {
  modelName: string;
  nLayers: number;
  nHeads: number;
  hasMlp: boolean;
  controls: boolean;
  result: Heatmap | null;
  status: RunStatus;
}

export interface PatchingActions {
  run(form: PatchingForm): Promise<RunStarted>;
  cancel(runId: number | null): Promise<unknown>;
  openHead(layer: number, head: number): Promise<HeadPatterns>;
  source: PatternSource;
  /** the user changed form fields (keep Python in sync) */
  edit(patch: Partial<PatchingForm>): void;
}

export interface PatchingViewProps {
  state: Store<PatchingViewState>;
  /** null: a static page (no kernel) */
  actions: PatchingActions | null;
  windowSize?: number;
}

export const METRICS: [PatchingForm["metric"], string][] = [
  ["logit_diff", "logit difference (answer − wrong)"],
  ["probability", "probability of the answer"],
  ["kl", "KL divergence from the clean run"],
  ["loss", "loss (next-token cross-entropy)"],
];
export const COMPONENTS: [PatchingForm["component"], string][] = [
  ["resid", "residual stream (layer × position)"],
  ["attn", "attention output (layer × position)"],
  ["mlp", "MLP output (layer × position)"],
  ["heads", "heads (layer × head)"],
  ["path", "path: each head → receiver"],
];

/** "3 / 12 patched runs", or "25%" for a run measured in thousandths (path patching's two sweeps). */
function amount(s: RunStatus, done: number): string {
  return s.unit === "permille" ? `${Math.round(done / 10)}%` : `${done} / ${s.total} patched runs`;
}

export function progressText(s: RunStatus): string {
  const secs = `${s.elapsed_s.toFixed(1)} s`;
  switch (s.state) {
    case "running": {
      // a remote (NDIF) run also says where the server job stands: "DEPLOYING (3.1 s): ..."
      const remote = s.message ? ` · server: ${s.message}` : "";
      return (s.total > 0 ? `running: ${amount(s, s.done)} · ${secs}` : `starting… ${secs}`) + remote;
    }
    case "done":
      return s.unit === "permille" ? `done in ${secs}` : `done: ${s.total} patched runs in ${secs}`;
    case "cancelled":
      return `cancelled after ${amount(s, s.done)} (${secs}); the previous result stays`;
    case "error":
      return `failed after ${secs}`;
    default:
      return "";
  }
}

export function renderPatching(el: HTMLElement, props: PatchingViewProps): () => void {
  const { state, actions } = props;
  ensurePatchingStyle(el.ownerDocument);
  const root = h("div", { class: "iw-root iw-patching", "data-testid": "iw-patching", "data-mode": actions ? "live" : "static" });
  el.append(root);
  let theme = readTheme(root);
  const tooltip = createTooltip(root);
  const width = () => Math.max(360, root.clientWidth || el.clientWidth || 760);
  const env = { root, theme: () => theme, tooltip, width };

  // --- controls ---------------------------------------------------------------------------------
  const field = (label: string, input: HTMLElement, key: string) =>
    h("label", { class: "iw-field", "data-field": key }, label, input);
  const clean = h("textarea", { "data-testid": "iw-clean", rows: 2, spellcheck: "false", "aria-label": "clean prompt(s)" });
  const corrupted = h("textarea", { "data-testid": "iw-corrupted", rows: 2, spellcheck: "false", "aria-label": "corrupted prompt(s)" });
  const metric = h("select", { "data-testid": "iw-metric", "aria-label": "metric" });
  for (const [v, label] of METRICS) metric.append(h("option", { value: v }, label));
  const answer = h("input", { type: "text", "data-testid": "iw-answer", "aria-label": "answer token", spellcheck: "false" });
  const wrong = h("input", { type: "text", "data-testid": "iw-wrong", "aria-label": "wrong token", spellcheck: "false" });
  const component = h("select", { "data-testid": "iw-component", "aria-label": "component" });
  for (const [v, label] of COMPONENTS) component.append(h("option", { value: v }, label));
  const receiver = h("input", { type: "text", "data-testid": "iw-receiver", "aria-label": "receiver", spellcheck: "false" });
  const normalize = h("input", { type: "checkbox", "data-testid": "iw-normalize" });
  const answerField = field("answer token", answer, "answer");
  const wrongField = field("wrong token", wrong, "wrong");
  const receiverField = field("receiver ('logits' or e.g. L1H2.k)", receiver, "receiver");
  const form = h("div", { class: "iw-form", "data-testid": "iw-form" },
    field("clean prompt(s), one per line", clean, "clean"),
    field("corrupted prompt(s), same token lengths", corrupted, "corrupted"),
    field("metric", metric, "metric"), answerField, wrongField,
    field("component", component, "component"), receiverField);
  const runBtn = h("button", { type: "button", class: "iw-btn", "data-primary": "1", "data-testid": "iw-run" }, "Run");
  const cancelBtn = h("button", { type: "button", class: "iw-btn", "data-testid": "iw-cancel" }, "Cancel");
  const progress = h("progress", { class: "iw-progress", "data-testid": "iw-progress", max: 1, value: 0 });
  const statusText = h("span", { class: "iw-muted", "data-testid": "iw-run-status", "aria-live": "polite" });
  const error = h("div", { class: "iw-error", "data-testid": "iw-error", role: "alert" });
  const actionsRow = h("div", { class: "iw-row" }, runBtn, cancelBtn,
    h("label", { class: "iw-muted" }, normalize, " normalise (0 = corrupted, 1 = clean)"), progress, statusText);
  const header = h("div", { class: "iw-controls" },
    h("span", { class: "iw-title", "data-testid": "iw-model-name" }, state.get().modelName || "patching"),
    h("span", { class: "iw-muted" }, state.get().nLayers ? `${state.get().nLayers} layers × ${state.get().nHeads} heads` : ""));
  const controls = h("div", { class: "iw-panel", "data-testid": "iw-controls" }, form, actionsRow);
  const summary = h("div", { class: "iw-muted", "data-testid": "iw-summary" });

  // --- result and head patterns -----------------------------------------------------------------------
  const heads = createHeadPanel(env, actions?.source ?? { getWindow: () => Promise.reject(new Error("no kernel")) },
    { windowSize: props.windowSize ?? 48, onClose: () => heatmap.mark(null) });
  let headRequest = 0;
  const onCellClick = (cell: CellInfo) => {
    if (!cell.head) return;
    const { layer, head } = cell.head;
    heatmap.mark(cell.head);
    if (!actions) {
      heads.message("Attention patterns need the kernel: run the notebook to open a head.", "info");
      return;
    }
    const id = ++headRequest;
    heads.message(`loading L${layer}H${head}…`);
    actions.openHead(layer, head).then(
      (p) => { if (id === headRequest) heads.show(p); },
      (err: unknown) => { if (id === headRequest) heads.message(errorText(err), "error"); },
    );
  };
  const heatmap = createHeatmap(env, { onCellClick: state.get().controls || !actions ? onCellClick : undefined });
  root.append(h("div", { class: "iw-panel" }, header, controls, summary, error), heatmap.el, heads.el);

  // --- state -> DOM -------------------------------------------------------------------------------------
  const setValue = (input: HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement, v: string) => {
    if (input.value !== v && input.ownerDocument.activeElement !== input) input.value = v;
  };
  let shown: Heatmap | null | undefined;
  const run = runControls<RunStarted>({ root, runBtn, cancelBtn, progress, statusText, error }, state, progressText);
  const sync = (s: PatchingViewState) => {
    setValue(clean, s.clean);
    setValue(corrupted, s.corrupted);
    setValue(metric, s.metric);
    setValue(answer, s.answer);
    setValue(wrong, s.wrong);
    setValue(component, s.component);
    setValue(receiver, s.receiver);
    normalize.checked = s.normalize;
    answerField.dataset.hidden = s.metric === "logit_diff" || s.metric === "probability" ? "0" : "1";
    wrongField.dataset.hidden = s.metric === "logit_diff" ? "0" : "1";
    receiverField.dataset.hidden = s.component === "path" ? "0" : "1";
    (component.querySelector('option[value="mlp"]') as HTMLOptionElement).disabled = !s.hasMlp;
    controls.style.display = s.controls && actions ? "" : "none";
    header.style.display = s.modelName ? "" : "none"; // a bare result has no model to name
    summary.textContent = !(s.controls && actions) && s.clean
      ? `clean: ${s.clean.split("\n")[0]} · corrupted: ${s.corrupted.split("\n")[0]}` : "";
    run.show(s.status);
    if (s.result !== shown) {
      shown = s.result;
      heatmap.set(s.result);
      heads.close();
    }
  };
  sync(state.get());
  const unsubscribe = state.subscribe((s) => sync(s));

  // --- DOM -> state / kernel -------------------------------------------------------------------------------
  const formValue = (): PatchingForm => ({
    clean: clean.value, corrupted: corrupted.value, metric: metric.value as PatchingForm["metric"],
    answer: answer.value, wrong: wrong.value, component: component.value as PatchingForm["component"],
    receiver: receiver.value, normalize: normalize.checked,
  });
  const edited = () => {
    const f = formValue();
    const cur = state.get();
    const patch: Partial<PatchingForm> = {};
    for (const k of FORM_KEYS) if (f[k] !== cur[k]) (patch as Record<string, unknown>)[k] = f[k];
    if (Object.keys(patch).length === 0) return;
    state.set(patch);
    actions?.edit(patch);
  };
  for (const input of [clean, corrupted, answer, wrong, receiver]) input.addEventListener("input", edited);
  for (const input of [metric, component, normalize]) input.addEventListener("change", edited);

  run.wire(actions && {
    before: edited,
    start: () => actions.run(formValue()),
    started: (started) => { root.dataset.runId = String(started.run_id); },
    cancel: (runId) => actions.cancel(runId),
  });

  const retheme = () => {
    theme = readTheme(root);
    heatmap.redraw();
    heads.redraw();
  };
  const unwatch = watchThemeRedraw(retheme);
  let resizeObserver: ResizeObserver | null = null;
  if (typeof ResizeObserver === "function") {
    let lastWidth = 0;
    resizeObserver = new ResizeObserver(() => {
      const w = width();
      if (Math.abs(w - lastWidth) < 8) return;
      lastWidth = w;
      heatmap.redraw();
    });
    resizeObserver.observe(root);
  }
  return () => {
    unsubscribe();
    unwatch();
    resizeObserver?.disconnect();
    heads.destroy();
    root.remove();
  };
}
