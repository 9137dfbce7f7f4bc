// Static pages: the superposition widget embedded as StaticSuperposition JSON, drawn without a kernel (the
// sparsity slider still works: every sparsity's numbers are embedded).
import { createStore } from "../attention/store";
import type { StaticSuperposition } from "../schema/generated";
import { embedded } from "./features-embed";
import { decodeSuperposition, renderSuperposition } from "./superposition";

export function mountSuperpositionStatic(container: HTMLElement): () => void {
  const doc = embedded(container, "superposition") as StaticSuperposition;
  const store = createStore({ selected: doc.state.selected });
  return renderSuperposition(container, { data: decodeSuperposition(doc.state.data), store, onSelect: null });
}
