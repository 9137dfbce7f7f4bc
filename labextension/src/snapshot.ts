// Static snapshots of interp-widget views in JupyterLab.
//
// A widget's output bundle holds the live view (application/vnd.jupyter.widget-view+json), a
// self-contained text/html snapshot, and SNAPSHOT_MIME, which this renderer claims (rank -20,
// ahead of the widget manager's -10). It shows the live widget when the kernel has its model, and
// the snapshot otherwise: no kernel at all (jupyterlab_widgets then never gets a widget manager
// and shows "Loading widget..." forever), or a fresh kernel without the model ("model not found").
// Only trusted outputs reach it (safe: false); untrusted ones fall back to the sanitised text/html
// (a PNG of the head grid and a summary).
import type { IRenderMimeRegistry } from "@jupyterlab/rendermime";
import type { IRenderMime } from "@jupyterlab/rendermime-interfaces";
import type { Message } from "@lumino/messaging";
import { Panel, Widget } from "@lumino/widgets";
import { mountStatic } from "../../src/views/static"; // attention or heatmap, by data-iw-static

export const SNAPSHOT_MIME = "application/vnd.interp-widget.snapshot+json";
export const WIDGET_MIME = "application/vnd.jupyter.widget-view+json";
/** how long the live widget may take before the snapshot shows instead */
export const LIVE_GRACE_MS = 800;

type Renderer = Widget & IRenderMime.IRenderer;

/** The rendermime of the output area holding `w` (it has the notebook's widget manager), if any. */
function outputRendermime(w: Widget): IRenderMimeRegistry | null {
  for (let p = w.parent; p; p = p.parent) {
    const r = (p as unknown as { rendermime?: IRenderMimeRegistry }).rendermime;
    if (r && typeof r.createRenderer === "function" && Array.isArray(r.mimeTypes)) return r;
  }
  return null;
}

function text(value: unknown): string {
  return Array.isArray(value) ? value.join("") : typeof value === "string" ? value : "";
}

export class SnapshotRenderer extends Panel implements IRenderMime.IRenderer {
  private attached: Promise<void>;
  private resolveAttached: () => void = () => {};
  private snapshot: Widget | null = null;
  private live: Renderer | null = null;
  private cleanups: (() => void)[] = [];
  private liveShown = false;

  constructor(private readonly options: IRenderMime.IRendererOptions, private readonly fallback: IRenderMimeRegistry) {
    super();
    this.addClass("iw-snapshot-renderer");
    this.attached = new Promise((resolve) => { this.resolveAttached = resolve; });
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    this.resolveAttached();
  }

  async renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    this.reset();
    if (!(WIDGET_MIME in model.data)) {
      this.showSnapshot(model);
      return;
    }
    const live = this.tryLive(model);
    const grace = new Promise<void>((resolve) => setTimeout(resolve, LIVE_GRACE_MS));
    await Promise.race([live.then((ok) => { if (!ok) this.showSnapshot(model); }), grace]);
    if (!this.liveShown) this.showSnapshot(model);
  }

  dispose(): void {
    if (this.isDisposed) return;
    this.reset();
    super.dispose();
  }

  private reset(): void {
    this.cleanups.splice(0).forEach((f) => f());
    this.snapshot?.dispose();
    this.live?.dispose();
    this.snapshot = null;
    this.live = null;
    this.liveShown = false;
  }

  /** Render the live widget (hidden until its view is there); resolves false if it failed for now. */
  private async tryLive(model: IRenderMime.IMimeModel): Promise<boolean> {
    await this.attached;
    if (this.isDisposed) return false;
    const registry = outputRendermime(this) ?? this.fallback;
    if (!registry.mimeTypes.includes(WIDGET_MIME)) return false;
    const live = registry.createRenderer(WIDGET_MIME) as Renderer;
    this.live = live;
    live.hide();
    this.addWidget(live);
    const succeeded = () => live instanceof Panel && live.widgets.length > 0;
    const promote = () => {
      if (this.liveShown || !succeeded()) return;
      this.liveShown = true;
      this.snapshot?.dispose();
      this.snapshot = null;
      live.show();
    };
    // the view may also arrive later (the widget manager re-renders once it has restored its models)
    const observer = new MutationObserver(promote);
    observer.observe(live.node, { childList: true });
    this.cleanups.push(() => observer.disconnect());
    try {
      await live.renderModel(model);
    } catch {
      return false;
    }
    promote();
    return this.liveShown;
  }

  private showSnapshot(model: IRenderMime.IMimeModel): void {
    if (this.snapshot || this.liveShown || this.isDisposed) return;
    const w = new Widget();
    w.addClass("iw-snapshot");
    const html = text(model.data["text/html"]);
    if (!model.trusted) {
      w.node.innerHTML = this.options.sanitizer.sanitize(html); // the fallback image and summary
    } else {
      w.node.innerHTML = html; // inline scripts do not run: the view is mounted by this extension
      w.node.querySelectorAll('script[type="module"]').forEach((s) => s.remove());
      const el = w.node.querySelector<HTMLElement>("[data-iw-static]");
      if (el) {
        try {
          const cleanup = mountStatic(el);
          this.cleanups.push(cleanup);
        } catch (err) {
          el.append(`interp-widget could not render this snapshot: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
    }
    this.snapshot = w;
    this.insertWidget(0, w);
  }
}

/** Add the snapshot renderer to `registry` (ahead of the widget manager's renderer). */
export function registerSnapshotRenderer(registry: IRenderMimeRegistry): void {
  registry.addFactory(
    { safe: false, mimeTypes: [SNAPSHOT_MIME], createRenderer: (options) => new SnapshotRenderer(options, registry) },
    -20,
  );
}
