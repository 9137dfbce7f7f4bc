// Overview grid: one small canvas per (layer, head), drawn from the uint8 thumbnails.
import { type ViewContext, formatWeight, h, headLabel, paintValues } from "./dom";
import { gridLayout } from "./math";
import { lutIndex } from "./theme";

export interface GridPart {
  el: HTMLElement;
  /** (re)draw every thumbnail of the selected prompt */
  draw(): void;
  /** resize cells to the available width */
  layout(): void;
  /** mark the selected cell */
  mark(): void;
}

export function createGrid(ctx: ViewContext): GridPart {
  const { data, selection } = ctx;
  const { nLayers, nHeads } = data;
  const el = h("div", {
    class: "iw-grid",
    "data-testid": "iw-grid",
    role: "grid",
    tabindex: 0,
    "aria-label": `attention heads: ${nLayers} layers x ${nHeads} heads; arrow keys move the selection`,
  });
  const labelEvery = nHeads > 16 ? Math.ceil(nHeads / 8) : 1;
  el.append(h("div", { class: "iw-grid-label" }));
  for (let hd = 0; hd < nHeads; hd++) {
    el.append(h("div", { class: "iw-grid-label", "data-head-label": hd }, hd % labelEvery === 0 ? `H${hd}` : ""));
  }
  const cells: HTMLCanvasElement[] = [];
  for (let layer = 0; layer < nLayers; layer++) {
    el.append(h("div", { class: "iw-grid-label", "data-layer-label": layer }, `L${layer}`));
    for (let head = 0; head < nHeads; head++) {
      const cell = h("canvas", {
        class: "iw-cell",
        "data-testid": "iw-cell",
        "data-layer": layer,
        "data-head": head,
        role: "gridcell",
        "aria-label": `layer ${layer}, head ${head}`,
        "aria-selected": "false",
      });
      cells.push(cell);
      el.append(cell);
    }
  }

  const cellOf = (target: EventTarget | null): { layer: number; head: number } | null => {
    const cell = target instanceof Element ? target.closest<HTMLElement>(".iw-cell") : null;
    if (!cell || !el.contains(cell)) return null;
    return { layer: Number(cell.dataset.layer), head: Number(cell.dataset.head) };
  };

  el.addEventListener("click", (ev) => {
    const c = cellOf(ev.target);
    if (c) selection.set(c);
  });
  el.addEventListener("mousemove", (ev) => {
    const c = cellOf(ev.target);
    if (!c) return ctx.tooltip.hide();
    const prompt = data.prompts[selection.get().prompt];
    const parts: (Node | string)[] = [h("b", {}, `${headLabel(c.layer, c.head)} `)];
    for (const s of prompt.scores) {
      parts.push(` · ${s.label} ${formatWeight(s.values[c.layer * nHeads + c.head])}`);
    }
    ctx.tooltip.show(parts, ev.clientX, ev.clientY);
  });
  el.addEventListener("mouseleave", () => ctx.tooltip.hide());
  el.addEventListener("keydown", (ev) => {
    const s = selection.get();
    const moves: Record<string, [number, number]> = {
      ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1],
    };
    const m = moves[ev.key];
    if (!m) return;
    ev.preventDefault();
    selection.set({
      layer: Math.max(0, Math.min(nLayers - 1, s.layer + m[0])),
      head: Math.max(0, Math.min(nHeads - 1, s.head + m[1])),
    });
  });

  return {
    el,
    draw() {
      const p = data.prompts[selection.get().prompt];
      const { size, bytes, scale, offset } = p.thumbs;
      const lut = ctx.lut();
      const toIndex = (b: number) => lutIndex(b * scale + offset);
      cells.forEach((cell, i) => {
        paintValues(cell, bytes.subarray(i * size * size, (i + 1) * size * size), size, size, lut, toIndex);
      });
    },
    layout() {
      const g = gridLayout(ctx.width(), nHeads);
      el.style.gridTemplateColumns = `${g.labelWidth}px repeat(${nHeads}, ${g.cell}px)`;
      el.style.gap = `${g.gap + 1}px`;
      for (const cell of cells) {
        cell.style.width = `${g.cell}px`;
        cell.style.height = `${g.cell}px`;
      }
    },
    mark() {
      const { layer, head } = selection.get();
      cells.forEach((cell, i) => {
        cell.setAttribute("aria-selected", i === layer * nHeads + head ? "true" : "false");
      });
    },
  };
}
