// @vitest-environment jsdom
// The vision views: image stacks and tuning-curve math, the image grid (lazy layers, enlarging, errors)
// and the tuning plot (Observable Plot in jsdom: points, toggles, hover tooltip, click -> detail) through
// their anywidget entries with a fake model and a fake kernel, and static pages.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { TensorPayload, TuningState, VisionGridState } from "../schema/generated";
import { FakeModel, f32 } from "../attention/testdata";
import { bindTuning, mountTuningStatic } from "../widgets/tuning";
import { bindVisionGrid, mountGridStatic } from "../widgets/vision_grid";
import {
  curveRows, decodeCurves, decodeImages, gridColumns, nearestRow, peaks, rgba, thumbScale, unitChannel, unitInterval, yDomain,
} from "./vision-math";

const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));
const q = (el: Element, sel: string) => el.querySelector<HTMLElement>(sel)!;
const qa = (el: Element, sel: string) => Array.from(el.querySelectorAll<HTMLElement>(sel));

/** uint8 RGB images [n, h, w, 3]: pixel (i, y, x) = (i, y, x) so every byte says where it came from. */
function images(n: number, h: number, w: number): TensorPayload {
  const bytes = new Uint8Array(n * h * w * 3);
  for (let i = 0; i < n; i++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const k = ((i * h + y) * w + x) * 3;
    bytes[k] = i;
    bytes[k + 1] = y;
    bytes[k + 2] = x;
  }
  return { dtype: "uint8", shape: [n, h, w, 3], data: new DataView(bytes.buffer) };
}

type Reply = { reply: Record<string, unknown>; buffer_paths: (string | number)[][] };
const fail = (type_name: string, message: string): [Reply, DataView[]] => [{ reply: { ok: false, error: { type_name, message } }, buffer_paths: [] }, []];

/** what was painted into each canvas (jsdom has no 2D context): the last putImageData's bytes, fillRect colours */
const painted = new WeakMap<HTMLCanvasElement, { image: Uint8ClampedArray | null; fills: string[] }>();

beforeEach(() => {
  vi.spyOn(HTMLCanvasElement.prototype, "getContext").mockImplementation(function (this: HTMLCanvasElement) {
    const canvas = this;
    const rec = { image: null as Uint8ClampedArray | null, fills: [] as string[] };
    painted.set(canvas, rec);
    const noop = () => {};
    const ctx = {
      canvas, fillStyle: "", strokeStyle: "", lineWidth: 1, setTransform: noop, strokeRect: noop,
      fillRect: () => rec.fills.push(ctx.fillStyle),
      createImageData: (w: number, h: number) => ({ width: w, height: h, data: new Uint8ClampedArray(w * h * 4) }),
      putImageData: (img: { data: Uint8ClampedArray }) => { rec.image = img.data; },
    };
    return ctx as never;
  });
});

afterEach(() => {
  vi.restoreAllMocks();
  document.body.replaceChildren();
});

