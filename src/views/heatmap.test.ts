// Heatmap math: decoding, slicing an n-d result into the grid on screen, colour scales, layout and
// hit testing, heads. Node environment, no DOM.
import { describe, expect, it } from "vitest";
import type { HeatmapData } from "../schema/generated";
import { f32 } from "../attention/testdata";
import {
  cellIndex, cellOfHead, colorIndex, colorRange, decodeHeatmap, divergingLut, formatValue, gridOf, headOf,
  heatmapCellAt, heatmapLayout, normalizedValue, slicedAxes, strides, strongest,
} from "./heatmap-math";

/** A [layer=2, pos=3, head=4] result whose value at (l, p, h) is 100 l + 10 p + h. */
function byPosData(over: Partial<HeatmapData> = {}): HeatmapData {
  const values: number[] = [];
  for (let l = 0; l < 2; l++) for (let p = 0; p < 3; p++) for (let h = 0; h < 4; h++) values.push(100 * l + 10 * p + h);
  return {
    title: "t", kind: "activation_patching", sites: "heads_by_pos", metric: "m",
    axes: ["layer", "pos", "head"], labels: [["0", "1"], ["0:<bos>", "1:a", "2:b"], ["0", "1", "2", "3"]],
    values: f32(values, [2, 3, 4]), rows: 0, cols: 2, slice: [0, 2, 0],
    clean_metric: 2, corrupted_metric: -1, normalized: false, scale: "diverging", center: -1, note: "",
    ...over,
  };
}

describe("decodeHeatmap", () => {
  it("keeps shape, labels and metrics, and clamps slice indices", () => {
    const h = decodeHeatmap(byPosData({ slice: [0, 9, -3] }));
    expect(h.shape).toEqual([2, 3, 4]);
    expect(h.slice).toEqual([0, 2, 0]);
    expect([h.clean, h.corrupted]).toEqual([2, -1]);
    expect(slicedAxes(h)).toEqual([1]);
  });

  it("refuses labels that do not fit the values, and rows equal to cols", () => {
    expect(() => decodeHeatmap(byPosData({ labels: [["0"], ["a", "b", "c"], ["0", "1", "2", "3"]] }))).toThrow(/do not match/);
    expect(() => decodeHeatmap(byPosData({ cols: 0 }))).toThrow(/two different axes/);
    expect(() => decodeHeatmap(byPosData({ rows: 3 }))).toThrow(/two different axes/);
  });
});

describe("gridOf", () => {
  it("takes rows x cols at the slice of the other axes", () => {
    const h = decodeHeatmap(byPosData());
    expect(strides(h.shape)).toEqual([12, 4, 1]);
    const g = gridOf(h);
    expect([g.nRows, g.nCols]).toEqual([2, 4]);
    expect(Array.from(g.values)).toEqual([20, 21, 22, 23, 120, 121, 122, 123]);
    expect(Array.from(gridOf(h, [0, 1, 0]).values)).toEqual([10, 11, 12, 13, 110, 111, 112, 113]);
    expect(cellIndex(h, 1, 3)).toEqual([1, 2, 3]);
    expect(cellIndex(h, 0, 1, [0, 0, 0])).toEqual([0, 0, 1]);
  });

  it("transposes when the rows axis comes after the columns axis, and draws one column without cols", () => {
    const t = gridOf(decodeHeatmap(byPosData({ rows: 2, cols: 0 })));
    expect([t.nRows, t.nCols]).toEqual([4, 2]);
    expect(Array.from(t.values.slice(0, 4))).toEqual([20, 120, 21, 121]);
    const one = gridOf(decodeHeatmap(byPosData({ rows: 1, cols: null, slice: [1, 0, 3] })));
    expect([one.nRows, one.nCols]).toEqual([3, 1]);
    expect(Array.from(one.values)).toEqual([103, 113, 123]);
  });

  it("matches a brute-force loop over every slice and axis pair", () => {
    const h = decodeHeatmap(byPosData());
    for (const [rows, cols] of [[0, 1], [1, 0], [0, 2], [2, 1], [1, 2]] as const) {
      for (let s = 0; s < 3; s++) {
        const slice = [s % 2, s, s];
        const hh = { ...h, rows, cols };
        const g = gridOf(hh, slice);
        for (let r = 0; r < g.nRows; r++) {
          for (let c = 0; c < g.nCols; c++) {
            const [l, p, k] = cellIndex(hh, r, c, slice);
            expect(g.values[r * g.nCols + c]).toBe(100 * l + 10 * p + k);
          }
        }
      }
    }
  });
});

