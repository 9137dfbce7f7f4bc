// @vitest-environment jsdom
// DOM behaviour of the attention view through its anywidget entry, with a fake model and a
// fake 2D context (jsdom has no canvas): selection, Python sync, tooltips, commands, static pages.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { AttentionState } from "../schema/generated";
import { cellAt, detailLayout } from "./math";
import { mountAll } from "./static";
import { FakeModel, makeState, staticDocumentJson, windowPayload } from "./testdata";
import { heatLut, parseColor, readTheme } from "./theme";
import { render } from "./widget";
import { READY_EVENT } from "./view";
import { CSS } from "./style";

interface Painted { canvas: HTMLCanvasElement; data: Uint8ClampedArray; width: number; height: number }
let painted: Painted[] = [];

function fakeContext(canvas: HTMLCanvasElement): unknown {
  const noop = () => {};
  return {
    canvas,
    setTransform: noop, fillRect: noop, fillText: noop, save: noop, restore: noop, translate: noop, rotate: noop,
    strokeRect: noop, drawImage: noop, clearRect: noop,
    createImageData: (w: number, h: number) => ({ width: w, height: h, data: new Uint8ClampedArray(w * h * 4) }),
    putImageData: (img: { data: Uint8ClampedArray; width: number; height: number }) =>
      painted.push({ canvas, data: img.data, width: img.width, height: img.height }),
  };
}

const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));

type Invoke = (name: string, msg?: unknown, options?: { signal?: AbortSignal }) => Promise<[unknown, DataView[]]>;

/** An invoke that answers like the Python widget: a get_pattern reply (or an error reply). */
function kernel(patterns: Float32Array, nHeads: number, n: number, fail = false) {
  const calls: { name: string; msg: Record<string, number> }[] = [];
  const invoke: Invoke = async (name, msg) => {
    const m = msg as Record<string, number>;
    calls.push({ name, msg: m });
    if (fail) {
      return [{ reply: { ok: false, error: { type_name: "SiteIndexError", message: "head 9 is out of range" } }, buffer_paths: [] }, []];
    }
    const w = windowPayload(patterns, nHeads, n, m.prompt, m.layer, m.head, m.q0, Math.min(m.q1, n), m.k0, Math.min(m.k1, n));
    const data = w.values.data;
    return [{ reply: { ok: true, window: { ...w, values: { ...w.values, data: null } } }, buffer_paths: [["window", "values", "data"]] }, [data]];
  };
  return { invoke, calls };
}

const cleanups: (() => void)[] = [];

function mount(state: AttentionState, invoke: Invoke) {
  const model = new FakeModel<AttentionState>(state);
  const el = document.createElement("div");
  document.body.append(el);
  const cleanup = render({
    model: model as never,
    el,
    signal: new AbortController().signal,
    host: {} as never,
    experimental: { invoke: invoke as never },
  });
  let done = false;
  const once = () => {
    if (!done) (cleanup as () => void)();
    done = true;
  };
  cleanups.push(once);
  return { model, el, cleanup: once };
}

const q = <T extends Element>(el: Element, sel: string) => el.querySelector<T & HTMLElement>(sel)!;

beforeEach(() => {
  painted = [];
  vi.spyOn(HTMLCanvasElement.prototype, "getContext").mockImplementation(function (this: HTMLCanvasElement) {
    return fakeContext(this) as never;
  });
});
afterEach(() => {
  cleanups.splice(0).forEach((f) => f());
  vi.restoreAllMocks();
  document.body.replaceChildren();
});

