// The side panel: follows the active notebook or console, lists what interp_widget holds in its
// kernel, shows the selected entry's details and view, and sends code for a selection to a new cell.
import type { Kernel } from "@jupyterlab/services";
import { Panel, Widget } from "@lumino/widgets";
import { KernelClient, PanelRequestError } from "./client";
import { renderDetails } from "./details";
import { button, el, ensureStyle } from "./dom";
import type { EntrySummary, SnippetTarget } from "./generated";
import type { Host } from "./hosts";
import { EntryView, NoWidgetManagerError, renderView } from "./views";

export interface PanelSettings {
  defaultPrompt: string;
  showUnnamed: boolean;
  runInsertedCode: boolean;
  requestTimeoutSeconds: number;
}

export const DEFAULT_SETTINGS: PanelSettings = {
  defaultPrompt: "",
  showUnnamed: true,
  runInsertedCode: false,
  requestTimeoutSeconds: 60,
};

const GROUPS: [EntrySummary["kind"], string][] = [["model", "Models"], ["view", "Views"], ["result", "Results"], ["trace", "Traces"]];

/** What the panel remembers per kernel: the selection, its view, the prompt. */
interface KernelView {
  client: KernelClient;
  selected: string | null;
  view: EntryView | null;
  viewEntry: string | null;
  prompt: string;
  renderSeq: number;
}

export class InterpPanel extends Panel {
  settings: PanelSettings = { ...DEFAULT_SETTINGS };
  private host: Host | null = null;
  private readonly kernels = new Map<Kernel.IKernelConnection, KernelView>();
  private readonly watched = new WeakSet<object>();
  private readonly header: HTMLElement;
  private readonly kernelLabel: HTMLElement;
  private readonly badge: HTMLElement;
  private readonly message: HTMLElement;
  private readonly list: HTMLElement;
  private readonly details: HTMLElement;
  private readonly snippetBox: HTMLElement;
  private readonly viewArea: Panel;

  constructor(private readonly execute: (command: string, args?: Record<string, unknown>) => Promise<unknown>) {
    super();
    ensureStyle();
    this.id = "interp-widget-panel";
    this.addClass("iw-panel");
    this.node.dataset.testid = "iw-panel";
    this.title.caption = "interp-widget: models, results and views in this kernel";
    this.title.label = "interp-widget";
    this.kernelLabel = el("span", { class: "iw-panel-kernel", "data-testid": "iw-panel-kernel" });
    this.badge = el("span", { class: "iw-panel-badge", "data-testid": "iw-panel-state" });
    this.header = el("div", { class: "iw-panel-header" }, el("span", { class: "iw-panel-title" }, "interp-widget"),
      this.kernelLabel, this.badge, button("↻", "iw-panel-refresh", () => void this.refresh(), "Refresh"));
    this.message = el("div", { class: "iw-panel-message", "data-testid": "iw-panel-message" });
    this.list = el("div", { class: "iw-panel-entries", "data-testid": "iw-panel-entries" });
    this.details = el("div", { class: "iw-panel-details", "data-testid": "iw-panel-details" });
    this.snippetBox = el("pre", { class: "iw-panel-snippet", "data-testid": "iw-panel-snippet" });
    this.viewArea = new Panel();
    this.viewArea.addClass("iw-panel-viewarea");
    this.viewArea.node.dataset.testid = "iw-panel-viewarea";
    const top = new Widget();
    top.addClass("iw-panel-top");
    top.node.append(this.header, this.message, this.list, this.details, this.snippetBox);
    this.addWidget(top);
    this.addWidget(this.viewArea);
  }

  // --- what the panel follows ------------------------------------------------------------------
  /** Watch a notebook or console's kernel(s) from now on (a client per kernel; the comm target registered). */
  watch(host: Host): void {
    const ctx = host.sessionContext;
    if (this.watched.has(ctx)) return;
    this.watched.add(ctx);
    ctx.kernelChanged.connect(() => {
      this.ensureClient(ctx.session?.kernel ?? null);
      if (this.host?.sessionContext === ctx) this.render();
    });
    ctx.statusChanged.connect(() => {
      if (this.host?.sessionContext === ctx) this.renderHeader();
    });
    this.ensureClient(ctx.session?.kernel ?? null);
  }

