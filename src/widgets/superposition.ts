// anywidget entry of the superposition widget (interp_widget/widgets/static/superposition.js): binds the
// widget model (`data`, `selected`) to the pure superposition view. In a static page it mounts every
// embedded `[data-iw-static="superposition"]`.
import type { AnyModel, RenderProps } from "@anywidget/types";
import { createStore } from "../attention/store";
import type { SuperpositionState } from "../schema/generated";
import { mountAll } from "../views/features-embed";
import { decodeSuperposition, renderSuperposition } from "../views/superposition";
import { mountSuperpositionStatic } from "../views/superposition-static";

export { renderSuperposition } from "../views/superposition";
export { mountSuperpositionStatic } from "../views/superposition-static";

/** Mount the view for `model` into `el`; returns a cleanup. Exported for tests. */
export function bindSuperposition(model: AnyModel<SuperpositionState>, el: HTMLElement): () => void {
  const store = createStore({ selected: model.get("selected") });
  const onSelected = () => store.set({ selected: model.get("selected") });
  model.on("change:selected", onSelected);
  const cleanup = renderSuperposition(el, {
    data: decodeSuperposition(model.get("data")),
    store,
    onSelect: (i) => {
      model.set("selected", i);
      model.save_changes();
    },
  });
  return () => {
    model.off("change:selected", onSelected);
    cleanup();
  };
}

function render({ model, el }: RenderProps<SuperpositionState>): () => void {
  return bindSuperposition(model, el);
}

export default { render };

if (typeof document !== "undefined") {
  const mount = () => mountAll(document, "superposition", mountSuperpositionStatic);
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mount);
  else mount();
}
