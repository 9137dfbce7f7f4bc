// The steering view: prompt, site, direction, op, strength slider, token count and sampling options; a
// Generate button with progress and Cancel; base and steered generations side by side (steered tokens
// that differ from the base underlined). A pure function of (el, props) returning a cleanup.
import { h } from "../attention/dom";
import type { Store } from "../attention/store";
import type { GenerateRequest, GenerateStarted, RunStatus, SteeringState } from "../schema/generated";
import { decode } from "../schema/tensor";
import { showToken } from "./features-model";
import { ensureFeaturesStyle } from "./features-style";
import { runControls } from "./run-controls";

export const STEER_FORM_KEYS = ["prompt", "site", "direction", "op", "strength", "positions", "max_new_tokens",
  "n_samples", "greedy", "seed"] as const;
export type SteerForm = GenerateRequest;

export interface GenerationView {
  promptTokens: string[];
  base: string[][];
  steered: string[][];
  baseIds: number[][];
  steeredIds: number[][];
  label: string;
}

export interface SteeringViewState {
  modelName: string;
  sites: string[];
  directions: { id: string; label: string }[];
  form: Required<SteerForm>;
  strengthMin: number;
  strengthMax: number;
  result: GenerationView | null;
  status: RunStatus;
}

export interface SteeringActions {
  generate(form: Required<SteerForm>): Promise<GenerateStarted>;
  cancel(runId: number | null): Promise<unknown>;
  edit(patch: Partial<SteerForm>): void;
}

export interface SteeringViewProps {
  state: Store<SteeringViewState>;
  actions: SteeringActions | null;
}

function rows(ids: { shape: number[]; values: ArrayLike<number> }): number[][] {
  const [n, t] = ids.shape;
  const out: number[][] = [];
  for (let i = 0; i < n; i++) out.push(Array.from({ length: t }, (_, j) => ids.values[i * t + j]));
  return out;
}

/** The view state of a steering widget's synced state. */
export function steeringViewState(s: SteeringState): SteeringViewState {
  const r = s.result;
  return {
    modelName: s.model_name, sites: s.sites, directions: s.directions, strengthMin: s.strength_min,
    strengthMax: s.strength_max, status: s.status,
    form: { prompt: s.prompt, site: s.site, direction: s.direction, op: s.op, strength: s.strength,
      positions: s.positions, max_new_tokens: s.max_new_tokens, n_samples: s.n_samples, greedy: s.greedy, seed: s.seed },
    result: r ? {
      promptTokens: r.prompt_tokens, base: r.base, steered: r.steered, baseIds: rows(decode(r.base_ids)),
      steeredIds: rows(decode(r.steered_ids)),
      label: `${r.op} ${r.direction} × ${r.strength} at ${r.site} (${r.positions})`,
    } : null,
  };
}

export function progressText(s: RunStatus): string {
  const secs = `${s.elapsed_s.toFixed(1)} s`;
  switch (s.state) {
    case "running": return `generating: ${s.done} / ${s.total} tokens · ${secs}`;
    case "done": return `done: ${s.total} tokens in ${secs}`;
    case "cancelled": return `cancelled after ${s.done} tokens; the previous generations stay`;
    case "error": return `failed after ${secs}`;
    default: return "";
  }
}

function generationColumn(prompt: string[], toks: string[], testid: string, diff: boolean[] | null): HTMLElement {
  const col = h("div", { "data-testid": testid });
  for (const t of prompt) col.append(h("span", { class: "iw-tok", "data-prompt": "1" }, showToken(t)));
  toks.forEach((t, i) => {
    const span = h("span", { class: "iw-tok", "data-gen": "1" }, showToken(t));
    if (diff?.[i]) span.dataset.diff = "1";
    col.append(span);
  });
  col.dataset.text = toks.join("");
  return col;
}