  /** Follow `host` (the active notebook or console); null: nothing to follow. */
  follow(host: Host | null): void {
    if (host) this.watch(host);
    if (host?.widget === this.host?.widget) return;
    this.detachView();
    this.host = host;
    this.render();
  }

  get current(): KernelView | null {
    const kernel = this.host?.sessionContext.session?.kernel ?? null;
    return kernel ? this.kernels.get(kernel) ?? null : null;
  }

  get followed(): Host | null {
    return this.host;
  }

  applySettings(settings: Partial<PanelSettings>): void {
    this.settings = { ...this.settings, ...settings };
    for (const kv of this.kernels.values()) kv.client.timeoutMs = this.settings.requestTimeoutSeconds * 1000;
    this.renderList();
  }

  private ensureClient(kernel: Kernel.IKernelConnection | null): KernelView | null {
    if (!kernel) return null;
    let kv = this.kernels.get(kernel);
    if (kv) return kv;
    const client = new KernelClient(kernel);
    client.timeoutMs = this.settings.requestTimeoutSeconds * 1000;
    kv = { client, selected: null, view: null, viewEntry: null, prompt: this.settings.defaultPrompt, renderSeq: 0 };
    this.kernels.set(kernel, kv);
    const mine = kv;
    client.stateChanged.connect(() => this.onClientChange(mine));
    client.entriesChanged.connect(() => this.onClientChange(mine));
    kernel.disposed.connect(() => {
      this.dropView(mine);
      this.kernels.delete(kernel);
      if (this.current === null) this.render();
    });
    return kv;
  }

  private onClientChange(kv: KernelView): void {
    const ids = new Set(kv.client.entries.map((e) => e.id));
    if (kv.selected && !ids.has(kv.selected)) {
      // the selected object is gone (deleted, or the kernel restarted): so is its view
      kv.selected = null;
      this.dropView(kv);
      if (kv === this.current) this.details.replaceChildren();
    }
    if (kv === this.current) {
      this.renderHeader();
      this.renderMessage();
      this.renderList();
    }
  }

  // --- rendering ------------------------------------------------------------------------------
  private render(): void {
    this.renderHeader();
    this.renderMessage();
    this.renderList();
    this.details.replaceChildren();
    this.snippetBox.textContent = "";
    const kv = this.current;
    if (kv?.selected && kv.client.entries.some((e) => e.id === kv.selected)) {
      void this.describe(kv, kv.selected);
      if (kv.view) this.attachView(kv.view);
    }
  }

  private renderHeader(): void {
    const host = this.host;
    const kv = this.current;
    const kernelName = host?.sessionContext.kernelDisplayName ?? "";
    this.kernelLabel.textContent = host ? `${host.label}${kernelName ? ` · ${kernelName}` : ""}` : "no notebook";
    const state = !host ? "none" : !kv ? "no-kernel" : kv.client.state;
    this.badge.textContent = state;
    this.badge.dataset.state = state;
    this.node.dataset.state = state;
    this.node.dataset.kernelId = host?.sessionContext.session?.kernel?.id ?? "";
  }

  private renderMessage(): void {
    const host = this.host;
    const kv = this.current;
    const m = this.message;
    m.replaceChildren();
    if (!host) {
      m.append("Open a notebook or console to see the models, results and views interp-widget holds in its kernel.");
      return;
    }
    if (!kv) {
      m.append("This notebook has no kernel.");
      return;
    }
    const c = kv.client;
    switch (c.state) {
      case "connected":
        if (!c.entries.length) m.append("Nothing yet: load a model (interp_widget.load(...)) or run an analysis.");
        return;
      case "connecting":
        m.append("Connecting to the kernel…");
        return;
      case "not-imported":
        m.append("interp_widget is not imported in this kernel.",
          button("Import interp_widget", "iw-panel-import", () => void this.importPackage(),
            "Run `import interp_widget as iw` in this kernel"));
        return;
      case "restarting":
        m.append("The kernel is restarting…");
        return;
      case "dead":
        m.append("The kernel is dead.", button("Restart the kernel", "iw-panel-restart",
          () => void host.sessionContext.restartKernel()));
        return;
      case "disconnected":
        m.append("The connection to the kernel is lost; waiting for it to come back…");
        return;
    }
  }