describe("attention view (anywidget entry)", () => {
  it("renders a canvas cell per head with stable hooks and signals its first paint", async () => {
    const { state } = makeState(3, 4, 20);
    const { el } = mount(state, kernel(new Float32Array(), 4, 20).invoke);
    const cells = el.querySelectorAll<HTMLCanvasElement>('[data-testid="iw-cell"]');
    expect(cells.length).toBe(12);
    expect(cells[5].dataset.layer).toBe("1");
    expect(cells[5].dataset.head).toBe("1");
    expect(cells[0].getAttribute("aria-selected")).toBe("true");
    for (const id of ["iw-grid", "iw-detail-canvas", "iw-tooltip", "iw-scores", "iw-minimap", "iw-status"]) {
      expect(el.querySelector(`[data-testid="${id}"]`), id).not.toBeNull();
    }
    expect(el.querySelectorAll('[data-testid="iw-scores"] [data-score]').length).toBe(2);
    const root = q(el, '[data-testid="iw-attention"]');
    const ready = new Promise<number>((resolve) => root.addEventListener(READY_EVENT, (e) => resolve((e as CustomEvent).detail.ms)));
    await tick(30);
    expect(root.dataset.ready).toBe("1");
    expect(await ready).toBeGreaterThanOrEqual(0);
  });

  it("draws each thumbnail through the theme's colour table", () => {
    const { state } = makeState(2, 2, 8, { thumb: 8 });
    const { el } = mount(state, kernel(new Float32Array(), 2, 8).invoke);
    const cell = q<HTMLCanvasElement>(el, '[data-testid="iw-cell"][data-layer="1"][data-head="1"]');
    const img = painted.filter((p) => p.canvas === cell).at(-1)!;
    expect([img.width, img.height]).toEqual([8, 8]);
    const lut = heatLut(readTheme(el));
    const bytes = new Uint8Array(state.prompts[0].thumbs.data.buffer);
    const start = 3 * 64; // layer 1, head 1
    for (let i = 0; i < 64; i++) {
      expect(img.data[4 * i]).toBe(lut[4 * bytes[start + i]]);
      expect(img.data[4 * i + 2]).toBe(lut[4 * bytes[start + i] + 2]);
    }
  });

  it("clicking a cell selects that head, writes layer/head back to Python and fetches its window", async () => {
    const { state, patterns } = makeState(3, 4, 20);
    const k = kernel(patterns, 4, 20);
    const { el, model } = mount(state, k.invoke);
    q(el, '[data-testid="iw-cell"][data-layer="2"][data-head="3"]').dispatchEvent(new MouseEvent("click", { bubbles: true }));
    expect(model.sets).toEqual([["layer", 2], ["head", 3]]);
    expect(model.saves).toBe(1);
    expect(q(el, '[data-testid="iw-cell"][data-layer="2"][data-head="3"]').getAttribute("aria-selected")).toBe("true");
    expect(q(el, '[data-testid="iw-cell"][data-layer="0"][data-head="0"]').getAttribute("aria-selected")).toBe("false");
    await tick();
    const call = k.calls.find((c) => c.msg.layer === 2 && c.msg.head === 3 && c.msg.max_size == null);
    expect(call?.name).toBe("get_pattern");
    expect(call?.msg).toMatchObject({ prompt: 0, q0: 0, q1: 16, k0: 0, k1: 16 });
    const canvas = q<HTMLCanvasElement>(el, '[data-testid="iw-detail-canvas"]');
    expect(canvas.dataset.layer).toBe("2");
    expect(canvas.dataset.exact).toBe("1");
  });

  it("follows selection changes made in Python", () => {
    const { state, patterns } = makeState(3, 4, 20);
    const { el, model } = mount(state, kernel(patterns, 4, 20).invoke);
    model.set("layer", 1);
    expect(q(el, '[data-testid="iw-cell"][data-layer="1"][data-head="0"]').getAttribute("aria-selected")).toBe("true");
    expect(q(el, '[data-testid="iw-attention"]').dataset.layer).toBe("1");
    expect(model.saves).toBe(0); // nothing echoed back
  });

  it("hovering the detail view shows source and destination tokens and the weight", () => {
    const { state } = makeState(2, 2, 20, { windowSize: 16 });
    const { el } = mount(state, kernel(new Float32Array(), 2, 20).invoke);
    const canvas = q<HTMLCanvasElement>(el, '[data-testid="iw-detail-canvas"]');
    const L = detailLayout(Math.max(320, 760 - 150 - 90), 16, 16);
    // layer 0 head 0 attends 1 token back: query 5 -> key 4 has weight 0.75
    const x = L.left + 4.5 * L.cell;
    const y = L.top + 5.5 * L.cell;
    expect(cellAt(L, x, y)).toEqual({ row: 5, col: 4 });
    canvas.dispatchEvent(new MouseEvent("mousemove", { clientX: x, clientY: y, bubbles: true }));
    const tip = q(el, '[data-testid="iw-tooltip"]');
    expect(tip.dataset.visible).toBe("1");
    expect(q(tip, '[data-role="dest"]').textContent).toBe("t5");
    expect(q(tip, '[data-role="src"]').textContent).toBe("t4");
    expect(q(tip, '[data-role="weight"]').textContent).toBe("0.750");
    expect(tip.textContent).toContain("(q=5)");
    expect(tip.textContent).toContain("(k=4)");
    canvas.dispatchEvent(new MouseEvent("mouseleave"));
    expect(tip.dataset.visible).toBe("0");
  });

  it("scrolling asks the kernel for the visible window only", async () => {
    const { state, patterns } = makeState(1, 2, 100, { windowSize: 16, thumb: 8 });
    const k = kernel(patterns, 2, 100);
    const { el } = mount(state, k.invoke);
    const canvas = q<HTMLCanvasElement>(el, '[data-testid="iw-detail-canvas"]');
    canvas.dispatchEvent(new WheelEvent("wheel", { deltaY: 100, cancelable: true }));
    await tick();
    const windows = k.calls.filter((c) => c.msg.max_size == null);
    expect(windows.at(-1)?.msg).toMatchObject({ q0: 2, q1: 18, k0: 2, k1: 18 });
    const minimap = k.calls.find((c) => c.msg.max_size != null);
    expect(minimap?.msg).toMatchObject({ q0: 0, q1: 100, max_size: 100, precision: "uint8" });
    expect(canvas.dataset.q0).toBe("2");
  });

  it("shows a typed error reply from the kernel", async () => {
    const { state } = makeState(2, 2, 20);
    const { el } = mount(state, kernel(new Float32Array(), 2, 20, true).invoke);
    q(el, '[data-testid="iw-cell"][data-layer="1"][data-head="1"]').dispatchEvent(new MouseEvent("click", { bubbles: true }));
    await tick();
    const status = q(el, '[data-testid="iw-status"]');
    expect(status.dataset.kind).toBe("error");
    expect(status.textContent).toContain("SiteIndexError: head 9 is out of range");
  });

  it("keyboard arrows move the selection in the grid", () => {
    const { state } = makeState(3, 3, 10);
    const { el, model } = mount(state, kernel(new Float32Array(), 3, 10).invoke);
    const grid = q(el, '[data-testid="iw-grid"]');
    grid.dispatchEvent(new KeyboardEvent("keydown", { key: "ArrowDown" }));
    grid.dispatchEvent(new KeyboardEvent("keydown", { key: "ArrowRight" }));
    expect([model.get("layer"), model.get("head")]).toEqual([1, 1]);
  });

  it("cleans up its DOM and model listeners", () => {
    const { state } = makeState(2, 2, 10);
    const { el, model, cleanup } = mount(state, kernel(new Float32Array(), 2, 10).invoke);
    expect(model.listenerCount()).toBeGreaterThan(0);
    cleanup();
    expect(model.listenerCount()).toBe(0);
    expect(el.querySelector('[data-testid="iw-attention"]')).toBeNull();
  });
});

