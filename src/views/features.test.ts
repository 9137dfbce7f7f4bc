// @vitest-environment jsdom
// The feature dashboard through its anywidget entry, with a fake model and a fake kernel: decoding,
// top examples with per-token highlighting, the histogram, links that select the other side, the
// prompt box, error replies, and the static page.
import { describe, expect, it } from "vitest";
import type { FeaturesState, TensorPayload, UnitPanel } from "../schema/generated";
import { FakeModel, f32 } from "../attention/testdata";
import type { Invoke } from "../attention/source";
import { bindFeatures } from "../widgets/features";
import { unpackResponse } from "./command";
import { decodePanel, drawnBars, intensity, maxAct } from "./features-model";
import { mountFeaturesStatic } from "./features-static";

const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));

function i32(values: number[], shape: number[]): TensorPayload {
  return { dtype: "int32", shape, data: new DataView(Int32Array.from(values).buffer) };
}

function panel(kind: "neuron" | "feature", index: number): UnitPanel {
  return {
    kind, index, site: "blocks.0.mlp.hook_post", title: `${kind} ${index}`, note: "2 top examples",
    top: [
      { tokens: ["a", " b", " c"], acts: f32([0, 2, 1], [3]), peak: 1, value: 2, row: 4 },
      { tokens: ["x", " y"], acts: f32([1, 0], [2]), peak: 0, value: 1, row: 7 },
    ],
    histogram: { counts: i32([5, 3, 1], [3]), edges: f32([0, 1, 2, 3], [4]), n: 20, n_nonpositive: 11 },
    promoted: [{ token: " up", value: 1.5 }], suppressed: [{ token: " down", value: -1.2 }],
    links: [{ kind: kind === "neuron" ? "feature" : "neuron", index: 3, weight: 0.8, label: "" },
      { kind: kind === "neuron" ? "feature" : "neuron", index: 5, weight: -0.4, label: "" }],
    links_title: "links",
  } as UnitPanel;
}

function state(): FeaturesState {
  return {
    model_name: "m", neuron_site: "blocks.0.mlp.hook_post", feature_site: "blocks.0.mlp.hook_post", n_neurons: 16,
    n_features: 32, kind: "feature", index: 0, prompt: "", panel: panel("feature", 0), prompt_acts: null, controls: true,
  };
}

function fakeKernel(): { invoke: Invoke; calls: [string, unknown][] } {
  const calls: [string, unknown][] = [];
  const invoke = (async (name: string, msg: unknown) => {
    calls.push([name, msg]);
    const m = msg as { kind: "neuron" | "feature"; index: number; text?: string };
    if (name === "select_unit") {
      if (m.index > 31) return [{ reply: { ok: false, error: { type_name: "SiteIndexError", message: "feature 99 is out of range" } }, buffer_paths: [] }, []];
      const p = panel(m.kind, m.index);
      return [{ reply: { ok: true, panel: p }, buffer_paths: [] }, []];
    }
    const acts = { kind: m.kind, index: m.index, text: m.text, tokens: ["<bos>", "a", " b"], acts: f32([0, 0.5, 3], [3]), links: [] };
    return [{ reply: { ok: true, acts }, buffer_paths: [] }, []];
  }) as Invoke;
  return { invoke, calls };
}