describe("vision math", () => {
  it("decodes image stacks and converts an image to RGBA", () => {
    const s = decodeImages(images(3, 2, 4));
    expect([s.n, s.h, s.w]).toEqual([3, 2, 4]);
    const px = rgba(s, 2);
    expect(px.length).toBe(2 * 4 * 4);
    expect(Array.from(px.slice(4 * 5, 4 * 6))).toEqual([2, 1, 1, 255]); // image 2, y 1, x 1
    expect(() => rgba(s, 3)).toThrow(/out of range/);
    expect(() => decodeImages(f32([1, 2], [2]))).toThrow(/\[n, h, w, 3\]/);
  });

  it("scales thumbnails by whole factors and fits grid columns", () => {
    expect(thumbScale(16, 16, 64)).toBe(4);
    expect(thumbScale(20, 10, 64)).toBe(3);
    expect(thumbScale(128, 128, 64)).toBe(0.5);
    expect(gridColumns(300, 64, 6, 100)).toBe(4);
    expect(gridColumns(300, 64, 6, 2)).toBe(2);
    expect(gridColumns(10, 64, 6, 5)).toBe(1);
  });

  it("turns curves into rows sorted by the parameter, with toggles, normalisation and peaks", () => {
    // values out of order: 90, 0, 45; unit a peaks at 45, unit b at 90
    const c = decodeCurves(f32([90, 0, 45], [3]), f32([1, 0, 4, 6, -2, 3], [2, 3]), ["a", "b"]);
    const rows = curveRows(c, [true, true]);
    expect(rows.map((r) => [r.unit, r.x, r.y])).toEqual([["a", 0, 0], ["a", 45, 4], ["a", 90, 1], ["b", 0, -2], ["b", 45, 3], ["b", 90, 6]]);
    expect(curveRows(c, [false, true]).every((r) => r.unit === "b")).toBe(true);
    const norm = curveRows(c, [true, true], true);
    expect(norm.find((r) => r.unit === "b" && r.x === 90)!.y).toBeCloseTo(1);
    expect(norm.find((r) => r.unit === "b" && r.x === 0)!.raw).toBe(-2);
    expect(peaks(c)).toEqual([45, 90]);
    expect(yDomain([-2, 6])[0]).toBeLessThan(-2);
    expect(yDomain([0, 0])).toEqual([0, 0.05]);
    expect(() => decodeCurves(f32([1, 2], [2]), f32([1, 2, 3], [1, 3]), ["a"])).toThrow(/do not match/);
    const near = nearestRow(rows, (r) => [r.x, r.y * 10], 44, 41, 5);
    expect([near?.unit, near?.x]).toEqual(["a", 45]);
    expect(nearestRow(rows, (r) => [r.x, r.y * 10], 500, 500, 5)).toBeNull();
  });

  it("parses unit names and maps values to [0, 1]", () => {
    expect(unitChannel("layer1.0.conv2:17")).toEqual({ layer: "layer1.0.conv2", channel: 17 });
    expect(unitChannel("conv2:5@3,4")).toEqual({ layer: "conv2", channel: 5 });
    expect(unitChannel("mlp.out")).toBeNull();
    expect(Array.from(unitInterval([2, 4, Number.NaN, 3]))).toEqual([0, 1, 0, 0.5]);
  });
});

function gridState(): VisionGridState {
  return {
    kind: "layer_grid", title: "layer overview", note: "seed 0", group: 0, selected: -1,
    groups: [
      { name: "conv1", labels: ["ch 0", "ch 1", "ch 2"], values: null, thumb: [4, 4], full: [8, 8] },
      { name: "conv2", labels: ["ch 0", "ch 1", "ch 2", "ch 3", "ch 4"], values: null, thumb: [4, 4], full: [8, 8] },
    ],
    images: { group: 0, images: images(3, 4, 4) },
  };
}

