// anywidget entry: binds the widget model (traits, `get_pattern` command) to the pure view.
import type { AnyModel, RenderProps } from "@anywidget/types";
import type { AttentionState } from "../schema/generated";
import { decodeState, decodeWindow } from "./model";
import { invokeSource } from "./source";
import { type Selection, createStore } from "./store";
import { renderAttention } from "./view";

const SELECTION_KEYS = ["prompt", "layer", "head"] as const;

/** Mount the view for `model` into `el`; returns a cleanup. Exported for tests. */
export function bindAttention(
  model: AnyModel<AttentionState>,
  el: HTMLElement,
  invoke: RenderProps<AttentionState>["experimental"]["invoke"],
): () => void {
  const selection = createStore<Selection>({
    prompt: model.get("prompt"),
    layer: model.get("layer"),
    head: model.get("head"),
  });
  // view -> Python
  const unsubscribe = selection.subscribe((s) => {
    let changed = false;
    for (const key of SELECTION_KEYS) {
      if (model.get(key) !== s[key]) {
        model.set(key, s[key]);
        changed = true;
      }
    }
    if (changed) model.save_changes();
  });
  // Python -> view
  const fromModel = () => selection.set({ prompt: model.get("prompt"), layer: model.get("layer"), head: model.get("head") });
  for (const key of SELECTION_KEYS) model.on(`change:${key}`, fromModel);

  const win = model.get("window");
  const cleanupView = renderAttention(el, {
    data: decodeState({
      model_name: model.get("model_name"),
      n_layers: model.get("n_layers"),
      n_heads: model.get("n_heads"),
      prompts: model.get("prompts"),
    }),
    selection,
    source: invokeSource(invoke),
    windowSize: model.get("window_size"),
    initialWindow: win ? decodeWindow(win) : null,
    mode: "live",
  });
  return () => {
    for (const key of SELECTION_KEYS) model.off(`change:${key}`, fromModel);
    unsubscribe();
    cleanupView();
  };
}

export function render({ model, el, experimental }: RenderProps<AttentionState>): () => void {
  let cleanup = bindAttention(model, el, experimental.invoke);
  // new data from Python (a re-run with other prompts): render again
  const remount = () => {
    cleanup();
    cleanup = bindAttention(model, el, experimental.invoke);
  };
  const keys = ["prompts", "window_size", "n_layers", "n_heads"] as const;
  for (const key of keys) model.on(`change:${key}`, remount);
  return () => {
    for (const key of keys) model.off(`change:${key}`, remount);
    cleanup();
  };
}