  private renderList(): void {
    const kv = this.current;
    this.list.replaceChildren();
    if (!kv || kv.client.state !== "connected") return;
    const visible = kv.client.entries.filter((e) => this.settings.showUnnamed || e.names.length || e.id === kv.selected);
    for (const [kind, title] of GROUPS) {
      const entries = visible.filter((e) => e.kind === kind);
      if (!entries.length) continue;
      const ul = el("ul", { class: "iw-panel-list", role: "listbox", "aria-label": title });
      for (const e of entries) {
        const li = el("li", {
          class: "iw-panel-entry",
          role: "option",
          "data-testid": "iw-panel-entry",
          "data-entry-id": e.id,
          "data-kind": e.kind,
          "data-label": e.label,
          "aria-selected": String(e.id === kv.selected),
          title: `${e.type_name} ${e.id}`,
        },
        el("span", { class: "iw-panel-label" }, e.label),
        e.names.length ? el("span", { class: "iw-panel-names" }, e.names.join(", ")) : null,
        el("div", { class: "iw-panel-detail" }, e.detail));
        li.addEventListener("click", () => void this.select(e.id));
        ul.append(li);
      }
      this.list.append(el("div", { class: "iw-panel-group", "data-kind": kind }, el("h3", {}, title), ul));
    }
  }

  // --- actions --------------------------------------------------------------------------------
  /** Select an entry of the current kernel: its details, and its view in the panel. */
  async select(entryId: string, prompt?: string): Promise<void> {
    const kv = this.current;
    if (!kv) return;
    if (prompt !== undefined) kv.prompt = prompt;
    if (kv.selected !== entryId) {
      kv.selected = entryId;
      this.renderList();
    }
    this.snippetBox.textContent = "";
    await Promise.all([this.describe(kv, entryId), this.renderEntry(kv, entryId)]);
  }

  /** Show the attention of `text`: the model whose variable is `text`, or the selected (else latest) model on `text`. */
  async showAttention(text: string): Promise<void> {
    const kv = this.current;
    if (!kv || kv.client.state !== "connected") return;
    const t = text.trim();
    const entries = kv.client.entries;
    const byName = entries.find((e) => (e.kind === "model" || e.kind === "view") && e.names.includes(t));
    if (byName) {
      await this.select(byName.id);
      return;
    }
    const selected = entries.find((e) => e.id === kv.selected && e.kind === "model");
    const model = selected ?? [...entries].reverse().find((e) => e.kind === "model");
    if (!model) {
      this.showError(new Error("no model in this kernel to show the attention of"));
      return;
    }
    await this.select(model.id, text || kv.prompt);
  }

  async refresh(): Promise<void> {
    try {
      await this.current?.client.refresh();
    } catch (err) {
      this.showError(err);
    }
  }

  private async importPackage(): Promise<void> {
    const kernel = this.host?.sessionContext.session?.kernel;
    if (!kernel) return;
    // not silent: the kernel announces itself to the panel at the end of the cell (post_run_cell)
    await kernel.requestExecute({ code: "import interp_widget as iw", silent: false, store_history: false }).done;
  }

  private async describe(kv: KernelView, entryId: string): Promise<void> {
    try {
      const reply = await kv.client.request({ type: "describe", entry: entryId });
      if (kv !== this.current || kv.selected !== entryId) return;
      this.details.replaceChildren(renderDetails(reply, {
        defaultPrompt: kv.prompt,
        show: (prompt) => {
          kv.prompt = prompt;
          void this.renderEntry(kv, entryId);
        },
        snippet: (target, fromView) => void this.snippet(kv, entryId, target, fromView),
      }));
    } catch (err) {
      if (kv === this.current) this.details.replaceChildren(this.errorNode(err));
    }
  }

