// The selected entry's details (architecture and sites, selection, axes...) and its actions:
// show the view (with a prompt, for a model) and send code for a head / neuron / node to a new cell.
import type { DescribeReply, ModelDetails, ResultDetails, SnippetTarget, TraceDetails, ViewDetails } from "./generated";
import { button, el, numberInput, select } from "./dom";

export interface DetailActions {
  /** Render the entry's view again (a model: on this prompt; empty: the default prompt). */
  show(prompt: string): void;
  /** Put code for `target` in a new cell (`fromView`: the head selected in the panel's view). */
  snippet(target: SnippetTarget, fromView: boolean): void;
  /** The prompt the panel shows by default for models. */
  defaultPrompt: string;
}

export function renderDetails(reply: DescribeReply, actions: DetailActions): HTMLElement {
  const d = reply.details;
  const root = el("div", { class: "iw-panel-details-body", "data-testid": "iw-panel-details-body", "data-kind": d.kind });
  switch (d.kind) {
    case "model":
      root.append(...modelDetails(d, actions));
      break;
    case "view":
      root.append(...viewDetails(d, actions));
      break;
    case "result":
      root.append(...resultDetails(d, actions));
      break;
    case "trace":
      root.append(...traceDetails(d, actions));
      break;
  }
  return root;
}

function facts(rows: [string, string | number | null][]): HTMLElement {
  const dl = el("dl");
  for (const [k, v] of rows) {
    if (v === null || v === "") continue;
    dl.append(el("dt", {}, k), el("dd", { "data-fact": k }, String(v)));
  }
  return dl;
}

function modelDetails(d: ModelDetails, actions: DetailActions): HTMLElement[] {
  const info = facts([
    ["architecture", d.architecture],
    ["backend", d.backend],
    ["layers x heads", `${d.n_layers} x ${d.n_heads}`],
    ["d_model / d_head", `${d.d_model} / ${d.d_head}`],
    ["d_mlp", d.d_mlp ?? "none (attention-only)"],
    ["n_ctx / d_vocab", `${d.n_ctx} / ${d.d_vocab}`],
  ]);
  const sites = el("details", { "data-testid": "iw-panel-sites" },
    el("summary", {}, `${d.sites.length} sites`),
    el("div", { class: "iw-panel-sites" },
      ...d.sites.map((s) => el("div", { "data-hook": s.hook_name }, `${s.hook_name}  [${s.shape.join(", ")}]`))));

  const prompt = el("input", {
    type: "text",
    "data-testid": "iw-panel-prompt",
    "aria-label": "prompt",
    placeholder: d.has_tokenizer ? "prompt (empty: a repeated random sequence)" : "no tokenizer: default token ids",
    value: actions.defaultPrompt,
  });
  prompt.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") actions.show(prompt.value);
  });
  const show = el("div", { class: "iw-panel-row" }, prompt,
    button("Show", "iw-panel-show", () => actions.show(prompt.value), "Show the attention of every head on this prompt"));
  const text = () => (prompt.value.trim() ? prompt.value : null);
  const head = el("div", { class: "iw-panel-row" },
    button("Code for the selected head", "iw-panel-insert-head",
      () => actions.snippet({ text: text() }, true),
      "A new cell with code for the head selected in the view below"));
  const out: HTMLElement[] = [info, sites, show, head];
  if (d.d_mlp) {
    const layer = numberInput("iw-panel-neuron-layer", "layer", 0, d.n_layers - 1);
    const neuron = numberInput("iw-panel-neuron", "neuron", 0, d.d_mlp - 1);
    out.push(el("div", { class: "iw-panel-row" }, "layer", layer, "neuron", neuron,
      button("Code for this neuron", "iw-panel-insert-neuron",
        () => actions.snippet({ layer: Number(layer.value), neuron: Number(neuron.value), text: text() }, false))));
  }
  return out;
}

function viewDetails(d: ViewDetails, actions: DetailActions): HTMLElement[] {
  const sel = Object.entries(d.selection).map(([k, v]) => `${k} ${v}`).join(", ");
  return [
    facts([["widget", d.widget_class], ["model", d.model_name], ["layers x heads", d.n_layers && d.n_heads ? `${d.n_layers} x ${d.n_heads}` : null],
      ["selection", sel], ["prompts", d.prompts.length]]),
    el("div", { class: "iw-panel-row" },
      button("Code for the selected head", "iw-panel-insert-head", () => actions.snippet({}, false),
        "A new cell with code for the head selected in this view")),
  ];
}

function resultDetails(d: ResultDetails, actions: DetailActions): HTMLElement[] {
  const out: HTMLElement[] = [facts([["class", d.result_class], ["kind", d.result_kind], ["metric", d.metric],
    ["shape", d.shape.length ? `[${d.axes.map((a, i) => `${a} ${d.shape[i]}`).join(", ")}]` : null]])];
  if (!d.axes.length) {
    out.push(el("div", { class: "iw-panel-row" }, button("Code for this result", "iw-panel-insert", () => actions.snippet({}, false))));
    return out;
  }
  const selects = d.axes.map((axis, i) => {
    const labels = d.labels[axis] ?? Array.from({ length: d.shape[i] }, (_, j) => String(j));
    return [axis, select(`iw-panel-axis-${axis}`, axis, labels.map((lab, j) => [String(j), `${axis} ${lab}`]))] as const;
  });
  const kinds = d.score_kinds.length ? select("iw-panel-score", "score", d.score_kinds.map((k) => [k, k])) : null;
  const target = (): SnippetTarget => {
    const index = Object.fromEntries(selects.map(([axis, s]) => [axis, Number(s.value)]));
    if (kinds) return { layer: index.layer, head: index.head, score: kinds.value };
    return { index };
  };
  out.push(el("div", { class: "iw-panel-row" }, kinds, ...selects.map(([, s]) => s),
    button("Code for this node", "iw-panel-insert", () => actions.snippet(target(), false))));
  return out;
}

function traceDetails(d: TraceDetails, actions: DetailActions): HTMLElement[] {
  const out: HTMLElement[] = [facts([["captured", d.captured.length], ["logits", d.logits_shape ? `[${d.logits_shape.join(", ")}]` : null],
    ["metric", d.metric]])];
  if (!d.captured.length) return out;
  const site = select("iw-panel-site", "site", d.captured.map((c) => [c.hook_name, `${c.hook_name} [${c.shape.join(", ")}]`]));
  const head = el("input", { type: "number", min: 0, class: "iw-panel-number", placeholder: "head", "data-testid": "iw-panel-head", "aria-label": "head" });
  out.push(el("div", { class: "iw-panel-row" }, site, head,
    button("Code for this site", "iw-panel-insert", () => actions.snippet({
      site: site.value, head: head.value === "" ? null : Number(head.value),
    }, false))));
  return out;
}
