// @vitest-environment jsdom
// DOM behaviour of the patching view through its anywidget entry, with a fake model, a fake kernel
// (invoke) and a fake 2D context that records what is painted: form <-> traits, Run / progress /
// Cancel, errors, the heatmap (cells, colours, tooltip, slices), a head's attention, static pages.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { HeatmapData, PatchingState, RunStatus } from "../schema/generated";
import { FakeModel, f32, makeState, windowPayload } from "../attention/testdata";
import { readTheme } from "../attention/theme";
import { bindPatching, unpackCommand } from "../widgets/patching";
import { heatmapLut } from "./heatmap";
import { colorIndex, colorRange, decodeHeatmap, gridOf } from "./heatmap-math";
import { mountAllHeatmaps } from "./patching-static";

interface Rect { x: number; y: number; w: number; h: number; style: string }
let rects: Rect[] = [];

function fakeContext(canvas: HTMLCanvasElement): unknown {
  const noop = () => {};
  const ctx = {
    canvas, fillStyle: "", strokeStyle: "", lineWidth: 1, font: "", textAlign: "", textBaseline: "",
    setTransform: noop, fillText: noop, save: noop, restore: noop, translate: noop, rotate: noop,
    strokeRect: noop, drawImage: noop, clearRect: noop, imageSmoothingEnabled: true,
    fillRect: (x: number, y: number, w: number, h: number) => {
      if (canvas.dataset.testid === "iw-heatmap-canvas") rects.push({ x, y, w, h, style: ctx.fillStyle });
    },
    createImageData: (w: number, h: number) => ({ width: w, height: h, data: new Uint8ClampedArray(w * h * 4) }),
    putImageData: noop,
  };
  return ctx;
}

const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));
const q = <T extends Element>(el: Element, sel: string) => el.querySelector<T & HTMLElement>(sel)!;

const IDLE: RunStatus = { state: "idle", run_id: 0, done: 0, total: 0, unit: "runs", elapsed_s: 0, error_type: "", message: "" };

/** heads result [2 layers, 3 heads]: value 10 l + h, clean 20, corrupted 0. */
function headsResult(scale = 1): HeatmapData {
  return {
    title: "activation patching · heads · logit diff", kind: "activation_patching", sites: "heads", metric: "logit diff",
    axes: ["layer", "head"], labels: [["0", "1"], ["0", "1", "2"]],
    values: f32([0, 1, 2, 10, 11, 12].map((v) => v * scale), [2, 3]), rows: 0, cols: 1, slice: [0, 0],
    clean_metric: 20, corrupted_metric: 0, normalized: false, scale: "diverging", center: 0, note: "denoise",
  };
}

function residResult(): HeatmapData {
  return {
    ...headsResult(), title: "resid", sites: "resid_pre", axes: ["layer", "pos"], labels: [["0", "1"], ["0:<bos>", "1:a", "2:b", "3:c"]],
    values: f32([0, 1, 2, 3, 4, 5, 6, 7], [2, 4]),
  };
}

function state(over: Partial<PatchingState> = {}): PatchingState {
  return {
    model_name: "toy", n_layers: 2, n_heads: 3, has_mlp: false, controls: true,
    clean: "abcabc", corrupted: "abcabd", metric: "logit_diff", answer: "c", wrong: "d", component: "heads",
    receiver: "logits", normalize: false, result: null, status: IDLE, ...over,
  };
}

type Reply = { reply: Record<string, unknown>; buffer_paths: (string | number)[][] };

