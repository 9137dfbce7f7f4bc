import { describe, expect, it } from "vitest";
import {
  argmax, blockOf, cellAt, clampStart, detailLayout, gridLayout, maxPool2d, poolEdges, tokenLabel, windowAround,
} from "./math";
import { thumbWindow, valueAt, type AttentionData } from "./model";

describe("downsampling", () => {
  it("splits n items into min(n, size) blocks that cover everything", () => {
    expect(poolEdges(10, 3)).toEqual([0, 3, 6]);
    expect(poolEdges(4, 8)).toEqual([0, 1, 2, 3]);
    expect(poolEdges(1024, 32).every((e, i) => e === i * 32)).toBe(true);
  });

  it("blockOf inverts poolEdges for every item", () => {
    for (const [n, size] of [[10, 3], [1024, 32], [7, 7], [5, 9], [1000, 128], [37, 6]]) {
      const edges = poolEdges(n, size);
      for (let x = 0; x < n; x++) {
        const b = blockOf(x, n, size);
        expect(edges[b]).toBeLessThanOrEqual(x);
        if (b + 1 < edges.length) expect(edges[b + 1]).toBeGreaterThan(x);
      }
    }
  });

  it("max-pools against a brute-force loop", () => {
    const rows = 13;
    const cols = 9;
    const vals = Array.from({ length: rows * cols }, (_, i) => Math.sin(i * 12.9898) * 43758.5453 % 1);
    const out = maxPool2d(vals, rows, cols, 4, 4);
    const re = poolEdges(rows, 4);
    const ce = poolEdges(cols, 4);
    for (let i = 0; i < 4; i++) {
      for (let j = 0; j < 4; j++) {
        let best = -Infinity;
        for (let y = re[i]; y < (re[i + 1] ?? rows); y++) for (let x = ce[j]; x < (ce[j + 1] ?? cols); x++) best = Math.max(best, vals[y * cols + x]);
        expect(out.values[i * 4 + j]).toBeCloseTo(best, 6);
      }
    }
  });

  it("valueAt looks up the pooled cell of an absolute position", () => {
    const data: AttentionData = {
      modelName: "m", nLayers: 1, nHeads: 1,
      prompts: [{ text: "", tokens: Array.from({ length: 10 }, String), scores: [],
        thumbs: { size: 3, bytes: Uint8Array.from([0, 51, 102, 153, 204, 255, 0, 0, 255]), scale: 1 / 255, offset: 0 } }],
    };
    const w = thumbWindow(data, 0, 0, 0);
    expect(w.rows).toBe(3);
    expect(valueAt(w, 0, 0)).toBe(0);
    expect(valueAt(w, 3, 3)).toBeCloseTo(204 / 255); // item 3 of 10 is in block 1 of 3
    expect(valueAt(w, 9, 9)).toBeCloseTo(1);
    expect(Number.isNaN(valueAt(w, 10, 0))).toBe(true);
  });
});

describe("layout", () => {
  it("clamps windows into the sequence", () => {
    expect(clampStart(-5, 48, 1024)).toBe(0);
    expect(clampStart(1000, 48, 1024)).toBe(976);
    expect(clampStart(3, 48, 20)).toBe(0);
    expect(windowAround(500, 48, 1024)).toEqual([476, 524]);
    expect(windowAround(1023, 48, 1024)).toEqual([976, 1024]);
  });

  it("fits the grid to the width, within bounds", () => {
    expect(gridLayout(800, 12).cell).toBeLessThanOrEqual(56);
    const g = gridLayout(500, 12);
    expect(g.labelWidth + 12 * (g.cell + g.gap)).toBeLessThanOrEqual(500);
    expect(gridLayout(100, 64).cell).toBe(14);
  });

  it("maps pointer positions to cells and back", () => {
    const L = detailLayout(700, 48, 48);
    expect(L.width).toBe(L.left + 48 * L.cell);
    expect(cellAt(L, L.left + 2.5 * L.cell, L.top + 7.5 * L.cell)).toEqual({ row: 7, col: 2 });
    expect(cellAt(L, L.left - 1, L.top + 1)).toBeNull();
    expect(cellAt(L, L.left + 48 * L.cell + 1, L.top + 1)).toBeNull();
  });

  it("labels tokens readably", () => {
    expect(tokenLabel(" the")).toBe("␣the");
    expect(tokenLabel("\n")).toBe("⏎");
    expect(tokenLabel("abcdefghijklmnop", 6)).toBe("abcde…");
    expect(argmax([Number.NaN, 0.2, 0.9, Infinity])).toBe(2);
    expect(argmax([Number.NaN])).toBe(-1);
  });
});