export function renderSteering(el: HTMLElement, props: SteeringViewProps): () => void {
  const { state, actions } = props;
  ensureFeaturesStyle(el.ownerDocument);
  const root = h("div", { class: "iw-root iw-steering", "data-testid": "iw-steering", "data-mode": actions ? "live" : "static" });
  el.append(root);
  const field = (label: string, input: HTMLElement) => h("label", { class: "iw-field" }, label, input);
  const prompt = h("textarea", { rows: 2, spellcheck: "false", "data-testid": "iw-st-prompt", "aria-label": "prompt" });
  const site = h("select", { "data-testid": "iw-st-site", "aria-label": "site" });
  const direction = h("select", { "data-testid": "iw-st-direction", "aria-label": "direction" });
  const op = h("select", { "data-testid": "iw-st-op", "aria-label": "op" },
    h("option", { value: "add" }, "add"), h("option", { value: "scale" }, "scale"), h("option", { value: "clamp" }, "clamp"));
  const strength = h("input", { type: "range", step: "any", "data-testid": "iw-st-strength", "aria-label": "strength" });
  const strengthValue = h("input", { type: "number", step: "any", "data-testid": "iw-st-strength-value", "aria-label": "strength value" });
  const positions = h("select", { "data-testid": "iw-st-positions", "aria-label": "positions" },
    h("option", { value: "all" }, "every position"), h("option", { value: "prompt" }, "prompt only"));
  const maxNew = h("input", { type: "number", min: 1, max: 256, step: 1, "data-testid": "iw-st-max", "aria-label": "new tokens" });
  const samples = h("input", { type: "number", min: 1, max: 16, step: 1, "data-testid": "iw-st-samples", "aria-label": "samples" });
  const seed = h("input", { type: "number", min: 0, step: 1, "data-testid": "iw-st-seed", "aria-label": "seed" });
  const greedy = h("input", { type: "checkbox", "data-testid": "iw-st-greedy" });
  const form = h("div", { class: "iw-form" }, field("prompt", prompt), field("site", site), field("direction", direction),
    field("op", op), field("strength", h("span", { class: "iw-st-strength" }, strength, strengthValue)),
    field("positions", positions), field("new tokens", maxNew), field("samples", samples), field("seed", seed));
  const genBtn = h("button", { type: "button", class: "iw-btn", "data-primary": "1", "data-testid": "iw-st-generate" }, "Generate");
  const cancelBtn = h("button", { type: "button", class: "iw-btn", "data-testid": "iw-st-cancel" }, "Cancel");
  const progress = h("progress", { class: "iw-progress", "data-testid": "iw-st-progress", max: 1, value: 0 });
  const statusText = h("span", { class: "iw-muted", "data-testid": "iw-st-status", "aria-live": "polite" });
  const error = h("div", { class: "iw-error", "data-testid": "iw-st-error", role: "alert" });
  const controls = h("div", { class: "iw-panel" }, form, h("div", { class: "iw-row" }, genBtn, cancelBtn,
    h("label", { class: "iw-muted" }, greedy, " greedy"), progress, statusText), error);
  const title = h("span", { class: "iw-title" });
  const label = h("div", { class: "iw-muted", "data-testid": "iw-st-label" });
  const results = h("div", { class: "iw-panel", "data-testid": "iw-st-results" });
  root.append(h("div", { class: "iw-row" }, title), controls, label, results);

  const options = (sel: HTMLSelectElement, items: { id: string; label: string }[]) => {
    const key = items.map((i) => i.id).join("\n");
    if (sel.dataset.key === key) return;
    sel.dataset.key = key;
    sel.replaceChildren(...items.map((i) => h("option", { value: i.id }, i.label)));
  };
  const setValue = (input: HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement, v: string) => {
    if (input.value !== v && input.ownerDocument.activeElement !== input) input.value = v;
  };
  let shown: GenerationView | null | undefined;
  const run = runControls<GenerateStarted>({ root, runBtn: genBtn, cancelBtn, progress, statusText, error }, state, progressText);
  const sync = (s: SteeringViewState) => {
    title.textContent = `steering · ${s.modelName}`;
    options(site, s.sites.map((x) => ({ id: x, label: x })));
    options(direction, s.directions);
    const f = s.form;
    setValue(prompt, f.prompt);
    setValue(site, f.site);
    setValue(direction, f.direction);
    setValue(op, f.op);
    strength.min = String(s.strengthMin);
    strength.max = String(s.strengthMax);
    setValue(strength, String(f.strength));
    setValue(strengthValue, String(f.strength));
    setValue(positions, f.positions);
    setValue(maxNew, String(f.max_new_tokens));
    setValue(samples, String(f.n_samples));
    setValue(seed, String(f.seed));
    greedy.checked = f.greedy;
    controls.style.display = actions ? "" : "none";
    run.show(s.status);
    if (s.result !== shown) {
      shown = s.result;
      results.replaceChildren(h("div", { class: "iw-st-sample" }, h("div", { class: "iw-fd-h" }, "base"),
        h("div", { class: "iw-fd-h" }, "steered")));
      const r = s.result;
      label.textContent = r ? r.label : "press Generate to compare base and steered text";
      if (r) {
        r.base.forEach((b, i) => {
          const diff = r.steeredIds[i].map((t, j) => t !== r.baseIds[i][j]);
          results.append(h("div", { class: "iw-st-sample", "data-testid": "iw-st-sample" },
            generationColumn(r.promptTokens, b, "iw-st-base", null),
            generationColumn(r.promptTokens, r.steered[i], "iw-st-steered", diff)));
        });
        results.dataset.differs = String(r.base.some((_, i) => r.steeredIds[i].some((t, j) => t !== r.baseIds[i][j])));
      }
    }
  };
  sync(state.get());
  const unsubscribe = state.subscribe((s) => sync(s));

  const formValue = (): Required<SteerForm> => ({
    prompt: prompt.value, site: site.value, direction: direction.value, op: op.value as "add" | "scale" | "clamp",
    strength: Number(strengthValue.value), positions: positions.value as "all" | "prompt",
    max_new_tokens: Number(maxNew.value), n_samples: Number(samples.value), greedy: greedy.checked, seed: Number(seed.value),
  });
  const edited = () => {
    const f = formValue();
    const cur = state.get().form;
    const patch: Partial<SteerForm> = {};
    for (const k of STEER_FORM_KEYS) if (f[k] !== cur[k]) (patch as Record<string, unknown>)[k] = f[k];
    if (!Object.keys(patch).length) return;
    state.set({ form: { ...cur, ...patch } });
    actions?.edit(patch);
  };
  strength.addEventListener("input", () => {
    strengthValue.value = strength.value;
    edited();
  });
  strengthValue.addEventListener("change", () => {
    strength.value = strengthValue.value;
    edited();
  });
  for (const input of [prompt, maxNew, samples, seed]) input.addEventListener("input", edited);
  for (const input of [site, direction, op, positions, greedy]) input.addEventListener("change", edited);
  run.wire(actions && {
    before: edited,
    start: () => actions.generate(formValue()),
    cancel: (runId) => actions.cancel(runId),
  });
  // theme: the colours are CSS variables that follow JupyterLab's, so nothing is redrawn on a theme change
  return () => {
    unsubscribe();
    root.remove();
  };
}
