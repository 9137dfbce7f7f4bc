// @vitest-environment jsdom
// The steering view through its anywidget entry, with a fake model and kernel: the form <-> traits
// (strength slider), Generate / progress / Cancel, base and steered side by side with differing tokens
// marked, error replies, and the static page.
import { describe, expect, it } from "vitest";
import type { RunStatus, SteeringState, TensorPayload } from "../schema/generated";
import { FakeModel } from "../attention/testdata";
import type { Invoke } from "../attention/source";
import { bindSteering } from "../widgets/steering";
import { progressText, steeringViewState } from "./steering";
import { mountSteeringStatic } from "./steering-static";

const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));
const IDLE: RunStatus = { state: "idle", run_id: 0, done: 0, total: 0, unit: "runs", elapsed_s: 0, error_type: "", message: "" };

function i32(values: number[], shape: number[]): TensorPayload {
  return { dtype: "int32", shape, data: new DataView(Int32Array.from(values).buffer) };
}

function state(): SteeringState {
  return {
    model_name: "m", sites: ["blocks.0.hook_resid_post", "blocks.0.mlp.hook_post"],
    directions: [{ id: "named:v", label: "v" }, { id: "feature:3", label: "feature 3" }],
    prompt: "the", site: "blocks.0.hook_resid_post", direction: "named:v", op: "add", strength: 4,
    strength_min: -10, strength_max: 10, positions: "all", max_new_tokens: 3, n_samples: 1, greedy: false, seed: 0,
    controls: true, result: null, status: IDLE,
  };
}

const RESULT = {
  prompt_tokens: ["<bos>", "the"], base: [[" cat", " sat", " down"]], steered: [[" cat", " ran", " away"]],
  base_ids: i32([5, 6, 7], [1, 3]), steered_ids: i32([5, 8, 9], [1, 3]), base_text: [" cat sat down"],
  steered_text: [" cat ran away"], site: "blocks.0.hook_resid_post", op: "add" as const, strength: 4, direction: "v",
  positions: "all",
};

describe("steering view", () => {
  it("decodes a generation and words its progress", () => {
    const v = steeringViewState({ ...state(), result: RESULT });
    expect(v.result!.baseIds).toEqual([[5, 6, 7]]);
    expect(v.result!.steeredIds).toEqual([[5, 8, 9]]);
    expect(progressText({ ...IDLE, state: "running", done: 2, total: 5 })).toMatch(/2 \/ 5 tokens/);
  });

  it("drives generate, shows progress and both generations, cancels, shows errors", async () => {
    const el = document.createElement("div");
    document.body.append(el);
    const model = new FakeModel(state());
    const calls: [string, unknown][] = [];
    let fail = false;
    const invoke = (async (name: string, msg: unknown) => {
      calls.push([name, msg]);
      if (fail) return [{ reply: { ok: false, error: { type_name: "InputMismatchError", message: "the direction has width 3" } }, buffer_paths: [] }, []];
      if (name === "start_generate") return [{ reply: { ok: true, run_id: 1, n_prompt_tokens: 2 }, buffer_paths: [] }, []];
      return [{ reply: { ok: true, run_id: 1, cancelled: true }, buffer_paths: [] }, []];
    }) as Invoke;
    const cleanup = bindSteering(model as never, el, invoke);
    const root = el.querySelector<HTMLElement>("[data-testid='iw-steering']")!;
    const slider = el.querySelector<HTMLInputElement>("[data-testid='iw-st-strength']")!;
    expect(slider.value).toBe("4");
    slider.value = "-6";
    slider.dispatchEvent(new Event("input"));
    expect(model.get("strength")).toBe(-6);
    expect(el.querySelector<HTMLInputElement>("[data-testid='iw-st-strength-value']")!.value).toBe("-6");
    el.querySelector<HTMLSelectElement>("[data-testid='iw-st-direction']")!.value = "feature:3";
    el.querySelector<HTMLSelectElement>("[data-testid='iw-st-direction']")!.dispatchEvent(new Event("change"));
    expect(model.get("direction")).toBe("feature:3");

    el.querySelector<HTMLButtonElement>("[data-testid='iw-st-generate']")!.click();
    await tick();
    expect(calls[0][0]).toBe("start_generate");
    expect(calls[0][1]).toMatchObject({ prompt: "the", direction: "feature:3", strength: -6, op: "add", max_new_tokens: 3 });
    model.emit("msg:custom", { kind: "iw-status", status: { ...IDLE, state: "running", run_id: 1, done: 1, total: 3 } });
    expect(root.dataset.state).toBe("running");
    expect(el.querySelector("[data-testid='iw-st-status']")!.textContent).toMatch(/1 \/ 3 tokens/);
    el.querySelector<HTMLButtonElement>("[data-testid='iw-st-cancel']")!.click();
    await tick();
    expect(calls[1]).toEqual(["cancel_run", { run_id: 1 }]);

    model.set("result", RESULT);
    model.set("status", { ...IDLE, state: "done", run_id: 1, done: 3, total: 3 });
    expect(root.dataset.state).toBe("done");
    const base = el.querySelector<HTMLElement>("[data-testid='iw-st-base']")!;
    const steered = el.querySelector<HTMLElement>("[data-testid='iw-st-steered']")!;
    expect(base.dataset.text).toBe(" cat sat down");
    expect(steered.dataset.text).toBe(" cat ran away");
    const marks = Array.from(steered.querySelectorAll<HTMLElement>("[data-gen='1']")).map((s) => s.dataset.diff ?? "0");
    expect(marks).toEqual(["0", "1", "1"]);
    expect(el.querySelector<HTMLElement>("[data-testid='iw-st-results']")!.dataset.differs).toBe("true");

    fail = true;
    el.querySelector<HTMLButtonElement>("[data-testid='iw-st-generate']")!.click();
    await tick();
    expect(el.querySelector("[data-testid='iw-st-error']")!.textContent).toBe("InputMismatchError: the direction has width 3");
    cleanup();
    expect(model.listenerCount()).toBe(0);
    el.remove();
  });

  it("renders a static page without controls", () => {
    const host = document.createElement("div");
    host.dataset.iwStatic = "steering";
    const b64 = (p: TensorPayload) => {
      let s = "";
      for (const byte of new Uint8Array(p.data.buffer)) s += String.fromCharCode(byte);
      return { ...p, data: btoa(s) };
    };
    const doc = { kind: "steering", version: 1, state: { ...state(), result: { ...RESULT, base_ids: b64(RESULT.base_ids), steered_ids: b64(RESULT.steered_ids) } } };
    const script = document.createElement("script");
    script.className = "iw-static-data";
    script.type = "application/json";
    script.textContent = JSON.stringify(doc);
    host.append(script);
    document.body.append(host);
    const cleanup = mountSteeringStatic(host);
    expect(host.querySelector<HTMLElement>("[data-testid='iw-steering']")!.dataset.mode).toBe("static");
    expect(host.querySelector<HTMLElement>("[data-testid='iw-st-steered']")!.dataset.text).toBe(" cat ran away");
    cleanup();
    host.remove();
  });
});
