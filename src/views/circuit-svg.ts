// The circuit graph as one SVG element: layer bands, edges (a prefix of the sorted edges is shown; paths
// are made on first use and hidden, not removed, when pruned away), nodes with q/k/v ports on heads.
// Colours are SVG attributes (not CSS), so a serialised copy is a self-contained SVG file.
import { type Theme, rgbCss } from "../attention/theme";
import { type CircuitGraph, TARGETS, degrees, edgeStyle } from "./circuit-model";
import { type Layout, edgePath, portX } from "./circuit-layout";

const SVG_NS = "http://www.w3.org/2000/svg";

export interface Palette {
  positive: string;
  negative: string;
  node: string;
  nodeEnd: string;
  stroke: string;
  text: string;
  muted: string;
  accent: string;
  band: string;
  bg: string;
}

export function palette(theme: Theme): Palette {
  return {
    positive: theme.dark ? "#67a9cf" : "#2166ac",
    negative: theme.dark ? "#ef8a62" : "#b2182b",
    node: rgbCss(theme.bg),
    nodeEnd: theme.dark ? "#3a3a3a" : "#eeeeee",
    stroke: theme.muted,
    text: theme.fg,
    muted: theme.muted,
    accent: theme.accent,
    band: theme.dark ? "rgba(255, 255, 255, 0.04)" : "rgba(0, 0, 0, 0.035)",
    bg: rgbCss(theme.bg),
  };
}

