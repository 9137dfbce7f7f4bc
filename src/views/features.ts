// The feature dashboard view: one neuron or SAE feature at a time (top examples with per-token
// highlighting, activation histogram, promoted / suppressed tokens, links to the other side) and a
// prompt box showing the unit's activations over the user's text. A pure function of (el, props)
// returning a cleanup; the state is a Store and the kernel is behind `actions` (null: a static page).
import { h } from "../attention/dom";
import type { Store } from "../attention/store";
import { type Theme, readTheme, watchTheme } from "../attention/theme";
import { errorText } from "./run-controls";
import type { UnitLink } from "../schema/generated";
import { type Panel, type PromptActs, type UnitKind, drawnBars, maxAct } from "./features-model";
import { effectsTable, histogramPlot, tokenRun } from "./features-parts";
import { ensureFeaturesStyle } from "./features-style";

export interface FeaturesViewState {
  modelName: string;
  site: string;
  nNeurons: number;
  nFeatures: number;
  panel: Panel | null;
  promptActs: PromptActs | null;
  prompt: string;
}

export interface FeaturesActions {
  select(kind: UnitKind, index: number): Promise<Panel>;
  activations(kind: UnitKind, index: number, text: string): Promise<PromptActs>;
}

export interface FeaturesViewProps {
  state: Store<FeaturesViewState>;
  actions: FeaturesActions | null;
}

