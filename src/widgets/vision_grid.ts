// anywidget entry of the image grid (interp_widget/widgets/static/vision_grid.js): binds the widget
// model (traits, the get_group / get_image commands) to the pure grid view. In a static page it
// mounts every embedded grid (`[data-iw-static="vision_grid"]`).
import type { AnyModel, RenderProps } from "@anywidget/types";
import type { GroupReply, ImageReply, VisionGridState } from "../schema/generated";
import type { Invoke } from "../attention/source";
import { createStore } from "../attention/store";
import { callCommand, mountAll, onDocumentReady } from "../views/vision-common";
import { gridViewState, mountGridStatic, renderVisionGrid } from "../views/vision-grid";
import { type ImageStack, decodeImages } from "../views/vision-math";

export { mountGridStatic, renderVisionGrid } from "../views/vision-grid";

/** Mount the grid for `model` into `el`; returns a cleanup. Exported for tests. */
export function bindVisionGrid(model: AnyModel<VisionGridState>, el: HTMLElement, invoke: Invoke): () => void {
  const read = () => gridViewState({
    kind: model.get("kind"), title: model.get("title"), note: model.get("note"), groups: model.get("groups"),
    group: model.get("group"), selected: model.get("selected"),
  });
  const cache = new Map<number, ImageStack>();
  const addImages = () => {
    const imgs = model.get("images");
    if (imgs) cache.set(imgs.group, decodeImages(imgs.images));
  };
  addImages();
  const state = createStore(read());
  const onChange = () => state.set({ group: model.get("group"), selected: model.get("selected") });
  model.on("change:images", addImages);
  model.on("change:group", onChange);
  model.on("change:selected", onChange);
  const cleanup = renderVisionGrid(el, {
    state,
    cache,
    actions: {
      getGroup: async (group) => decodeImages((await callCommand<GroupReply>(invoke, "get_group", { group })).images),
      getImage: async (group, index) => decodeImages((await callCommand<ImageReply>(invoke, "get_image", { group, index })).image),
      edit: (patch) => {
        for (const [k, v] of Object.entries(patch)) model.set(k as "group" | "selected", v as number);
        model.save_changes();
      },
    },
  });
  return () => {
    model.off("change:images", addImages);
    model.off("change:group", onChange);
    model.off("change:selected", onChange);
    cleanup();
  };
}

function render({ model, el, experimental }: RenderProps<VisionGridState>): () => void {
  return bindVisionGrid(model, el, experimental.invoke as Invoke);
}

export default { render };

onDocumentReady((doc) => mountAll(doc, "vision_grid", mountGridStatic));
