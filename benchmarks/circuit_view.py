"""The circuit graph view in headless Chromium: first render of a GPT-2-small-shaped graph (158 nodes,
32,491 edges) against a 2-layer graph (10 nodes) rendered the same way, and the time to redraw the edges
when the top-k changes, up to the drawing cap (2,000), against redrawing 100 edges.

    .venv/bin/python benchmarks/circuit_view.py [--repeats 5]

Each graph is the widget's static page (the same bundle and view as the live widget, no kernel), opened
as a local file. Scores are seeded random numbers: the layout and drawing cost do not depend on them.
Times are the view's script time (render: from the call to the view's return; redraws: the input
handler), not paint.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import torch

from interp_widget.analysis.circuits import CircuitGraph, EdgeIndex
from interp_widget.widgets.circuit import circuit_widget

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
REDRAW = """(k) => { const r = document.querySelector("[data-testid='iw-circuit']");
  const box = r.querySelector("[data-testid='iw-topk']"); const t0 = performance.now();
  box.value = String(k); box.dispatchEvent(new Event('input')); const ms = performance.now() - t0;
  return [ms, Number(r.dataset.drawn)]; }"""


def graph(n_layers: int, n_heads: int, has_mlp: bool) -> CircuitGraph:
    ix = EdgeIndex.build(n_layers, n_heads, has_mlp)
    g = torch.Generator().manual_seed(0)
    n = len(ix.edges)
    scores = torch.randn(n, generator=g) * torch.rand(n, generator=g) ** 4
    return CircuitGraph(ix, scores, torch.ones(n, dtype=torch.bool), "eap", "logit diff", 2.0, 0.5)


def page_file(g: CircuitGraph, folder: Path, name: str) -> Path:
    w = circuit_widget(g, top_k=100, max_drawn=2000)
    w.snapshot_edges = g.n_edges  # every edge, as the live widget has them
    path = folder / f"{name}.html"
    path.write_text(f"<!doctype html><html><body>{w.snapshot_html()}</body></html>")
    return path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(1)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        pages = {"gpt2-small (158 nodes)": page_file(graph(12, 12, True), Path(tmp), "big"),
                 "2 layers x 4 heads (10 nodes)": page_file(graph(2, 4, False), Path(tmp), "small")}
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        render: dict[str, list[float]] = {k: [] for k in pages}
        layout: dict[str, list[float]] = {k: [] for k in pages}
        redraw: dict[int, list[float]] = {k: [] for k in (100, 500, 2000)}
        create: list[float] = []
        for _ in range(args.repeats):
            for name, path in pages.items():
                ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
                page = ctx.new_page()
                page.goto(path.as_uri())
                root = page.wait_for_selector("[data-testid='iw-circuit']", timeout=60_000)
                render[name].append(float(root.get_attribute("data-render-ms")))
                layout[name].append(float(root.get_attribute("data-layout-ms")))
                if name.startswith("gpt2"):
                    ms, drawn = page.evaluate(REDRAW, 0)  # no top-k: 2,000 drawn (the cap), paths made now
                    assert drawn == 2000, drawn
                    create.append(ms)
                    for k in redraw:
                        page.evaluate(REDRAW, 1)
                        ms, drawn = page.evaluate(REDRAW, k)
                        assert drawn == k, (drawn, k)
                        redraw[k].append(ms)
                ctx.close()
        browser.close()
    med = {k: statistics.median(v) for k, v in render.items()}
    print(f"first render, median of {args.repeats} (dagre layout in brackets):")
    for k, v in render.items():
        print(f"  {k:32s} {statistics.median(v):7.1f} ms  ({statistics.median(layout[k]):.1f} ms)")
    big, small = med["gpt2-small (158 nodes)"], med["2 layers x 4 heads (10 nodes)"]
    print(f"  ratio 158 nodes / 10 nodes: {big / small:.1f}x")
    print(f"first draw of 2,000 edges (their SVG paths made): {statistics.median(create):.1f} ms")
    print("redraw after a top-k change (edges shown; the drawing cap is 2,000):")
    for k, v in redraw.items():
        print(f"  {k:5d} edges {statistics.median(v):7.2f} ms")
    print(f"  ratio 2,000 / 100 edges: {statistics.median(redraw[2000]) / statistics.median(redraw[100]):.1f}x")


if __name__ == "__main__":
    main()