describe("image grid", () => {
  it("shows the first layer, fetches another when selected (once), enlarges a click at full size", async () => {
    const model = new FakeModel(gridState());
    const calls: [string, Record<string, number>][] = [];
    const invoke = async (name: string, msg?: unknown) => {
      const m = msg as Record<string, number>;
      calls.push([name, m]);
      if (name === "get_group") return [{ reply: { ok: true, group: m.group, images: { dtype: "uint8", shape: [5, 4, 4, 3], data: null } }, buffer_paths: [["images", "data"]] }, [images(5, 4, 4).data]] as [Reply, DataView[]];
      if (name === "get_image") return [{ reply: { ok: true, group: m.group, index: m.index, label: "ch 1", image: { dtype: "uint8", shape: [1, 8, 8, 3], data: null } }, buffer_paths: [["image", "data"]] }, [images(1, 8, 8).data]] as [Reply, DataView[]];
      return fail("LookupError", "unknown");
    };
    const el = document.createElement("div");
    document.body.append(el);
    const cleanup = bindVisionGrid(model as never, el, invoke as never);
    const root = q(el, '[data-testid="iw-vision-grid"]');
    await tick();
    expect(root.dataset.count).toBe("3");
    expect(qa(root, '[data-testid="iw-vision-thumb"]')).toHaveLength(3);
    expect(qa(root, ".iw-vcell-label").map((e) => e.textContent)).toEqual(["ch 0", "ch 1", "ch 2"]);
    expect(calls).toEqual([]);
    // thumbnail 2 holds image 2: pixel (y 3, x 1) is (2, 3, 1)
    const thumb2 = qa(root, '[data-testid="iw-vision-thumb"]')[2] as HTMLCanvasElement;
    expect([thumb2.width, thumb2.height, thumb2.style.width]).toEqual([4, 4, "64px"]);
    expect(Array.from(painted.get(thumb2)!.image!.slice(4 * 13, 4 * 14))).toEqual([2, 3, 1, 255]);

    const select = q(root, '[data-testid="iw-vision-layer"]') as HTMLSelectElement;
    select.value = "1";
    select.dispatchEvent(new Event("change"));
    await tick();
    expect(calls).toEqual([["get_group", { group: 1 }]]);
    expect(qa(root, '[data-testid="iw-vision-thumb"]')).toHaveLength(5);
    expect(model.state.group).toBe(1);
    expect(model.saves).toBeGreaterThan(0);
    select.value = "0";
    select.dispatchEvent(new Event("change"));
    select.value = "1";
    select.dispatchEvent(new Event("change"));
    await tick();
    expect(calls).toHaveLength(1); // both layers cached now

    qa(root, ".iw-vcell")[1].click();
    await tick();
    expect(model.state.selected).toBe(1);
    expect(calls[1]).toEqual(["get_image", { group: 1, index: 1 }]);
    const panel = q(root, '[data-testid="iw-vision-enlarged-panel"]');
    expect(panel.hidden).toBe(false);
    const big = q(root, '[data-testid="iw-vision-enlarged"]') as HTMLCanvasElement;
    expect(big.dataset.full).toBe("1");
    expect([big.width, big.height]).toEqual([8, 8]); // the full-size image replaced the thumbnail
    expect(q(root, '[data-testid="iw-vision-enlarged-label"]').textContent).toBe("conv2 · ch 1");
    expect(qa(root, '.iw-vcell[aria-selected="true"]').map((c) => c.dataset.index)).toEqual(["1"]);
    q(root, '[data-testid="iw-vision-close"]').click();
    expect(panel.hidden).toBe(true);
    expect(model.state.selected).toBe(-1);

    // Python changes the layer: the view follows
    model.set("group", 0);
    await tick();
    expect(select.value).toBe("0");
    expect(root.dataset.count).toBe("3");
    cleanup();
    expect(el.children).toHaveLength(0);
  });

  it("shows the kernel's error when a layer cannot be fetched", async () => {
    const model = new FakeModel(gridState());
    const invoke = async () => fail("SiteIndexError", "layer 1 is out of range");
    const el = document.createElement("div");
    bindVisionGrid(model as never, el, invoke as never);
    const select = q(el, '[data-testid="iw-vision-layer"]') as HTMLSelectElement;
    select.value = "1";
    select.dispatchEvent(new Event("change"));
    await tick();
    expect(q(el, '[data-testid="iw-vision-error"]').textContent).toBe("SiteIndexError: layer 1 is out of range");
  });
});

function tuningState(over: Partial<TuningState> = {}): TuningState {
  // 2 units x 4 orientations (0, 45, 90, 135): unit a peaks at 45, unit b at 135
  return {
    title: "tuning: orientation", param: "orientation", unit_of_param: "degrees", values: f32([0, 45, 90, 135], [4]),
    units: ["conv1:0", "conv1:3"], activations: f32([0.1, 1.0, 0.2, 0.0, 0.0, 0.3, 0.5, 2.0], [2, 4]),
    stimuli: images(4, 6, 6), prompts: [], visible: [true, true], selected: -1, has_detail: true, note: "", ...over,
  };
}

function dots(root: Element): { cx: number; cy: number }[] {
  return qa(root, '[data-testid="iw-tuning-svg"] circle').map((c) => ({ cx: Number(c.getAttribute("cx")), cy: Number(c.getAttribute("cy")) }));
}