  private async renderEntry(kv: KernelView, entryId: string): Promise<void> {
    const host = this.host;
    if (!host) return;
    const seq = ++kv.renderSeq;
    this.dropView(kv);
    const waiting = new Widget();
    waiting.node.textContent = "Rendering…";
    waiting.node.dataset.testid = "iw-panel-rendering";
    this.viewArea.addWidget(waiting);
    const prompt = kv.prompt.trim() ? kv.prompt : null;
    let view: EntryView | null = null;
    try {
      const entry = kv.client.entries.find((e) => e.id === entryId);
      let reply = await kv.client.request({ type: "render", entry: entryId, mode: "live", text: prompt });
      try {
        view = await renderView(reply.view, host.rendermime);
      } catch (err) {
        if (!(err instanceof NoWidgetManagerError) || (entry?.kind !== "model" && entry?.kind !== "view")) throw err;
        if (reply.view.kind === "widget" && reply.view.owned) void this.release(kv, [reply.view.model_id]);
        reply = await kv.client.request({ type: "render", entry: entryId, mode: "static", text: prompt });
        view = await renderView(reply.view, host.rendermime);
      }
      if (seq !== kv.renderSeq || kv.selected !== entryId) {
        this.disposeView(kv, view);
        return;
      }
      kv.view = view;
      kv.viewEntry = entryId;
      if (kv === this.current) this.attachView(view);
    } catch (err) {
      if (seq === kv.renderSeq && kv === this.current) {
        const w = new Widget({ node: this.errorNode(err) });
        this.viewArea.addWidget(w);
      }
    } finally {
      waiting.dispose();
    }
  }

  private async snippet(kv: KernelView, entryId: string, target: SnippetTarget, fromView: boolean): Promise<void> {
    const host = this.host;
    if (!host) return;
    const t: SnippetTarget = { ...target };
    if (fromView && kv.view && kv.viewEntry === entryId) {
      if (kv.view.modelId) t.view = kv.view.modelId;
      const sel = kv.view.selection();
      if (sel) Object.assign(t, { layer: sel.layer, head: sel.head });
    }
    if (fromView && t.view === undefined && t.layer === undefined) Object.assign(t, { layer: 0, head: 0 });
    try {
      const reply = await kv.client.request({ type: "snippet", entry: entryId, target: t });
      this.snippetBox.textContent = reply.code;
      this.snippetBox.dataset.description = reply.description;
      await host.insertCode(reply.code, this.settings.runInsertedCode, (cmd) => this.execute(cmd));
    } catch (err) {
      this.showError(err);
    }
  }

  private showError(err: unknown): void {
    this.snippetBox.textContent = "";
    this.snippetBox.append(this.errorNode(err));
  }

  private errorNode(err: unknown): HTMLElement {
    const text = err instanceof PanelRequestError || err instanceof Error ? err.message : String(err);
    const typeName = err instanceof PanelRequestError ? err.typeName : err instanceof Error ? err.name : "Error";
    return el("div", { class: "iw-panel-error", "data-testid": "iw-panel-error", "data-type": typeName }, text);
  }

  // --- views ------------------------------------------------------------------------------------------
  private attachView(view: EntryView): void {
    for (const w of [...this.viewArea.widgets]) if (w !== view) w.parent = null;
    if (view.parent !== this.viewArea) this.viewArea.addWidget(view);
  }

  /** Take the current kernel's view off screen (kept: switching back shows it again). */
  private detachView(): void {
    for (const w of [...this.viewArea.widgets]) {
      if (w instanceof EntryView) w.parent = null;
      else w.dispose();
    }
  }

  private dropView(kv: KernelView): void {
    const view = kv.view;
    kv.view = null;
    kv.viewEntry = null;
    if (view) this.disposeView(kv, view);
    for (const w of [...this.viewArea.widgets]) if (!(w instanceof EntryView) && kv === this.current) w.dispose();
  }

  private disposeView(kv: KernelView, view: EntryView): void {
    if (view.owned && view.modelId) void this.release(kv, [view.modelId]);
    view.dispose();
  }

  private async release(kv: KernelView, modelIds: string[]): Promise<void> {
    if (kv.client.state !== "connected") return; // a restarted kernel has no such widgets anyway
    try {
      await kv.client.request({ type: "release", model_ids: modelIds });
    } catch {
      /* the kernel went away; its widgets with it */
    }
  }

  dispose(): void {
    if (this.isDisposed) return;
    for (const kv of this.kernels.values()) {
      this.dropView(kv);
      kv.client.dispose();
    }
    this.kernels.clear();
    this.viewArea.dispose();
    super.dispose();
  }
}