describe("feature dashboard", () => {
  it("decodes panels and scales highlights", () => {
    const p = decodePanel(panel("neuron", 2));
    expect(p.bars).toEqual([{ x0: 0, x1: 1, count: 5 }, { x0: 1, x1: 2, count: 3 }, { x0: 2, x1: 3, count: 1 }]);
    expect(Array.from(p.top[0].acts)).toEqual([0, 2, 1]);
    expect(maxAct([Number.NaN, -1, 2, 0.5])).toBe(2);
    expect(intensity(1, 2)).toBe(0.5);
    expect(intensity(-1, 2)).toBe(0);
    expect(intensity(5, 2)).toBe(1);
    const bad = { ...panel("neuron", 2), histogram: { ...panel("neuron", 2).histogram, edges: f32([0, 1], [2]) } };
    expect(() => decodePanel(bad)).toThrow(/3 bins but 2 edges/);
    // the zeros of a ReLU unit are left out of the first bar (and counted)
    expect(drawnBars(p.bars, 4)).toEqual({ bars: [{ x0: 0, x1: 1, count: 1 }, p.bars[1], p.bars[2]], hidden: 4 });
    expect(drawnBars([{ x0: -1, x1: 0, count: 5 }], 4).hidden).toBe(0);
  });

  it("shows examples, histogram and effects; links and the prompt box call the kernel", async () => {
    const el = document.createElement("div");
    document.body.append(el);
    const model = new FakeModel(state());
    const { invoke, calls } = fakeKernel();
    const cleanup = bindFeatures(model as never, el, invoke);
    const root = el.querySelector<HTMLElement>("[data-testid='iw-features']")!;
    expect(root.dataset.kind).toBe("feature");
    const examples = el.querySelectorAll("[data-testid='iw-fd-example']");
    expect(examples.length).toBe(2);
    const toks = examples[0].querySelectorAll<HTMLElement>(".iw-tok");
    expect(Array.from(toks).map((t) => t.textContent)).toEqual(["a", "\u00a0b", "\u00a0c"]);
    expect(toks[1].dataset.peak).toBe("1");
    expect(toks[1].style.background).toMatch(/rgba/); // the peak token is highlighted
    expect(toks[0].style.background).toBe(""); // zero activation: no highlight
    expect(el.querySelector("[data-testid='iw-fd-hist'] svg")).not.toBeNull();
    expect(el.querySelector("[data-testid='iw-fd-hist-note']")!.textContent).toBe("5 of 20 tokens (25.0%) at or below 0, not drawn");
    expect(el.querySelector("[data-testid='iw-fd-promoted']")!.textContent).toContain("up");
    expect(el.querySelector("[data-testid='iw-fd-suppressed']")!.textContent).toContain("down");

    // clicking a link opens that neuron
    el.querySelector<HTMLButtonElement>("[data-testid='iw-fd-links'] [data-index='3']")!.click();
    await tick();
    expect(calls[0]).toEqual(["select_unit", { kind: "neuron", index: 3 }]);
    expect(root.dataset.kind).toBe("neuron");
    expect(root.dataset.index).toBe("3");

    // the prompt box
    el.querySelector<HTMLTextAreaElement>("[data-testid='iw-fd-prompt']")!.value = "a b";
    el.querySelector<HTMLButtonElement>("[data-testid='iw-fd-run']")!.click();
    await tick();
    expect(calls[1]).toEqual(["get_activations", { kind: "neuron", index: 3, text: "a b" }]);
    const out = el.querySelector<HTMLElement>("[data-testid='iw-fd-prompt-acts']")!;
    expect(out.querySelectorAll(".iw-tok").length).toBe(3);
    expect(out.dataset.max).toBe("3.0000");

    // an error reply shows, naming the problem
    el.querySelector<HTMLSelectElement>("[data-testid='iw-fd-kind']")!.value = "feature";
    el.querySelector<HTMLInputElement>("[data-testid='iw-fd-index']")!.value = "99";
    el.querySelector<HTMLButtonElement>("[data-testid='iw-fd-show']")!.click();
    await tick();
    expect(el.querySelector("[data-testid='iw-fd-error']")!.textContent).toBe("SiteIndexError: feature 99 is out of range");
    expect(root.dataset.state).toBe("error");

    // a trait change from Python redraws
    model.set("panel", panel("feature", 7));
    expect(root.dataset.index).toBe("7");
    cleanup();
    expect(model.listenerCount()).toBe(0);
    el.remove();
  });

  it("refuses malformed responses", () => {
    expect(() => unpackResponse({ nope: 1 }, [])).toThrow(/malformed/);
    expect(() => unpackResponse({ reply: { ok: false, error: { type_name: "E", message: "m" } }, buffer_paths: [] }, []))
      .toThrow("E: m");
  });

  it("renders a static page without controls", () => {
    const host = document.createElement("div");
    host.dataset.iwStatic = "features";
    const s = state();
    const b64 = (p: TensorPayload) => {
      let str = "";
      for (const byte of new Uint8Array(p.data.buffer)) str += String.fromCharCode(byte);
      return { ...p, data: btoa(str) };
    };
    const p = panel("feature", 2);
    const doc = { kind: "features", version: 1, state: { ...s, panel: {
      ...p, top: p.top.map((e) => ({ ...e, acts: b64(e.acts) })),
      histogram: { ...p.histogram, counts: b64(p.histogram.counts), edges: b64(p.histogram.edges) } } } };
    const script = document.createElement("script");
    script.type = "application/json";
    script.className = "iw-static-data";
    script.textContent = JSON.stringify(doc);
    host.append(script);
    document.body.append(host);
    const cleanup = mountFeaturesStatic(host);
    const root = host.querySelector<HTMLElement>("[data-testid='iw-features']")!;
    expect(root.dataset.mode).toBe("static");
    expect(host.querySelectorAll("[data-testid='iw-fd-example']").length).toBe(2);
    expect(host.querySelector<HTMLTextAreaElement>("[data-testid='iw-fd-prompt']")!.disabled).toBe(true);
    cleanup();
    host.remove();
  });
});
