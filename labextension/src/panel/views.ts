// An entry's view in the panel: the same view as inline.
//   widget: the kernel's ipywidget, rendered by the notebook's (or console's) own widget manager, so the
//           inline view and the panel's share one model (select a head in one, the other follows);
//   static: an attention snapshot rendered with src/attention's view (no widget manager needed);
//   mime:   the object's display data, rendered by the host's rendermime.
import type { IRenderMimeRegistry } from "@jupyterlab/rendermime";
import type { IRenderMime } from "@jupyterlab/rendermime-interfaces";
import { Panel, Widget } from "@lumino/widgets";
import { decodeState, decodeWindow } from "../../../src/attention/model";
import { staticSource } from "../../../src/attention/source";
import { createStore, type Selection, type Store } from "../../../src/attention/store";
import { renderAttention } from "../../../src/attention/view";
import type { MimeView, StaticView, WidgetView } from "./generated";

export const WIDGET_MIME = "application/vnd.jupyter.widget-view+json";

type View = WidgetView | StaticView | MimeView;

/** A trusted mime model (what @jupyterlab/rendermime's MimeModel is, without importing its runtime). */
function mimeModel(data: Record<string, unknown>, metadata: Record<string, unknown> = {}): IRenderMime.IMimeModel {
  return {
    trusted: true, // the kernel the user runs sent it, as it sends the notebook's outputs
    data: data as IRenderMime.IMimeModel["data"],
    metadata: metadata as IRenderMime.IMimeModel["metadata"],
    setData: () => undefined,
  };
}

/** The host's rendermime cannot show ipywidgets (no widget manager for its kernel). */
export class NoWidgetManagerError extends Error {
  constructor() {
    super("this notebook has no widget manager (is jupyterlab_widgets installed?)");
    this.name = "NoWidgetManagerError";
  }
}

/** A rendered view: a Lumino widget, and what it shows. */
export class EntryView extends Panel {
  /** the ipywidget's model id (widget views) */
  readonly modelId: string | null;
  /** the kernel made the ipywidget for the panel: release it when this view goes */
  readonly owned: boolean;
  private cleanup: (() => void) | null = null;
  private store: Store<Selection> | null = null;

  constructor(readonly kind: View["kind"], opts: { modelId?: string; owned?: boolean } = {}) {
    super();
    this.addClass("iw-panel-view");
    this.node.dataset.testid = "iw-panel-view";
    this.node.dataset.kind = kind;
    this.modelId = opts.modelId ?? null;
    this.owned = opts.owned ?? false;
    if (this.modelId) this.node.dataset.modelId = this.modelId;
  }

  /** The head selected in a static view (live views keep theirs in the kernel's widget). */
  selection(): Selection | null {
    return this.store ? this.store.get() : null;
  }

  setStatic(store: Store<Selection>, cleanup: () => void): void {
    this.store = store;
    this.cleanup = cleanup;
  }

  dispose(): void {
    if (this.isDisposed) return;
    this.cleanup?.();
    this.cleanup = null;
    super.dispose();
  }
}

/** Render `view` for a host whose rendermime is `rendermime`. */
export async function renderView(view: View, rendermime: IRenderMimeRegistry): Promise<EntryView> {
  if (view.kind === "widget") {
    if (!rendermime.mimeTypes.includes(WIDGET_MIME)) throw new NoWidgetManagerError();
    const out = new EntryView("widget", { modelId: view.model_id, owned: view.owned });
    const renderer = rendermime.createRenderer(WIDGET_MIME);
    out.addWidget(renderer);
    await renderer.renderModel(mimeModel({ [WIDGET_MIME]: { model_id: view.model_id, version_major: 2, version_minor: 1 } }));
    return out;
  }
  if (view.kind === "static") {
    const doc = view.document;
    const s = doc.state;
    const out = new EntryView("static");
    const selection = createStore<Selection>({ prompt: s.prompt, layer: s.layer, head: s.head });
    const body = new Widget();
    out.addWidget(body);
    const cleanup = renderAttention(body.node, {
      data: decodeState(s),
      selection,
      source: staticSource(doc.patterns, s.n_heads),
      windowSize: s.window_size,
      initialWindow: s.window ? decodeWindow(s.window) : null,
      mode: "static",
    });
    out.setStatic(selection, cleanup);
    return out;
  }
  const data = view.data as Record<string, unknown>;
  const mimeType = rendermime.preferredMimeType(data as never, "any");
  const out = new EntryView("mime");
  if (!mimeType) {
    const body = new Widget();
    body.node.textContent = String(data["text/plain"] ?? "(nothing to show)");
    out.addWidget(body);
    return out;
  }
  const renderer = rendermime.createRenderer(mimeType);
  out.addWidget(renderer);
  await renderer.renderModel(mimeModel(data, view.metadata as Record<string, unknown>));
  return out;
}
