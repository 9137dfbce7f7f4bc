// The image grid: a layer selector, one thumbnail per channel (or per image of a feature-vis / dataset
// result) with its label, and the clicked image enlarged. Layers are fetched when first selected.
// A pure function of (el, props) returning a cleanup; the kernel is behind `actions` (null: static page).
import type { ImageGroup, StaticVisionGrid, VisionGridState } from "../schema/generated";
import { h } from "../attention/dom";
import { type Store, createStore } from "../attention/store";
import { ensureVisionStyle, errorText, imageCanvas, paintImage, readStatic } from "./vision-common";
import { type ImageStack, decodeImages, fmt, thumbScale } from "./vision-math";

export interface GridViewState {
  kind: VisionGridState["kind"];
  title: string;
  note: string;
  groups: ImageGroup[];
  group: number;
  selected: number;
}

export interface GridActions {
  /** a group's thumbnails (the kernel's `get_group`) */
  getGroup(group: number): Promise<ImageStack>;
  /** one image at full size (`get_image`) */
  getImage(group: number, index: number): Promise<ImageStack>;
  /** the user chose a group / enlarged an image (keep Python in sync) */
  edit(patch: Partial<Pick<GridViewState, "group" | "selected">>): void;
}

export interface GridViewProps {
  state: Store<GridViewState>;
  /** thumbnails known at mount time, by group (the state's first group, or a static page's groups) */
  cache: Map<number, ImageStack>;
  actions: GridActions | null;
  /** thumbnail size in CSS px */
  thumbPx?: number;
}

