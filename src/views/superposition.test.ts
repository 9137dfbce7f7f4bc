// @vitest-environment jsdom
// The superposition view through its anywidget entry with a fake model: decoding, the slider <-> the
// `selected` trait, the heatmap / bars / projection for the selected sparsity, colours, and the static page.
import { describe, expect, it } from "vitest";
import { FakeModel } from "../attention/testdata";
import type { SuperpositionData, SuperpositionState, TensorPayload } from "../schema/generated";
import { bindSuperposition } from "../widgets/superposition";
import { barColor, decodeSuperposition, gramColor, sparsityLabel } from "./superposition";
import { mountSuperpositionStatic } from "./superposition-static";

function f32(values: number[], shape: number[]): TensorPayload {
  return { dtype: "float32", shape, data: new DataView(Float32Array.from(values).buffer) };
}

// two models of 3 features in 2 dims: dense (2 features kept, orthogonal), sparse (an antipodal pair + one)
const W = [
  [[1, 0, 0], [0, 1, 0]],
  [[1, -1, 0], [0, 0, 1]],
];
function gram(w: number[][]): number[] {
  const out: number[] = [];
  for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) out.push(w[0][i] * w[0][j] + w[1][i] * w[1][j]);
  return out;
}
function data(): SuperpositionData {
  return {
    title: "3 features in 2 hidden dimensions", n_features: 3, n_hidden: 2, feature_labels: ["f0", "f1", "f2"],
    represented_threshold: 0.5,
    models: [{ sparsity: 0, n_represented: 2, dims_per_feature: 1 }, { sparsity: 0.9, n_represented: 3, dims_per_feature: 0.667 }],
    gram: f32([...gram(W[0]), ...gram(W[1])], [2, 3, 3]),
    norms: f32([1, 1, 0, 1, 1, 1], [2, 3]),
    superposition: f32([0, 0, 0, 1, 1, 0], [2, 3]),
    projection: f32([1, 0, 0, 1, 0, 0, 1, 0, -1, 0, 0, 1], [2, 3, 2]),
  };
}

describe("superposition view", () => {
  it("decodes the payloads and words a sparsity", () => {
    const d = decodeSuperposition(data());
    expect([d.k, d.n, d.m]).toEqual([2, 3, 2]);
    expect(Array.from(d.gram.subarray(9, 18))).toEqual([1, -1, 0, -1, 1, 0, 0, 0, 1]);
    expect(sparsityLabel(d, 1)).toContain("3/3 features represented");
    expect(() => decodeSuperposition({ ...data(), norms: f32([1, 2, 3], [3]) })).toThrow(/expected shape/);
  });

  it("colours: bars dark without superposition, yellow with; gram diverging around 0", () => {
    expect(barColor(0)).toBe("rgb(40,40,60)");
    expect(barColor(5)).toBe("rgb(240,190,30)");
    const r = { lo: -1, hi: 1 };
    expect(gramColor(1, r)).toBe("rgb(33,102,172)");
    expect(gramColor(-1, r)).toBe("rgb(178,24,43)");
    expect(gramColor(Number.NaN, r)).toBe("rgb(200,200,200)");
  });

  it("binds the slider to the selected trait and redraws for the chosen sparsity", () => {
    const model = new FakeModel<SuperpositionState>({ data: data(), selected: 0 });
    const el = document.createElement("div");
    document.body.append(el);
    const cleanup = bindSuperposition(model as never, el);
    const slider = el.querySelector<HTMLInputElement>("[data-role='sparsity']")!;
    expect(slider.max).toBe("1");
    const cells = () => Array.from(el.querySelectorAll<SVGRectElement>("[data-role='gram'] rect"));
    expect(cells()).toHaveLength(9);
    const represented = () => Array.from(el.querySelectorAll<SVGRectElement>("[data-role='bars'] rect"))
      .map((r) => r.getAttribute("data-represented"));
    expect(represented()).toEqual(["1", "1", "0"]);
    // move the slider: the trait is set and saved, the view shows the sparse model (antipodal pair in red)
    slider.value = "1";
    slider.dispatchEvent(new Event("input"));
    expect(model.get("selected")).toBe(1);
    expect(model.saves).toBe(1);
    expect(represented()).toEqual(["1", "1", "1"]);
    expect(cells()[1].getAttribute("fill")).toBe("rgb(178,24,43)");
    expect(el.querySelector("[data-role='sparsity-label']")!.textContent).toContain("S = 0.9");
    // Python changes the trait: the view follows
    model.set("selected", 0);
    expect(el.querySelector<HTMLElement>(".iw-superposition")!.dataset.selected).toBe("0");
    expect(slider.value).toBe("0");
    expect(el.querySelectorAll("[data-role='projection'] g")).toHaveLength(3);
    cleanup();
    expect(model.listenerCount()).toBe(0);
    el.remove();
  });

  it("renders a static page whose slider still works", () => {
    const host = document.createElement("div");
    host.dataset.iwStatic = "superposition";
    const b64 = (p: TensorPayload) => {
      let s = "";
      for (const byte of new Uint8Array(p.data.buffer)) s += String.fromCharCode(byte);
      return { ...p, data: btoa(s) };
    };
    const d = data();
    const enc = { ...d, gram: b64(d.gram), norms: b64(d.norms), superposition: b64(d.superposition), projection: b64(d.projection) };
    const script = document.createElement("script");
    script.className = "iw-static-data";
    script.type = "application/json";
    script.textContent = JSON.stringify({ kind: "superposition", version: 1, state: { data: enc, selected: 1 } });
    host.append(script);
    document.body.append(host);
    const cleanup = mountSuperpositionStatic(host);
    expect(host.querySelector<HTMLElement>(".iw-superposition")!.dataset.selected).toBe("1");
    const slider = host.querySelector<HTMLInputElement>("[data-role='sparsity']")!;
    slider.value = "0";
    slider.dispatchEvent(new Event("input"));
    expect(host.querySelector<HTMLElement>(".iw-superposition")!.dataset.selected).toBe("0");
    cleanup();
    host.remove();
  });
});
