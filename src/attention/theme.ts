// Theme colours for canvas drawing, read from the CSS custom properties of the view's root
// (which follow JupyterLab's --jp-* variables, or prefers-color-scheme outside JupyterLab).

export type RGB = [number, number, number];

export interface Theme {
  dark: boolean;
  bg: RGB;
  heat: RGB;
  /** CSS colour strings for text and lines */
  fg: string;
  muted: string;
  border: string;
  accent: string;
  font: string;
}

const LIGHT: Theme = {
  dark: false,
  bg: [255, 255, 255],
  heat: [8, 69, 148],
  fg: "rgba(0, 0, 0, 0.87)",
  muted: "rgba(0, 0, 0, 0.54)",
  border: "#e0e0e0",
  accent: "#1976d2",
  font: "system-ui, sans-serif",
};

const DARK: Theme = {
  dark: true,
  bg: [30, 30, 30],
  heat: [255, 183, 77],
  fg: "rgba(255, 255, 255, 0.87)",
  muted: "rgba(255, 255, 255, 0.54)",
  border: "#424242",
  accent: "#64b5f6",
  font: "system-ui, sans-serif",
};

/** Parse `#rgb`, `#rrggbb`, `rgb(r, g, b)` or `rgba(r, g, b, a)` (alpha ignored); null otherwise. */
export function parseColor(text: string): RGB | null {
  const s = text.trim().toLowerCase();
  let m = /^#([0-9a-f]{3})$/.exec(s);
  if (m) return [0, 1, 2].map((i) => parseInt(m![1][i] + m![1][i], 16)) as RGB;
  m = /^#([0-9a-f]{6})(?:[0-9a-f]{2})?$/.exec(s);
  if (m) return [0, 2, 4].map((i) => parseInt(m![1].slice(i, i + 2), 16)) as RGB;
  m = /^rgba?\(\s*([\d.]+)[\s,]+([\d.]+)[\s,]+([\d.]+)/.exec(s);
  if (m) return [Number(m[1]), Number(m[2]), Number(m[3])].map((v) => Math.max(0, Math.min(255, Math.round(v)))) as RGB;
  return null;
}

export function luminance([r, g, b]: RGB): number {
  return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
}

function prefersDark(): boolean {
  return typeof matchMedia === "function" && matchMedia("(prefers-color-scheme: dark)").matches;
}

/** The theme in effect at `el` (falls back to light/dark defaults where CSS cannot be read). */
export function readTheme(el: Element): Theme {
  const style = typeof getComputedStyle === "function" ? getComputedStyle(el) : null;
  const get = (name: string): string => (style ? style.getPropertyValue(name).trim() : "");
  const bg = parseColor(get("--iw-bg"));
  const dark = bg ? luminance(bg) < 0.5 : prefersDark();
  const base = dark ? DARK : LIGHT;
  const heat = parseColor(get(dark ? "--iw-heat-dark" : "--iw-heat-light")) ?? base.heat;
  return {
    dark,
    bg: bg ?? base.bg,
    heat,
    fg: get("--iw-fg") || base.fg,
    muted: get("--iw-muted") || base.muted,
    border: get("--iw-border") || base.border,
    accent: get("--iw-accent") || base.accent,
    font: get("--iw-font") || base.font,
  };
}

/** 256-entry RGBA lookup table from the background (0) to the heat colour (1). */
export function heatLut(theme: Pick<Theme, "bg" | "heat">): Uint8ClampedArray {
  const lut = new Uint8ClampedArray(256 * 4);
  for (let i = 0; i < 256; i++) {
    const t = i / 255;
    for (let c = 0; c < 3; c++) lut[4 * i + c] = Math.round(theme.bg[c] + (theme.heat[c] - theme.bg[c]) * t);
    lut[4 * i + 3] = 255;
  }
  return lut;
}

/** LUT index of a value in [0, 1] (NaN -> 0). */
export function lutIndex(v: number): number {
  if (!(v > 0)) return 0;
  return v >= 1 ? 255 : Math.round(v * 255);
}

export function rgbCss([r, g, b]: RGB): string {
  return `rgb(${r}, ${g}, ${b})`;
}

/** Call `onChange` when JupyterLab switches theme or the OS colour scheme changes; returns a cleanup. */
export function watchTheme(onChange: () => void): () => void {
  const cleanups: (() => void)[] = [];
  if (typeof MutationObserver === "function" && typeof document !== "undefined" && document.body) {
    const mo = new MutationObserver(onChange);
    mo.observe(document.body, { attributes: true, attributeFilter: ["data-jp-theme-light", "data-jp-theme-name"] });
    cleanups.push(() => mo.disconnect());
  }
  if (typeof matchMedia === "function") {
    const mq = matchMedia("(prefers-color-scheme: dark)");
    if (typeof mq.addEventListener === "function") {
      mq.addEventListener("change", onChange);
      cleanups.push(() => mq.removeEventListener("change", onChange));
    }
  }
  return () => cleanups.forEach((f) => f());
}

/** watchTheme for a canvas view: `redraw` at once and again 250 ms later (JupyterLab swaps the stylesheet
 * after the attribute). Returns the cleanup. */
export function watchThemeRedraw(redraw: () => void): () => void {
  let timer = 0;
  const unwatch = watchTheme(() => {
    redraw();
    clearTimeout(timer);
    timer = setTimeout(redraw, 250) as unknown as number;
  });
  return () => {
    unwatch();
    clearTimeout(timer);
  };
}