/** A fake kernel: records calls, answers start_run / cancel_run / open_head / get_pattern. */
function kernel(opts: { fail?: { type_name: string; message: string } } = {}) {
  const calls: { name: string; msg: Record<string, unknown> }[] = [];
  const { state: attn, patterns } = makeState(2, 3, 6, { windowSize: 6 });
  const invoke = async (name: string, msg?: unknown): Promise<[Reply, DataView[]]> => {
    const m = (msg ?? {}) as Record<string, unknown>;
    calls.push({ name, msg: m });
    if (opts.fail && name === "start_run") return [{ reply: { ok: false, error: opts.fail }, buffer_paths: [] }, []];
    if (name === "start_run") return [{ reply: { ok: true, run_id: 7, n_prompts: 1, n_tokens: 7 }, buffer_paths: [] }, []];
    if (name === "cancel_run") return [{ reply: { ok: true, run_id: m.run_id as number, cancelled: true }, buffer_paths: [] }, []];
    if (name === "open_head") {
      const prompt = attn.prompts[0];
      const w0 = windowPayload(patterns, 3, 6, 0, m.layer as number, m.head as number, 0, 6, 0, 6);
      const w1 = windowPayload(patterns, 3, 6, 1, m.layer as number, m.head as number, 0, 6, 0, 6);
      const reply = {
        ok: true, model_name: "toy", n_layers: 2, n_heads: 3, layer: m.layer, head: m.head, names: ["clean", "corrupted"],
        prompts: [{ ...prompt, thumbs: { ...prompt.thumbs, data: null }, scores: [] }, { ...prompt, thumbs: { ...prompt.thumbs, data: null }, scores: [] }],
        windows: [{ ...w0, values: { ...w0.values, data: null } }, { ...w1, values: { ...w1.values, data: null } }],
      };
      return [{ reply, buffer_paths: [["prompts", 0, "thumbs", "data"], ["prompts", 1, "thumbs", "data"],
        ["windows", 0, "values", "data"], ["windows", 1, "values", "data"]] },
      [prompt.thumbs.data, prompt.thumbs.data, w0.values.data, w1.values.data]];
    }
    if (name === "get_pattern") {
      const w = windowPayload(patterns, 3, 6, m.prompt as number, m.layer as number, m.head as number,
        m.q0 as number, Math.min(m.q1 as number, 6), m.k0 as number, Math.min(m.k1 as number, 6));
      return [{ reply: { ok: true, window: { ...w, values: { ...w.values, data: null } } }, buffer_paths: [["window", "values", "data"]] }, [w.values.data]];
    }
    return [{ reply: { ok: false, error: { type_name: "LookupError", message: `unknown command ${name}` } }, buffer_paths: [] }, []];
  };
  return { invoke, calls };
}

const cleanups: (() => void)[] = [];

function mount(s: PatchingState, k = kernel()) {
  const model = new FakeModel<PatchingState>(s);
  const el = document.createElement("div");
  document.body.append(el);
  const cleanup = bindPatching(model as never, el, k.invoke as never);
  cleanups.push(cleanup);
  return { model, el, k, root: q(el, '[data-testid="iw-patching"]') };
}

function status(over: Partial<RunStatus>): RunStatus {
  return { ...IDLE, run_id: 7, ...over };
}

/** Move over / click the centre of heatmap cell (row, col). */
function atCell(el: HTMLElement, type: "mousemove" | "click", row: number, col: number): void {
  const canvas = q<HTMLCanvasElement>(el, '[data-testid="iw-heatmap-canvas"]');
  const cell = Number(canvas.dataset.cell);
  const x = Number(canvas.dataset.left) + (col + 0.5) * cell;
  const y = Number(canvas.dataset.top) + (row + 0.5) * cell;
  canvas.dispatchEvent(new MouseEvent(type, { clientX: x, clientY: y, bubbles: true }));
}

beforeEach(() => {
  rects = [];
  vi.spyOn(HTMLCanvasElement.prototype, "getContext").mockImplementation(function (this: HTMLCanvasElement) {
    return fakeContext(this) as never;
  });
});
afterEach(() => {
  cleanups.splice(0).forEach((f) => f());
  vi.restoreAllMocks();
  vi.useRealTimers();
  document.body.replaceChildren();
});