function hover(root: Element, x: number, y: number, type = "mousemove"): void {
  q(root, '[data-testid="iw-tuning-plot"]').dispatchEvent(new MouseEvent(type, { clientX: x, clientY: y, bubbles: true }));
}

describe("tuning view", () => {
  it("draws one point per unit and stimulus, toggles units, hovers a point with its stimulus", () => {
    const model = new FakeModel(tuningState());
    const el = document.createElement("div");
    document.body.append(el);
    bindTuning(model as never, el, (async () => fail("X", "y")) as never);
    const root = q(el, '[data-testid="iw-tuning"]');
    expect(root.dataset.points).toBe("8");
    const pts = dots(root);
    expect(pts).toHaveLength(8);
    // unit b's peak (135 degrees, 2.0) is the rightmost and highest point
    const top = pts.reduce((a, b) => (b.cy < a.cy ? b : a));
    expect(top.cx).toBe(Math.max(...pts.map((p) => p.cx)));

    hover(root, top.cx, top.cy);
    const tip = q(root, '[data-testid="iw-tooltip"]');
    expect(tip.dataset.visible).toBe("1");
    expect(tip.dataset.index).toBe("3");
    expect(q(tip, '[data-role="unit"]').textContent).toBe("conv1:3");
    expect(q(tip, '[data-role="param"]').textContent).toBe("135");
    expect(q(tip, '[data-role="value"]').textContent).toBe("2");
    const stim = q(tip, '[data-testid="iw-tooltip-stimulus"]');
    expect(stim.dataset.index).toBe("3");
    expect((stim as HTMLCanvasElement).width).toBe(6);
    expect(q(root, '[data-testid="iw-tuning-mark"]').dataset.visible).toBe("1");
    hover(root, top.cx + 500, top.cy + 500);
    expect(tip.dataset.visible).toBe("0");

    const boxes = qa(root, '[data-testid="iw-tuning-unit"]') as HTMLInputElement[];
    boxes[1].checked = false;
    boxes[1].dispatchEvent(new Event("change"));
    expect(model.state.visible).toEqual([true, false]);
    expect(root.dataset.points).toBe("4");
    expect(dots(root)).toHaveLength(4);
  });

  it("click: asks the kernel for the stimulus's activations and shows them; errors show in the view", async () => {
    const calls: [string, Record<string, number>][] = [];
    let failing = false;
    const invoke = async (name: string, msg?: unknown) => {
      calls.push([name, msg as Record<string, number>]);
      if (failing) return fail("InputMismatchError", "this tuning result has no per-stimulus activations to open");
      const m = msg as { index: number };
      return [{
        reply: {
          ok: true, index: m.index, value: 45, label: "orientation = 45 degrees", units: [1.0, 0.3],
          layers: [{ layer: "conv1", shape: [4, 5, 5], reduce: "max over 5x5 positions", values: { dtype: "float32", shape: [4], data: null },
            top: [0, 2, 3], top_values: [1.0, 0.6, 0.3], marked: [0, 3] }],
        },
        buffer_paths: [["layers", 0, "values", "data"]],
      }, [f32([1.0, 0.1, 0.6, 0.3], [4]).data]] as [Reply, DataView[]];
    };
    const model = new FakeModel(tuningState());
    const el = document.createElement("div");
    document.body.append(el);
    bindTuning(model as never, el, invoke as never);
    const root = q(el, '[data-testid="iw-tuning"]');
    const pts = dots(root);
    const p = pts[1]; // unit a at 45 degrees
    hover(root, p.cx, p.cy, "click");
    await tick();
    expect(calls).toEqual([["open_stimulus", { index: 1, top_k: 12 }]]);
    expect(model.state.selected).toBe(1);
    const detail = q(root, '[data-testid="iw-tuning-detail"]');
    expect(detail.hidden).toBe(false);
    expect(detail.dataset.index).toBe("1");
    const layer = q(detail, '[data-testid="iw-detail-layer"]');
    expect(layer.dataset.layer).toBe("conv1");
    const strip = q(layer, '[data-testid="iw-detail-strip"]') as HTMLCanvasElement;
    expect(strip.dataset.n).toBe("4");
    const fills = painted.get(strip)!.fills;
    expect(fills).toHaveLength(4);
    expect(fills[1]).not.toBe(fills[0]); // the weakest and the strongest channel differ
    expect(qa(layer, '[data-testid="iw-detail-bars"] rect')).toHaveLength(3);
    expect(qa(detail, '[data-testid="iw-detail-units"] [data-role="value"]').map((e) => e.textContent)).toEqual(["1", "0.3"]);
    expect(q(detail, '[data-testid="iw-detail-stimulus"]')).toBeTruthy();

    failing = true;
    hover(root, pts[2].cx, pts[2].cy, "click");
    await tick();
    expect(q(root, '[data-testid="iw-tuning-error"]').textContent).toMatch(/^InputMismatchError: this tuning result has no per-stimulus/);
    expect(detail.hidden).toBe(true);
  });

  it("shows the prompt of text stimuli in the tooltip", () => {
    const prompts = ["The number 1", "The number 2", "The number 3", "The number 4"];
    const model = new FakeModel(tuningState({ stimuli: null, prompts, param: "number", unit_of_param: "" }));
    const el = document.createElement("div");
    document.body.append(el);
    bindTuning(model as never, el, (async () => fail("X", "y")) as never);
    const root = q(el, '[data-testid="iw-tuning"]');
    const p = dots(root)[2];
    hover(root, p.cx, p.cy);
    expect(q(root, '[data-testid="iw-tooltip-prompt"]').textContent).toBe("The number 3");
    expect(root.querySelector('[data-testid="iw-tooltip-stimulus"]')).toBeNull();
  });
});