function el<K extends keyof SVGElementTagNameMap>(doc: Document, tag: K, attrs: Record<string, string | number>): SVGElementTagNameMap[K] {
  const e = doc.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

export interface CircuitSvg {
  svg: SVGSVGElement;
  /** show edges [0, n) (the strongest n); fade nodes none of them touch; returns the node degrees */
  show(n: number): Uint32Array;
  /** mark selected / focused nodes */
  mark(selected: ReadonlySet<number>, focused: number | null): void;
  recolor(p: Palette): void;
  /** number of edge paths made so far */
  made(): number;
}

export function createCircuitSvg(doc: Document, g: CircuitGraph, layout: Layout, pal: Palette): CircuitSvg {
  let p = pal;
  const svg = el(doc, "svg", {
    width: layout.width, height: layout.height, viewBox: `0 0 ${layout.width} ${layout.height}`,
    "data-testid": "iw-circuit-svg", "font-family": "system-ui, sans-serif", role: "img",
    "aria-label": `circuit graph: ${g.nodes.length} nodes`,
  });
  const bg = el(doc, "rect", { x: 0, y: 0, width: layout.width, height: layout.height, "data-role": "background" });
  const bandsG = el(doc, "g", { "data-role": "bands" });
  layout.bands.forEach((b, i) => {
    const r = el(doc, "rect", { x: 0, y: b.y, width: layout.width, height: b.h, "data-band": i });
    const t = el(doc, "text", { x: 6, y: b.y + b.h / 2 + 4, "font-size": 10, "data-role": "band-label" });
    t.textContent = b.label;
    bandsG.append(r, t);
  });
  const edgesG = el(doc, "g", { "data-role": "edges", fill: "none" });
  const nodesG = el(doc, "g", { "data-role": "nodes" });
  svg.append(bg, bandsG, edgesG, nodesG);

  const nodeEls = g.nodes.map((node, i) => {
    const b = layout.boxes[i];
    const grp = el(doc, "g", { "data-testid": "iw-circuit-node", "data-node": i, "data-name": node.name,
      "data-kind": node.kind, cursor: "pointer" });
    const rect = el(doc, "rect", { x: b.x, y: b.y, width: b.w, height: b.h, rx: node.kind === "mlp" ? 9 : 3 });
    const label = el(doc, "text", { x: b.x + b.w / 2, y: b.y + (node.kind === "head" ? 11 : b.h / 2 + 4),
      "text-anchor": "middle", "font-size": node.kind === "head" ? 10 : 11, "pointer-events": "none" });
    label.textContent = node.name;
    grp.append(rect, label);
    if (node.kind === "head") {
      for (let t = 1; t <= 3; t++) {
        const x = portX(b, t);
        const port = el(doc, "text", { x, y: b.y + b.h - 3, "text-anchor": "middle", "font-size": 7,
          "data-role": "port", "pointer-events": "none" });
        port.textContent = TARGETS[t];
        grp.append(port);
      }
    }
    nodesG.append(grp);
    return { grp, rect, label };
  });

  const paths: SVGPathElement[] = [];
  let shown = 0;
  const styleEdge = (path: SVGPathElement, i: number) => {
    const s = edgeStyle(g.scores[i], g.maxAbs);
    path.setAttribute("stroke", s.positive ? p.positive : p.negative);
    path.setAttribute("stroke-width", s.width.toFixed(2));
    path.setAttribute("stroke-opacity", s.opacity.toFixed(2));
  };
  const makeEdge = (i: number) => {
    const path = el(doc, "path", {
      d: edgePath(layout.boxes[g.senders[i]], layout.boxes[g.receivers[i]], g.targets[i]),
      "data-testid": "iw-circuit-edge", "data-e": i, "pointer-events": "visibleStroke",
    });
    styleEdge(path, i);
    edgesG.prepend(path); // weaker edges underneath
    return path;
  };
  let selected: ReadonlySet<number> = new Set();
  let focused: number | null = null;
  let deg: Uint32Array = new Uint32Array(g.nodes.length);
  const styleNodes = () => {
    nodeEls.forEach(({ grp, rect, label }, i) => {
      const kind = g.nodes[i].kind;
      const sel = selected.has(i);
      rect.setAttribute("fill", kind === "input" || kind === "logits" ? p.nodeEnd : p.node);
      rect.setAttribute("stroke", sel || focused === i ? p.accent : p.stroke);
      rect.setAttribute("stroke-width", sel ? "2.5" : focused === i ? "2" : "1");
      rect.setAttribute("stroke-dasharray", focused === i && !sel ? "3 2" : "none");
      label.setAttribute("fill", p.text);
      grp.querySelectorAll("[data-role='port']").forEach((t) => t.setAttribute("fill", p.muted));
      const faded = deg[i] === 0 && !sel;
      grp.setAttribute("opacity", faded ? "0.25" : "1");
      grp.dataset.faded = faded ? "1" : "0";
      grp.dataset.selected = sel ? "1" : "0";
    });
  };
  const recolor = (next: Palette) => {
    p = next;
    bg.setAttribute("fill", p.bg);
    bandsG.querySelectorAll("rect").forEach((r, i) => r.setAttribute("fill", i % 2 ? p.band : "none"));
    bandsG.querySelectorAll("text").forEach((t) => t.setAttribute("fill", p.muted));
    paths.forEach((path, i) => styleEdge(path, i));
    styleNodes();
  };
  recolor(p);

  return {
    svg,
    show(n) {
      for (let i = paths.length; i < n; i++) paths.push(makeEdge(i));
      for (let i = 0; i < paths.length; i++) {
        const want = i < n;
        const was = i < shown;
        if (want !== was) {
          if (want) paths[i].removeAttribute("display");
          else paths[i].setAttribute("display", "none");
        }
      }
      shown = n;
      svg.dataset.drawn = String(n);
      deg = degrees(g, n);
      styleNodes();
      return deg;
    },
    mark(sel, foc) {
      selected = sel;
      focused = foc;
      styleNodes();
    },
    recolor,
    made: () => paths.length,
  };
}

/** A standalone SVG file of `svg` (its drawn state; hidden edges left out). */
export function serializeSvg(svg: SVGSVGElement): string {
  const copy = svg.cloneNode(true) as SVGSVGElement;
  copy.querySelectorAll("[display='none']").forEach((e) => e.remove());
  const text = new XMLSerializer().serializeToString(copy);
  return `<?xml version="1.0" encoding="UTF-8"?>\n${text}`;
}

/** Draw an SVG document to a PNG (at `scale` x its size) through an <img> and a canvas. */
export function svgToPng(svgText: string, width: number, height: number, scale = 2): Promise<Blob> {
  return new Promise((resolve, reject) => {
    const img = new Image();
    const url = URL.createObjectURL(new Blob([svgText], { type: "image/svg+xml" }));
    img.onload = () => {
      try {
        const canvas = document.createElement("canvas");
        canvas.width = Math.round(width * scale);
        canvas.height = Math.round(height * scale);
        const ctx = canvas.getContext("2d");
        if (!ctx) throw new Error("no 2D canvas in this browser");
        ctx.scale(scale, scale);
        ctx.drawImage(img, 0, 0, width, height);
        canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error("the canvas gave no PNG"))), "image/png");
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
      } finally {
        URL.revokeObjectURL(url);
      }
    };
    img.onerror = () => {
      URL.revokeObjectURL(url);
      reject(new Error("the SVG could not be drawn as an image"));
    };
    img.src = url;
  });
}