describe("colour scale", () => {
  it("is symmetric around the centre for diverging data, min(0, min)..max for sequential", () => {
    expect(colorRange([1, 4, Number.NaN, -2], "diverging", 1)).toEqual({ lo: -2, hi: 4 });
    expect(colorRange([0.2, 0.8], "sequential", 0)).toEqual({ lo: 0, hi: 0.8 });
    expect(colorRange([-0.5, 0.5], "sequential", 0)).toEqual({ lo: -0.5, hi: 0.5 });
    expect(colorRange([3, 3], "diverging", 3)).toEqual({ lo: 2, hi: 4 }); // no spread: a unit range
    expect(colorRange([Number.NaN], "sequential", 0)).toEqual({ lo: 0, hi: 1 });
  });

  it("maps values to table indices, NaN to -1, the centre to the middle", () => {
    const r = { lo: -2, hi: 2 };
    expect([colorIndex(-2, r), colorIndex(0, r), colorIndex(2, r), colorIndex(9, r), colorIndex(-9, r)]).toEqual([0, 128, 255, 255, 0]);
    expect(colorIndex(Number.NaN, r)).toBe(-1);
  });

  it("runs from the negative colour through the background to the positive colour", () => {
    const lut = divergingLut([200, 0, 0], [255, 255, 255], [0, 0, 200]);
    expect(Array.from(lut.slice(0, 4))).toEqual([200, 0, 0, 255]);
    expect(Array.from(lut.slice(255 * 4, 256 * 4))).toEqual([0, 0, 200, 255]);
    for (const i of [127, 128]) for (let c = 0; c < 3; c++) expect(lut[4 * i + c]).toBeGreaterThan(250);
  });
});

describe("values, layout and heads", () => {
  it("normalises (0 = corrupted, 1 = clean) where defined", () => {
    expect(normalizedValue(0.5, 2, -1)).toBeCloseTo(0.5);
    expect(normalizedValue(-1, 2, -1)).toBe(0);
    expect(normalizedValue(1, 1, 1)).toBeNull();
    expect(normalizedValue(1, null, 0)).toBeNull();
    expect(normalizedValue(Number.NaN, 1, 0)).toBeNull();
  });

  it("formats values with four significant digits", () => {
    expect(formatValue(0.123456)).toBe("0.1235");
    expect(formatValue(-12.3456)).toBe("-12.35");
    expect(formatValue(0)).toBe("0");
    expect(formatValue(1.5e-5)).toBe("1.50e-5");
    expect(formatValue(Number.NaN)).toBe("n/a");
    expect(formatValue(null)).toBe("n/a");
  });

  it("hit-tests every cell centre back to its cell, and nothing outside", () => {
    const l = heatmapLayout(500, 3, 7, { rowLabel: 40, colLabel: 20 });
    expect(l.cell).toBeLessThanOrEqual(36);
    expect(l.width).toBeLessThanOrEqual(500);
    for (let r = 0; r < 3; r++) {
      for (let c = 0; c < 7; c++) {
        expect(heatmapCellAt(l, l.left + (c + 0.5) * l.cell, l.top + (r + 0.5) * l.cell)).toEqual({ row: r, col: c });
      }
    }
    expect(heatmapCellAt(l, l.left - 1, l.top + 1)).toBeNull();
    expect(heatmapCellAt(l, l.left + 7 * l.cell + 1, l.top + 1)).toBeNull();
    expect(heatmapLayout(100, 2, 1000).cell).toBe(6); // many columns: the minimum cell, wider than the room
  });

  it("finds heads by their labels (layer subsets included)", () => {
    const h = decodeHeatmap(byPosData({ labels: [["3", "5"], ["0:<bos>", "1:a", "2:b"], ["0", "1", "2", "3"]] }));
    expect(headOf(h, [1, 0, 2])).toEqual({ layer: 5, head: 2 });
    expect(cellOfHead(h, 5, 2)).toEqual({ row: 1, col: 2 });
    expect(cellOfHead(h, 4, 2)).toBeNull();
    expect(cellOfHead({ ...h, rows: 2, cols: 0 }, 5, 2)).toEqual({ row: 2, col: 1 });
    expect(cellOfHead({ ...h, rows: 0, cols: 1 }, 5, 2)).toBeNull(); // heads are not on screen
    const resid = decodeHeatmap({ ...byPosData(), axes: ["layer", "pos", "x"], cols: 1 });
    expect(headOf(resid, [0, 0, 0])).toBeNull();
  });

  it("finds the strongest effect", () => {
    expect(strongest([0, -3, 2, Number.NaN], 0)).toBe(1);
    expect(strongest([1, 1.5, -1], 1)).toBe(2);
    expect(strongest([Number.NaN], 0)).toBe(-1);
  });
});