describe("patching view: controls", () => {
  it("shows the traits in the form and hides fields the metric / component do not use", () => {
    const { el, model } = mount(state());
    expect(q<HTMLTextAreaElement>(el, '[data-testid="iw-clean"]').value).toBe("abcabc");
    expect(q<HTMLInputElement>(el, '[data-testid="iw-answer"]').value).toBe("c");
    expect(q<HTMLSelectElement>(el, '[data-testid="iw-component"]').value).toBe("heads");
    expect(q(el, '[data-field="receiver"]').dataset.hidden).toBe("1");
    expect(q<HTMLOptionElement>(el, 'option[value="mlp"]').disabled).toBe(true); // attention-only model
    expect(q(el, '[data-testid="iw-heatmap-empty"]').style.display).toBe("");
    model.set("metric", "kl");
    model.set("component", "path");
    expect(q(el, '[data-field="answer"]').dataset.hidden).toBe("1");
    expect(q(el, '[data-field="wrong"]').dataset.hidden).toBe("1");
    expect(q(el, '[data-field="receiver"]').dataset.hidden).toBe("0");
    expect(q<HTMLSelectElement>(el, '[data-testid="iw-metric"]').value).toBe("kl");
  });

  it("writes what is typed back to the traits (debounced save)", async () => {
    vi.useFakeTimers();
    const { el, model } = mount(state());
    const clean = q<HTMLTextAreaElement>(el, '[data-testid="iw-clean"]');
    clean.value = "xyzxyz";
    clean.dispatchEvent(new Event("input"));
    const comp = q<HTMLSelectElement>(el, '[data-testid="iw-component"]');
    comp.value = "resid";
    comp.dispatchEvent(new Event("change"));
    expect(model.get("clean")).toBe("xyzxyz");
    expect(model.get("component")).toBe("resid");
    expect(model.saves).toBe(0);
    vi.advanceTimersByTime(400);
    expect(model.saves).toBe(1);
  });

  it("Run sends the form as start_run; pushed progress drives the bar; the result replaces the heatmap", async () => {
    const { el, model, k, root } = mount(state({ result: residResult() }));
    const heatmap = q(el, '[data-testid="iw-heatmap"]');
    expect(heatmap.dataset.version).toBe("1");
    q<HTMLTextAreaElement>(el, '[data-testid="iw-corrupted"]').value = "abcabz";
    q(el, '[data-testid="iw-run"]').click();
    await tick();
    expect(k.calls.at(-1)).toEqual({ name: "start_run", msg: {
      clean: "abcabc", corrupted: "abcabz", metric: "logit_diff", answer: "c", wrong: "d", component: "heads",
      receiver: "logits", normalize: false,
    } });
    model.emit("msg:custom", { kind: "iw-status", status: status({ state: "running", done: 3, total: 12, elapsed_s: 0.5 }) });
    const progress = q<HTMLProgressElement>(el, '[data-testid="iw-progress"]');
    expect([progress.value, progress.max]).toEqual([3, 12]);
    expect(q(el, '[data-testid="iw-run-status"]').textContent).toBe("running: 3 / 12 patched runs · 0.5 s");
    expect(root.dataset.state).toBe("running");
    expect(q<HTMLButtonElement>(el, '[data-testid="iw-run"]').disabled).toBe(true);
    expect(q<HTMLButtonElement>(el, '[data-testid="iw-cancel"]').disabled).toBe(false);
    model.emit("msg:custom", { kind: "anywidget-command-response", id: "x" }); // not ours: ignored
    model.set("result", headsResult());
    model.set("status", status({ state: "done", done: 12, total: 12, elapsed_s: 0.9 }));
    // a late progress message of the same run does not bring "running" back
    model.emit("msg:custom", { kind: "iw-status", status: status({ state: "running", done: 11, total: 12 }) });
    expect(root.dataset.state).toBe("done");
    expect(heatmap.dataset.version).toBe("2");
    expect([heatmap.dataset.rows, heatmap.dataset.cols]).toEqual(["2", "3"]);
    expect(q(el, '[data-testid="iw-heatmap-title"]').textContent).toContain("heads");
    expect(q<HTMLButtonElement>(el, '[data-testid="iw-run"]').disabled).toBe(false);
    expect(q<HTMLButtonElement>(el, '[data-testid="iw-cancel"]').disabled).toBe(true);
  });

  it("Cancel sends cancel_run for the running run", async () => {
    const { el, model, k } = mount(state());
    model.set("status", status({ state: "running", done: 1, total: 9 }));
    q(el, '[data-testid="iw-cancel"]').click();
    await tick();
    expect(k.calls.at(-1)).toEqual({ name: "cancel_run", msg: { run_id: 7 } });
    model.set("status", status({ state: "cancelled", done: 2, total: 9, elapsed_s: 1 }));
    expect(q(el, '[data-testid="iw-run-status"]').textContent).toContain("cancelled after 2 / 9");
    model.set("status", status({ run_id: 8, state: "running", done: 250, total: 1000, unit: "permille", elapsed_s: 1 }));
    expect(q(el, '[data-testid="iw-run-status"]').textContent).toBe("running: 25% · 1.0 s"); // path patching
  });

  it("shows a refused run's typed error, and a failed run's error from its status", async () => {
    const fail = { type_name: "InputMismatchError", message: "clean has 7 tokens, corrupted has 8" };
    const { el, model } = mount(state(), kernel({ fail }));
    q(el, '[data-testid="iw-run"]').click();
    await tick();
    const error = q(el, '[data-testid="iw-error"]');
    expect(error.textContent).toBe("InputMismatchError: clean has 7 tokens, corrupted has 8");
    expect(q<HTMLButtonElement>(el, '[data-testid="iw-run"]').disabled).toBe(false);
    model.set("status", status({ run_id: 8, state: "error", error_type: "RuntimeError", message: "boom" }));
    expect(error.textContent).toBe("RuntimeError: boom");
  });

  it("hides the controls of a result shown without a model", () => {
    const { el } = mount(state({ controls: false, result: headsResult() }));
    expect(q(el, '[data-testid="iw-controls"]').style.display).toBe("none");
  });
});