export function renderVisionGrid(el: HTMLElement, props: GridViewProps): () => void {
  const { state, cache, actions } = props;
  ensureVisionStyle(el.ownerDocument);
  const s0 = state.get();
  const root = h("div", { class: "iw-root iw-vision", "data-testid": "iw-vision-grid", "data-mode": actions ? "live" : "static", "data-kind": s0.kind });
  const title = h("div", { class: "iw-title" }, s0.title);
  const note = h("div", { class: "iw-muted", "data-testid": "iw-vision-note" }, s0.note);
  const select = h("select", { "data-testid": "iw-vision-layer", "aria-label": "layer" });
  s0.groups.forEach((g, i) => select.append(h("option", { value: i }, `${g.name} (${g.labels.length})`)));
  const status = h("span", { class: "iw-muted", "data-testid": "iw-vision-status" });
  const controls = h("div", { class: "iw-controls" }, ...(s0.groups.length > 1 ? [h("label", { class: "iw-muted" }, "layer ", select)] : []), status);
  const error = h("div", { class: "iw-error", "data-testid": "iw-vision-error", role: "alert" });
  const grid = h("div", { class: "iw-vgrid", "data-testid": "iw-vision-thumbs", role: "listbox" });
  const bigCanvas = h("canvas", { "data-testid": "iw-vision-enlarged" });
  const bigLabel = h("div", { class: "iw-title", "data-testid": "iw-vision-enlarged-label" });
  const bigInfo = h("div", { class: "iw-muted" });
  const close = h("button", { class: "iw-vbtn", type: "button", "data-testid": "iw-vision-close" }, "close");
  const enlarged = h("div", { class: "iw-venlarged", "data-testid": "iw-vision-enlarged-panel", hidden: "" },
    bigCanvas, h("div", { class: "iw-panel" }, bigLabel, bigInfo, close));
  root.append(title, note, controls, error, enlarged, grid);
  el.append(root);

  let token = 0; // the latest group request (older replies are ignored)
  let imgToken = 0;

  function group(): ImageGroup {
    const s = state.get();
    return s.groups[s.group];
  }

  function showGrid(g: number, stack: ImageStack): void {
    const t0 = performance.now();
    const info = state.get().groups[g];
    const scale = thumbScale(stack.h, stack.w, props.thumbPx ?? 64);
    const cells: HTMLElement[] = [];
    for (let i = 0; i < stack.n; i++) {
      const label = info.labels[i] ?? String(i);
      const value = info.values?.[i];
      const text = value === undefined || value === null ? label : `${label} · ${fmt(value)}`;
      const cell = h("div", { class: "iw-vcell", role: "option", tabindex: 0, "data-index": i, title: text, "aria-selected": "false" },
        imageCanvas(stack, i, scale, { "data-testid": "iw-vision-thumb", "data-index": i }),
        h("span", { class: "iw-vcell-label" }, text));
      cells.push(cell);
    }
    grid.style.gridTemplateColumns = `repeat(auto-fill, minmax(${Math.max(40, Math.round(stack.w * scale))}px, 1fr))`;
    grid.replaceChildren(...cells);
    root.dataset.group = String(g);
    root.dataset.count = String(stack.n);
    status.textContent = `${stack.n} images of ${stack.h}×${stack.w} px shown`;
    markSelected();
    root.dataset.renderMs = (performance.now() - t0).toFixed(1); // the last grid's build time (benchmarks, tests)
  }

  async function loadGroup(g: number): Promise<void> {
    const mine = ++token;
    error.textContent = "";
    const known = cache.get(g);
    if (known) {
      showGrid(g, known);
      return;
    }
    if (!actions) {
      grid.replaceChildren();
      root.dataset.count = "0";
      status.textContent = `${state.get().groups[g].name} is not embedded in this snapshot (open the notebook with its kernel)`;
      return;
    }
    root.dataset.loading = "1";
    status.textContent = `loading ${state.get().groups[g].name}…`;
    try {
      const stack = await actions.getGroup(g);
      cache.set(g, stack);
      if (mine === token) showGrid(g, stack);
    } catch (err) {
      if (mine === token) {
        error.textContent = errorText(err);
        status.textContent = "";
      }
    } finally {
      if (mine === token) delete root.dataset.loading;
    }
  }

  function markSelected(): void {
    const sel = state.get().selected;
    for (const c of Array.from(grid.children) as HTMLElement[]) c.setAttribute("aria-selected", String(Number(c.dataset.index) === sel));
  }

  async function showEnlarged(): Promise<void> {
    const { group: g, selected: i } = state.get();
    markSelected();
    const thumbs = cache.get(g);
    if (i < 0 || !thumbs || i >= thumbs.n) {
      enlarged.hidden = true;
      delete root.dataset.enlarged;
      return;
    }
    const info = group();
    const mine = ++imgToken;
    enlarged.hidden = false;
    root.dataset.enlarged = String(i);
    bigLabel.textContent = `${info.name} · ${info.labels[i] ?? i}`;
    const value = info.values?.[i];
    bigInfo.textContent = value === undefined || value === null ? "" : `value ${fmt(value)}`;
    const side = 256;
    paintImage(bigCanvas, thumbs, i, side / Math.max(thumbs.h, thumbs.w)); // at once, then the full-size image
    bigCanvas.dataset.full = "0";
    if (!actions || (info.full[0] === thumbs.h && info.full[1] === thumbs.w)) {
      bigCanvas.dataset.full = "1";
      return;
    }
    try {
      const img = await actions.getImage(g, i);
      if (mine !== imgToken) return;
      paintImage(bigCanvas, img, 0, Math.max(1, side / Math.max(img.h, img.w)));
      bigCanvas.dataset.full = "1";
    } catch (err) {
      if (mine === imgToken) error.textContent = errorText(err);
    }
  }

  function choose(i: number): void {
    const next = state.get().selected === i ? -1 : i;
    state.set({ selected: next });
    actions?.edit({ selected: next });
  }

  grid.addEventListener("click", (ev) => {
    const cell = (ev.target as HTMLElement).closest<HTMLElement>(".iw-vcell");
    if (cell) choose(Number(cell.dataset.index));
  });
  grid.addEventListener("keydown", (ev) => {
    const cell = (ev.target as HTMLElement).closest<HTMLElement>(".iw-vcell");
    if (cell && (ev.key === "Enter" || ev.key === " ")) {
      ev.preventDefault();
      choose(Number(cell.dataset.index));
    }
  });
  close.addEventListener("click", () => {
    state.set({ selected: -1 });
    actions?.edit({ selected: -1 });
  });
  select.addEventListener("change", () => {
    const g = Number(select.value);
    state.set({ group: g, selected: -1 });
    actions?.edit({ group: g, selected: -1 });
  });

  const unsubscribe = state.subscribe((s, prev) => {
    if (s.group !== prev.group) {
      select.value = String(s.group);
      void loadGroup(s.group).then(() => showEnlarged());
    } else if (s.selected !== prev.selected) {
      void showEnlarged();
    }
  });
  select.value = String(s0.group);
  void loadGroup(s0.group).then(() => showEnlarged());
  return () => {
    unsubscribe();
    root.remove();
  };
}

/** The view state of synced / embedded grid state. */
export function gridViewState(s: Pick<VisionGridState, "kind" | "title" | "note" | "groups" | "group" | "selected">): GridViewState {
  return { kind: s.kind, title: s.title, note: s.note, groups: s.groups, group: s.group, selected: s.selected };
}

/** Render the grid embedded in a static page's `[data-iw-static="vision_grid"]` element. */
export function mountGridStatic(container: HTMLElement): () => void {
  const doc = readStatic<StaticVisionGrid>(container, "vision_grid");
  const cache = new Map<number, ImageStack>();
  doc.groups.forEach((p, i) => {
    if (p) cache.set(i, decodeImages(p));
  });
  return renderVisionGrid(container, { state: createStore(gridViewState(doc.state)), cache, actions: null });
}