export function renderFeatures(el: HTMLElement, props: FeaturesViewProps): () => void {
  const { state, actions } = props;
  ensureFeaturesStyle(el.ownerDocument);
  const root = h("div", { class: "iw-root iw-features", "data-testid": "iw-features", "data-mode": actions ? "live" : "static" });
  el.append(root);
  let theme: Theme = readTheme(root);
  const width = () => Math.max(240, Math.min(420, (root.clientWidth || 760) / 2 - 24));

  // --- picker -------------------------------------------------------------------------------------
  const kind = h("select", { "data-testid": "iw-fd-kind", "aria-label": "neuron or feature" },
    h("option", { value: "neuron" }, "neuron"), h("option", { value: "feature" }, "SAE feature"));
  const index = h("input", { type: "number", min: 0, step: 1, "data-testid": "iw-fd-index", "aria-label": "index" });
  const showBtn = h("button", { type: "button", class: "iw-btn", "data-primary": "1", "data-testid": "iw-fd-show" }, "Show");
  const title = h("span", { class: "iw-title", "data-testid": "iw-fd-title" });
  const counts = h("span", { class: "iw-muted" });
  const picker = h("div", { class: "iw-row" }, h("label", { class: "iw-field" }, "unit", kind),
    h("label", { class: "iw-field" }, "index", index), showBtn);
  const error = h("div", { class: "iw-error", "data-testid": "iw-fd-error", role: "alert" });
  const note = h("div", { class: "iw-muted", "data-testid": "iw-fd-note" });

  // --- panel --------------------------------------------------------------------------------------
  const examples = h("div", { class: "iw-fd-col", "data-testid": "iw-fd-examples" });
  const hist = h("div", { class: "iw-fd-hist", "data-testid": "iw-fd-hist" });
  const promoted = h("div", {});
  const suppressed = h("div", {});
  const linksTitle = h("div", { class: "iw-fd-h" });
  const links = h("div", { class: "iw-fd-links", "data-testid": "iw-fd-links" });
  const side = h("div", { class: "iw-fd-col" }, h("div", { class: "iw-fd-h" }, "activation histogram"), hist,
    h("div", { class: "iw-fd-h" }, "promotes"), promoted, h("div", { class: "iw-fd-h" }, "suppresses"), suppressed,
    linksTitle, links);

  // --- prompt box ---------------------------------------------------------------------------------
  const promptBox = h("textarea", { rows: 2, spellcheck: "false", "data-testid": "iw-fd-prompt", "aria-label": "your text" });
  const promptBtn = h("button", { type: "button", class: "iw-btn", "data-testid": "iw-fd-run" }, "Show activations");
  const promptOut = h("div", { class: "iw-fd-example", "data-testid": "iw-fd-prompt-acts" });
  const promptLinks = h("div", { class: "iw-fd-links", "data-testid": "iw-fd-prompt-links" });
  const promptPanel = h("div", { class: "iw-panel" },
    h("label", { class: "iw-field" }, "activations on your text", promptBox), h("div", { class: "iw-row" }, promptBtn),
    promptOut, promptLinks);

  root.append(h("div", { class: "iw-panel" }, h("div", { class: "iw-row" }, title, counts), picker, note, error),
    h("div", { class: "iw-fd-cols" }, examples, side), promptPanel);

  // --- actions ------------------------------------------------------------------------------------
  let busy = 0;
  const setBusy = (on: boolean) => {
    busy += on ? 1 : -1;
    root.dataset.state = busy > 0 ? "loading" : "idle";
  };
  const select = (k: UnitKind, i: number) => {
    if (!actions) return;
    error.textContent = "";
    setBusy(true);
    actions.select(k, i).then(
      (p) => { state.set({ panel: p, promptActs: null }); setBusy(false); },
      (err: unknown) => { error.textContent = errorText(err); setBusy(false); root.dataset.state = "error"; },
    );
  };
  const runPrompt = () => {
    const p = state.get().panel;
    if (!actions || !p) return;
    error.textContent = "";
    setBusy(true);
    actions.activations(p.kind, p.index, promptBox.value).then(
      (a) => { state.set({ promptActs: a, prompt: a.text }); setBusy(false); },
      (err: unknown) => { error.textContent = errorText(err); setBusy(false); root.dataset.state = "error"; },
    );
  };
  showBtn.addEventListener("click", () => select(kind.value as UnitKind, Number(index.value)));
  promptBtn.addEventListener("click", runPrompt);
  promptBox.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey || e.shiftKey)) {
      e.preventDefault();
      runPrompt();
    }
  });
  const linkButtons = (items: UnitLink[], box: HTMLElement) => {
    box.replaceChildren();
    for (const l of items) {
      const b = h("button", {
        type: "button", class: "iw-btn iw-link", "data-kind": l.kind, "data-index": l.index,
        "data-sign": l.weight < 0 ? "-" : "+", title: `weight ${l.weight.toFixed(4)}`,
      }, `${l.kind === "feature" ? "F" : "N"}${l.index} ${l.weight >= 0 ? "+" : ""}${l.weight.toFixed(2)}`);
      if (actions) b.addEventListener("click", () => select(l.kind, l.index));
      else b.disabled = true;
      box.append(b);
    }
    if (!items.length) box.append(h("span", { class: "iw-muted" }, "—"));
  };

  // --- state -> DOM -------------------------------------------------------------------------------
  const drawPanel = (p: Panel | null) => {
    examples.replaceChildren(h("div", { class: "iw-fd-h" }, "top activations in context"));
    if (!p) {
      title.textContent = "nothing selected";
      return;
    }
    root.dataset.kind = p.kind;
    root.dataset.index = String(p.index);
    title.textContent = p.title;
    note.textContent = p.note;
    kind.value = p.kind;
    if (el.ownerDocument.activeElement !== index) index.value = String(p.index);
    const max = p.top.reduce((m, e) => Math.max(m, maxAct(e.acts)), 0);
    p.top.forEach((e) => {
      examples.append(h("div", { class: "iw-fd-example", "data-testid": "iw-fd-example", "data-value": e.value.toFixed(4) },
        h("span", { class: "iw-fd-value" }, e.value.toFixed(2)), tokenRun(e.tokens, e.acts, max, theme, { peak: e.peak })));
    });
    if (!p.top.length) examples.append(h("div", { class: "iw-muted" }, "never active on the dataset"));
    const drawn = drawnBars(p.bars, p.nNonpositive);
    const pct = p.n ? ((100 * drawn.hidden) / p.n).toFixed(1) : "0";
    hist.replaceChildren(histogramPlot(drawn.bars, theme, width()),
      h("div", { class: "iw-muted", "data-testid": "iw-fd-hist-note" },
        drawn.hidden ? `${drawn.hidden} of ${p.n} tokens (${pct}%) at or below 0, not drawn` : `${p.n} tokens`));
    hist.dataset.n = String(p.n);
    promoted.replaceChildren(effectsTable(p.promoted, "iw-fd-promoted"));
    suppressed.replaceChildren(effectsTable(p.suppressed, "iw-fd-suppressed"));
    linksTitle.textContent = p.linksTitle;
    linkButtons(p.links, links);
  };
  const drawPrompt = (a: PromptActs | null) => {
    promptOut.replaceChildren();
    promptLinks.replaceChildren();
    if (!a) return;
    const max = Math.max(maxAct(a.acts), state.get().panel?.top[0]?.value ?? 0);
    let peak = 0;
    a.acts.forEach((v, i) => { if (v > a.acts[peak]) peak = i; });
    promptOut.append(tokenRun(a.tokens, a.acts, max, theme, { peak }));
    promptOut.dataset.max = maxAct(a.acts).toFixed(4);
    if (a.links.length) {
      promptLinks.append(h("span", { class: "iw-muted" }, "features at the peak token: "));
      const box = h("span", { class: "iw-fd-links" });
      linkButtons(a.links, box);
      promptLinks.append(box);
    }
  };
  let shownPanel: Panel | null | undefined;
  let shownActs: PromptActs | null | undefined;
  const sync = (s: FeaturesViewState, force = false) => {
    counts.textContent = `${s.modelName} · ${s.site} · ${s.nNeurons} neurons · ${s.nFeatures} SAE features`;
    index.max = String(Math.max(s.nNeurons, s.nFeatures) - 1);
    if (promptBox.value !== s.prompt && el.ownerDocument.activeElement !== promptBox) promptBox.value = s.prompt;
    picker.style.display = actions ? "" : "none";
    promptBox.disabled = !actions;
    promptBtn.disabled = !actions;
    if (force || s.panel !== shownPanel) {
      shownPanel = s.panel;
      drawPanel(s.panel);
    }
    if (force || s.promptActs !== shownActs) {
      shownActs = s.promptActs;
      drawPrompt(s.promptActs);
    }
  };
  sync(state.get());
  const unsubscribe = state.subscribe((s) => sync(s));
  const unwatch = watchTheme(() => {
    theme = readTheme(root);
    sync(state.get(), true);
  });
  return () => {
    unsubscribe();
    unwatch();
    root.remove();
  };
}