describe("patching view: heatmap", () => {
  it("paints every cell with the theme's diverging colour of its value", () => {
    const { el } = mount(state({ result: headsResult(-1) }));
    const h = decodeHeatmap(headsResult(-1));
    const grid = gridOf(h);
    const range = colorRange(grid.values, "diverging", 0);
    const lut = heatmapLut(readTheme(q(el, '[data-testid="iw-patching"]')), "diverging");
    const canvas = q<HTMLCanvasElement>(el, '[data-testid="iw-heatmap-canvas"]');
    const cell = Number(canvas.dataset.cell);
    const cells = rects.filter((r) => r.w === cell && r.h === cell);
    const last = cells.slice(-6);
    expect(last.length).toBe(6);
    last.forEach((r, i) => {
      const j = 4 * colorIndex(grid.values[i], range);
      expect(r.style).toBe(`rgb(${lut[j]}, ${lut[j + 1]}, ${lut[j + 2]})`);
    });
    expect(q(el, '[data-testid="iw-heatmap"] [data-role="range"]').textContent).toBe("-12 · 0 (unpatched) · 12");
  });

  it("hover shows the cell's labels, value, normalised value and clean / corrupted metrics", () => {
    const { el } = mount(state({ result: headsResult() }));
    atCell(el, "mousemove", 1, 2);
    const tip = q(el, '[data-testid="iw-tooltip"]');
    expect(tip.dataset.visible).toBe("1");
    expect(q(tip, '[data-role="cell"]').textContent).toBe("L1H2");
    expect(q(tip, '[data-role="value"]').textContent).toBe("12");
    expect(q(tip, '[data-role="normalized"]').textContent).toBe("0.6");
    expect(q(tip, '[data-role="clean"]').textContent).toBe("20");
    expect(q(tip, '[data-role="corrupted"]').textContent).toBe("0");
    expect(tip.textContent).toContain("layer L1, head H2");
  });

  it("slices the extra axis of a by-position result with a selector", () => {
    const values: number[] = [];
    for (let l = 0; l < 2; l++) for (let p = 0; p < 3; p++) for (let h = 0; h < 2; h++) values.push(100 * l + 10 * p + h);
    const { el } = mount(state({ result: {
      ...headsResult(), axes: ["layer", "pos", "head"], labels: [["0", "1"], ["0:<bos>", "1:a", "2:b"], ["0", "1"]],
      values: f32(values, [2, 3, 2]), rows: 0, cols: 2, slice: [0, 2, 0],
    } }));
    const select = q<HTMLSelectElement>(el, '[data-testid="iw-heatmap-slice"][data-axis="pos"]');
    expect(select.value).toBe("2");
    atCell(el, "mousemove", 1, 1);
    expect(q(el, '[data-role="value"]').textContent).toBe("121");
    select.value = "0";
    select.dispatchEvent(new Event("change"));
    expect(q(el, '[data-testid="iw-heatmap"]').dataset.slice).toBe("0,0,0");
    atCell(el, "mousemove", 1, 1);
    expect(q(el, '[data-role="value"]').textContent).toBe("101");
  });

  it("clicking a head opens its attention on the clean and corrupted prompt (windows from the kernel)", async () => {
    const { el, k } = mount(state({ result: headsResult() }));
    atCell(el, "click", 1, 2);
    await tick(20);
    expect(k.calls.find((c) => c.name === "open_head")?.msg).toEqual({ layer: 1, head: 2, window_size: 48 });
    const panel = q(el, '[data-testid="iw-head-panel"]');
    expect([panel.dataset.layer, panel.dataset.head]).toEqual(["1", "2"]);
    const sides = panel.querySelectorAll<HTMLElement>('[data-testid="iw-head-side"]');
    expect(Array.from(sides, (s) => s.dataset.name)).toEqual(["clean", "corrupted"]);
    for (const side of sides) {
      const c = q<HTMLCanvasElement>(side, '[data-testid="iw-detail-canvas"]');
      expect([c.dataset.layer, c.dataset.head, c.dataset.exact]).toEqual(["1", "2", "1"]);
    }
    expect(q(panel, '[data-testid="iw-head-title"]').textContent).toContain("L1H2");
    q(panel, '[data-testid="iw-head-close"]').click();
    expect(panel.style.display).toBe("none");
  });

  it("clicking a cell that is not a head does nothing", async () => {
    const { el, k } = mount(state({ result: residResult() }));
    atCell(el, "click", 1, 2);
    await tick();
    expect(k.calls.length).toBe(0);
  });
});