describe("static pages", () => {
  function staticElement(withPatterns: boolean): HTMLElement {
    const el = document.createElement("div");
    el.dataset.iwStatic = "attention";
    el.innerHTML = `<div class="iw-fallback">fallback</div><script type="application/json" class="iw-static-data"></script>`;
    el.querySelector("script")!.textContent = staticDocumentJson(2, 3, 12, withPatterns);
    document.body.append(el);
    return el;
  }

  it("mounts embedded data and serves every head's window from the page", async () => {
    const el = staticElement(true);
    mountAll(document);
    expect(el.dataset.iwMounted).toBe("1");
    expect(el.querySelector(".iw-fallback")).toBeNull();
    expect(q(el, '[data-testid="iw-attention"]').dataset.mode).toBe("static");
    q(el, '[data-testid="iw-cell"][data-layer="1"][data-head="2"]').dispatchEvent(new MouseEvent("click", { bubbles: true }));
    await tick();
    expect(q<HTMLCanvasElement>(el, '[data-testid="iw-detail-canvas"]').dataset.exact).toBe("1");
    mountAll(document); // idempotent
    expect(el.querySelectorAll('[data-testid="iw-attention"]').length).toBe(1);
  });

  it("without embedded patterns says what is missing", async () => {
    const el = staticElement(false);
    mountAll(document);
    q(el, '[data-testid="iw-cell"][data-layer="1"][data-head="2"]').dispatchEvent(new MouseEvent("click", { bubbles: true }));
    await tick();
    expect(q(el, '[data-testid="iw-status"]').textContent).toContain("only the thumbnails");
  });
});

describe("theme", () => {
  it("uses JupyterLab variables with fallbacks and a dark scheme outside JupyterLab", () => {
    expect(CSS).toContain("var(--jp-layout-color0, #ffffff)");
    expect(CSS).toContain("@media (prefers-color-scheme: dark)");
  });

  it("parses colours and builds the table from background to heat", () => {
    expect(parseColor("#fff")).toEqual([255, 255, 255]);
    expect(parseColor("rgb(17, 17, 17)")).toEqual([17, 17, 17]);
    expect(parseColor("rgba(0, 0, 0, 0.5)")).toEqual([0, 0, 0]);
    expect(parseColor("var(--x)")).toBeNull();
    const lut = heatLut({ bg: [0, 0, 0], heat: [255, 100, 50] });
    expect(Array.from(lut.slice(0, 4))).toEqual([0, 0, 0, 255]);
    expect(Array.from(lut.slice(255 * 4, 256 * 4))).toEqual([255, 100, 50, 255]);
  });

  it("reads a dark background as a dark theme", () => {
    const el = document.createElement("div");
    el.style.setProperty("--iw-bg", "#111111");
    document.body.append(el);
    const theme = readTheme(el);
    if (getComputedStyle(el).getPropertyValue("--iw-bg").trim() === "") return; // this DOM does not compute custom properties
    expect(theme.dark).toBe(true);
  });
});