describe("static pages", () => {
  const b64 = (p: TensorPayload) => {
    const bytes = new Uint8Array(p.data.buffer, p.data.byteOffset, p.data.byteLength);
    return { ...p, data: btoa(String.fromCharCode(...bytes)) };
  };
  const embed = (kind: string, doc: unknown) => {
    const el = document.createElement("div");
    el.dataset.iwStatic = kind;
    el.innerHTML = `<div class="iw-fallback">img</div><script type="application/json" class="iw-static-data">${JSON.stringify(doc)}</script>`;
    document.body.append(el);
    return el;
  };

  it("renders an embedded grid; a layer left out says so", async () => {
    const s = gridState();
    const el = embed("vision_grid", { kind: "vision_grid", version: 1, state: { ...s, images: null }, groups: [b64(images(3, 4, 4)), null] });
    mountGridStatic(el);
    await tick();
    const root = q(el, '[data-testid="iw-vision-grid"]');
    expect(root.dataset.mode).toBe("static");
    expect(el.querySelector(".iw-fallback")).toBeNull();
    expect(qa(root, '[data-testid="iw-vision-thumb"]')).toHaveLength(3);
    const select = q(root, '[data-testid="iw-vision-layer"]') as HTMLSelectElement;
    select.value = "1";
    select.dispatchEvent(new Event("change"));
    await tick();
    expect(q(root, '[data-testid="iw-vision-status"]').textContent).toMatch(/not embedded/);
  });

  it("renders an embedded tuning plot that hovers without a kernel", () => {
    const s = tuningState();
    const el = embed("tuning", { kind: "tuning", version: 1, state: { ...s, values: b64(s.values), activations: b64(s.activations), stimuli: b64(s.stimuli!) } });
    mountTuningStatic(el);
    const root = q(el, '[data-testid="iw-tuning"]');
    expect(root.dataset.mode).toBe("static");
    expect(dots(root)).toHaveLength(8);
    const p = dots(root)[0];
    hover(root, p.cx, p.cy);
    expect(q(root, '[data-testid="iw-tooltip-stimulus"]')).toBeTruthy();
    hover(root, p.cx, p.cy, "click");
    expect(q(root, '[data-testid="iw-tuning-error"]').textContent).toMatch(/static snapshot/);
  });
});