describe("command replies and static pages", () => {
  it("unpacks replies with buffers and throws typed errors", () => {
    const data = new DataView(new Float32Array([1, 2]).buffer);
    const ok = unpackCommand<{ window: { values: { data: DataView } } }>(
      { reply: { ok: true, window: { values: { data: null } } }, buffer_paths: [["window", "values", "data"]] }, [data]);
    expect(ok.window.values.data.byteLength).toBe(8);
    expect(() => unpackCommand({ reply: { ok: false, error: { type_name: "SiteIndexError", message: "head 9" } }, buffer_paths: [] }, []))
      .toThrow("SiteIndexError: head 9");
    expect(() => unpackCommand("nonsense", [])).toThrow(/malformed/);
  });

  it("mounts a heatmap embedded in a static page, without controls", () => {
    const r = headsResult();
    const b64 = btoa(String.fromCharCode(...new Uint8Array(r.values.data.buffer)));
    const doc = { kind: "heatmap", version: 1, state: { ...state({ result: { ...r, values: { ...r.values, data: b64 as never } } }) } };
    document.body.innerHTML = `<div class="iw-static" data-iw-static="heatmap"><div class="iw-fallback">img</div>`
      + `<script type="application/json" class="iw-static-data">${JSON.stringify(doc)}</script></div>`
      + `<div data-iw-static="heatmap"><script type="application/json" class="iw-static-data">{"kind":"other","version":1}</script></div>`;
    mountAllHeatmaps(document);
    const [good, bad] = Array.from(document.querySelectorAll<HTMLElement>("[data-iw-static]"));
    expect(good.dataset.iwMounted).toBe("1");
    expect(good.querySelector(".iw-fallback")).toBeNull();
    const root = q(good, '[data-testid="iw-patching"]');
    expect(root.dataset.mode).toBe("static");
    expect(q(good, '[data-testid="iw-controls"]').style.display).toBe("none");
    expect(q(good, '[data-testid="iw-heatmap"]').dataset.cols).toBe("3");
    expect(q(good, '[data-testid="iw-summary"]').textContent).toContain("abcabc");
    atCell(good, "click", 0, 1);
    expect(q(good, '[data-testid="iw-head-status"]').textContent).toContain("need the kernel");
    expect(bad.dataset.iwMounted).toBe("error");
    expect(bad.textContent).toContain('kind "other"');
  });
});
