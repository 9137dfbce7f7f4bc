// @vitest-environment jsdom
// An entry's view in the panel: a live widget through the host's widget manager, a static attention
// snapshot through src/attention's view, display data through the host's rendermime.
import type { IRenderMimeRegistry } from "@jupyterlab/rendermime";
import type { IRenderMime } from "@jupyterlab/rendermime-interfaces";
import { Widget } from "@lumino/widgets";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { StaticAttention } from "../../../src/schema/generated";
import { decodeBase64Payloads } from "../../../src/schema/wire";
import { staticDocumentJson } from "../../../src/attention/testdata";
import { EntryView, NoWidgetManagerError, WIDGET_MIME, renderView } from "./views";

class FakeRenderer extends Widget implements IRenderMime.IRenderer {
  model: IRenderMime.IMimeModel | null = null;
  constructor(readonly mimeType: string) {
    super();
  }
  async renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    this.model = model;
    this.node.dataset.mime = this.mimeType;
  }
}

function rendermime(mimeTypes: string[]): IRenderMimeRegistry & { made: FakeRenderer[] } {
  const made: FakeRenderer[] = [];
  return {
    made,
    mimeTypes,
    createRenderer: (mime: string) => {
      const r = new FakeRenderer(mime);
      made.push(r);
      return r;
    },
    preferredMimeType: (bundle: Record<string, unknown>) => mimeTypes.find((m) => m in bundle),
  } as unknown as IRenderMimeRegistry & { made: FakeRenderer[] };
}

describe("renderView", () => {
  it("renders a widget view with the host's widget manager (the same model as inline)", async () => {
    const rm = rendermime([WIDGET_MIME, "text/plain"]);
    const view = await renderView({ kind: "widget", model_id: "abc123", owned: true }, rm);
    expect(view).toBeInstanceOf(EntryView);
    expect(view.modelId).toBe("abc123");
    expect(view.owned).toBe(true);
    expect(rm.made).toHaveLength(1);
    expect(rm.made[0].mimeType).toBe(WIDGET_MIME);
    expect(rm.made[0].model?.data[WIDGET_MIME]).toEqual({ model_id: "abc123", version_major: 2, version_minor: 1 });
    expect(view.widgets).toContain(rm.made[0]);
    view.dispose();
    expect(rm.made[0].isDisposed).toBe(true);
  });

  it("refuses a widget view where there is no widget manager", async () => {
    await expect(renderView({ kind: "widget", model_id: "x", owned: false }, rendermime(["text/plain"])))
      .rejects.toBeInstanceOf(NoWidgetManagerError);
  });

  afterEach(() => vi.restoreAllMocks());

  it("renders a static attention snapshot with src/attention's view", async () => {
    // jsdom has no 2D canvas: a context whose every method does nothing
    const noop = new Proxy({}, { get: (_, key) => (key === "canvas" ? undefined : () => ({ data: new Uint8ClampedArray(4) })) });
    vi.spyOn(HTMLCanvasElement.prototype, "getContext").mockImplementation(() => noop as never);
    const doc = decodeBase64Payloads(JSON.parse(staticDocumentJson(2, 3, 8, true))) as StaticAttention;
    doc.state.layer = 1;
    doc.state.head = 2;
    const view = await renderView({ kind: "static", document: doc }, rendermime([]));
    document.body.append(view.node);
    const root = view.node.querySelector<HTMLElement>('[data-testid="iw-attention"]');
    expect(root?.dataset.mode).toBe("static");
    expect(view.node.querySelectorAll('[data-testid="iw-cell"]')).toHaveLength(2 * 3);
    expect(view.selection()).toEqual({ prompt: 0, layer: 1, head: 2 });
    view.dispose();
    expect(view.node.querySelector('[data-testid="iw-attention"]')).toBeNull();
  });

  it("renders display data with the host's rendermime", async () => {
    const rm = rendermime(["text/html", "text/plain"]);
    const view = await renderView({ kind: "mime", data: { "text/plain": "r", "text/html": "<b>r</b>" }, metadata: {} }, rm);
    expect(rm.made[0].mimeType).toBe("text/html");
    expect(rm.made[0].model?.trusted).toBe(true);
    expect(view.kind).toBe("mime");
    const none = await renderView({ kind: "mime", data: { "application/x-unknown": 1 }, metadata: {} }, rendermime([]));
    expect(none.node.textContent).toBe("(nothing to show)");
  });
});
