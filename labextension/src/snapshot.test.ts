// @vitest-environment jsdom
// The snapshot renderer: the live widget when the widget manager renders it, the static snapshot
// when it cannot (no kernel: never resolves; fresh kernel: "model not found"), live again if the
// manager renders it later; untrusted outputs get the sanitised HTML only.
import type { IRenderMimeRegistry } from "@jupyterlab/rendermime";
import type { IRenderMime } from "@jupyterlab/rendermime-interfaces";
import { Panel, Widget } from "@lumino/widgets";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { staticDocumentJson, staticHtml } from "../../src/attention/testdata";
import { LIVE_GRACE_MS, SNAPSHOT_MIME, SnapshotRenderer, WIDGET_MIME } from "./snapshot";

type Mode = "ok" | "hang" | "fail" | "late";

/** Stands in for jupyterlab_widgets' WidgetRenderer: a Panel that gains a child when the view renders. */
class FakeWidgetRenderer extends Panel implements IRenderMime.IRenderer {
  constructor(private mode: Mode) {
    super();
  }
  renderModel(): Promise<void> {
    const live = () => {
      const w = new Widget();
      w.node.innerHTML = '<div data-testid="iw-attention" data-mode="live"></div>';
      this.addWidget(w);
    };
    if (this.mode === "ok") {
      live();
      return Promise.resolve();
    }
    if (this.mode === "hang") {
      this.node.textContent = "Loading widget...";
      return new Promise(() => {});
    }
    this.node.textContent = "Error displaying widget: model not found";
    if (this.mode === "late") setTimeout(() => { this.node.textContent = ""; live(); }, 30);
    return Promise.resolve();
  }
}

function registry(mode: Mode): IRenderMimeRegistry {
  return { mimeTypes: [WIDGET_MIME], createRenderer: () => new FakeWidgetRenderer(mode) } as unknown as IRenderMimeRegistry;
}

function mimeModel(trusted = true): IRenderMime.IMimeModel {
  return {
    trusted,
    data: {
      [WIDGET_MIME]: { model_id: "abc", version_major: 2, version_minor: 1 },
      [SNAPSHOT_MIME]: { version: 1, html: "text/html" },
      "text/html": staticHtml(staticDocumentJson(2, 2, 10, true), '<img alt="grid" src="data:image/png;base64,AAAA">'),
      "text/plain": "<AttentionWidget>",
    },
    metadata: {},
    setData: () => {},
  };
}

const sanitizer = { sanitize: (html: string) => html.replace(/<script[\s\S]*?<\/script>/g, "") };
const options = { mimeType: SNAPSHOT_MIME, sanitizer } as unknown as IRenderMime.IRendererOptions;
const renderers: SnapshotRenderer[] = [];

async function render(mode: Mode, trusted = true): Promise<SnapshotRenderer> {
  const r = new SnapshotRenderer(options, registry(mode));
  renderers.push(r);
  Widget.attach(r, document.body);
  await r.renderModel(mimeModel(trusted));
  return r;
}

const shown = (r: Widget, mode: "live" | "static") =>
  [...r.node.querySelectorAll<HTMLElement>(`[data-testid="iw-attention"][data-mode="${mode}"]`)]
    .filter((el) => !el.closest(".lm-mod-hidden")).length;

/** Text a user sees: hidden widgets (the pending live renderer) left out. */
function visibleText(r: Widget): string {
  const copy = r.node.cloneNode(true) as HTMLElement;
  copy.querySelectorAll(".lm-mod-hidden, script").forEach((el) => el.remove());
  return copy.textContent ?? "";
}

beforeEach(() => {
  vi.spyOn(HTMLCanvasElement.prototype, "getContext").mockReturnValue(null);
});
afterEach(() => {
  renderers.splice(0).forEach((r) => r.dispose());
  vi.restoreAllMocks();
  document.body.replaceChildren();
});

describe("snapshot renderer", () => {
  it("shows the live widget when the kernel has it", async () => {
    const r = await render("ok");
    expect(shown(r, "live")).toBe(1);
    expect(shown(r, "static")).toBe(0);
  });

  it("shows the static snapshot when there is no widget manager (no kernel)", async () => {
    const t0 = Date.now();
    const r = await render("hang");
    expect(Date.now() - t0).toBeGreaterThanOrEqual(LIVE_GRACE_MS - 50);
    expect(shown(r, "static")).toBe(1);
    expect(shown(r, "live")).toBe(0);
    expect(visibleText(r)).not.toContain("Loading widget");
    expect(r.node.querySelectorAll('[data-testid="iw-cell"]').length).toBe(4);
    expect(r.node.querySelector("script[type=module]")).toBeNull();
  });

  it("shows the snapshot at once when the model is gone (fresh kernel)", async () => {
    const t0 = Date.now();
    const r = await render("fail");
    expect(Date.now() - t0).toBeLessThan(LIVE_GRACE_MS);
    expect(shown(r, "static")).toBe(1);
    expect(visibleText(r)).not.toContain("model not found");
  });

  it("switches to the live widget when the manager renders it later", async () => {
    const r = await render("late");
    expect(shown(r, "static")).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(shown(r, "live")).toBe(1);
    expect(shown(r, "static")).toBe(0);
  });

  it("renders only the sanitised fallback for untrusted outputs", async () => {
    const r = await render("hang", false);
    expect(shown(r, "static")).toBe(0);
    expect(r.node.querySelector('img[alt="grid"]')).not.toBeNull();
    expect(r.node.querySelector("script")).toBeNull();
  });
});
