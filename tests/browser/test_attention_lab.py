"""The attention widget in a real JupyterLab: run a notebook, click a head, hover the detail view,
check the DOM and the kernel's state; then save, shut the kernel down and reopen the notebook
without a kernel (JupyterLab's "Open With > Notebook (no kernel)"): a static snapshot of the view
shows instead of jupyterlab-manager's "Loading widget..." placeholder. An untrusted copy (scripts
do not run) shows the script-free fallback image instead.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

BLOCK = "qxbzfmwkrtplvhnd"
TEXT = BLOCK + BLOCK  # a repeated random block: induction-2l's induction heads fire on the second copy
NB = "attention_widget.ipynb"
ROOT = '[data-testid="iw-attention"]'


def _weight(text: str) -> float:
    return float(text.strip().lstrip("≈"))


def test_attention_widget_in_jupyterlab(lab: Any) -> None:
    page = lab.page
    lab.server.write_notebook(NB, [
        f"import interp_widget as iw\nTEXT = {TEXT!r}\nw = iw.attention('induction-2l', TEXT)\nw",
    ])
    lab.open(NB)
    assert lab.page.evaluate("() => window.jupyterapp.hasPlugin('interp-widget:snapshots')"), (
        "interp-widget's JupyterLab extension is not loaded: is share/jupyter/labextensions/interp-widget "
        "installed in this environment (pip install -e . / the wheel)?")
    lab.run_all()
    assert lab.errors() == []

    # --- the live widget rendered -----------------------------------------------------
    view = page.locator(f'.jp-OutputArea-output {ROOT}[data-mode="live"]')
    view.wait_for(timeout=60_000)
    page.wait_for_selector(f'{ROOT}[data-mode="live"][data-ready="1"]', timeout=60_000)
    n_layers, n_heads, n_tokens = (int(v) for v in lab.run_code("print(w.n_layers, w.n_heads, len(w.data.tokens[0]))").split())
    assert n_layers == 2
    assert n_tokens == len(TEXT) + 1  # BOS + one token per character
    cells = view.locator('[data-testid="iw-cell"]')
    assert cells.count() == n_layers * n_heads
    assert view.locator('[data-testid="iw-scores"]').count() == 1
    assert view.get_attribute("data-layer") == "0"
    assert view.get_attribute("data-head") == "0"

    # --- click a head in the overview grid: the view and the kernel follow -----------
    layer, head = 1, n_heads - 1
    view.locator(f'[data-testid="iw-cell"][data-layer="{layer}"][data-head="{head}"]').click()
    canvas = view.locator('[data-testid="iw-detail-canvas"]')
    page.wait_for_function(
        """([sel, l, h]) => { const c = document.querySelector(sel);
                               return c && c.dataset.layer === String(l) && c.dataset.head === String(h)
                                      && c.dataset.exact === '1'; }""",
        arg=[f'{ROOT}[data-mode="live"] [data-testid="iw-detail-canvas"]', layer, head], timeout=30_000,
    )  # exact: the window came back from the kernel's get_pattern command
    assert view.get_attribute("data-layer") == str(layer)
    assert view.get_attribute("data-head") == str(head)
    assert f"L{layer}H{head}" in view.locator('[data-testid="iw-detail-title"]').inner_text()
    assert lab.run_code("print(w.layer, w.head)") == f"{layer} {head}\n"

    # --- hover the detail canvas: tooltip with destination, source and the kernel's weight
    box = canvas.bounding_box()
    assert box is not None and box["width"] > 50 and box["height"] > 50
    tooltip = view.locator('[data-testid="iw-tooltip"]')
    seen = []
    for fx, fy in ((0.995, 0.995), (0.7, 0.97)):  # the last query row: its diagonal, and an earlier key
        page.mouse.move(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
        page.wait_for_function("(sel) => document.querySelector(sel)?.dataset.visible === '1'",
                               arg=f'{ROOT}[data-mode="live"] [data-testid="iw-tooltip"]', timeout=10_000)
        text = tooltip.inner_text()
        m = re.search(r"\(q=(\d+)\).*\(k=(\d+)\)", text, flags=re.S)
        assert m, text
        q, k = int(m.group(1)), int(m.group(2))
        dest = tooltip.locator('[data-role="dest"]').inner_text()
        src = tooltip.locator('[data-role="src"]').inner_text()
        weight = _weight(tooltip.locator('[data-role="weight"]').inner_text())
        assert f"L{layer}H{head}" in text
        seen.append((q, k, dest, src, weight))
    assert seen[0][0] == n_tokens - 1, seen  # the bottom-right corner is the last query ...
    assert seen[0][1] == n_tokens - 1, seen  # ... attending to itself
    assert seen[1][1] < seen[1][0], seen
    # the kernel recomputes the same entries straight from the model (no widget code involved)
    expected = json.loads(lab.run_code(
        "import json\n"
        "m = iw.load('induction-2l')\n"
        f"p = m.run(TEXT, capture=['blocks.{layer}.attn.hook_pattern']).cache['blocks.{layer}.attn.hook_pattern'][0, {head}]\n"
        "toks = m.to_str_tokens(TEXT)\n"
        f"print(json.dumps([[toks[q], toks[k], float(p[q, k])] for q, k in {[(q, k) for q, k, *_ in seen]}]))"
    ))
    for (q, k, dest, src, weight), (tq, tk, pw) in zip(seen, expected, strict=True):
        assert dest == tq.replace(" ", "␣"), (q, dest, tq)
        assert src == tk.replace(" ", "␣"), (k, src, tk)
        assert weight == pytest.approx(pw, abs=2e-3), (q, k, weight, pw)

    # --- Python -> view ----------------------------------------------------------------
    lab.run_code("w.layer, w.head = 0, 1")
    page.wait_for_function(
        "(sel) => { const r = document.querySelector(sel); return r && r.dataset.layer === '0' && r.dataset.head === '1'; }",
        arg=f'{ROOT}[data-mode="live"]', timeout=15_000,
    )

    # --- save, shut the kernel down, reopen without a kernel -------------------------------
    lab.save()
    saved = lab.server.read_notebook(NB)
    bundle = saved["cells"][0]["outputs"][-1]["data"]
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "data-iw-static" in "".join(bundle.get("text/html", ""))
    lab.shutdown_kernel()
    lab.close_all()

    # a copy whose outputs JupyterLab does not trust (scripts do not run): the script-free fallback
    copy = lab.server.read_notebook(NB)
    copy["metadata"]["copied"] = True  # changes the content hash, so the notebook's signature no longer matches
    (lab.server.root / "untrusted_copy.ipynb").write_text(json.dumps(copy))
    lab.open("untrusted_copy.ipynb", no_kernel=True)
    out = page.locator(".jp-OutputArea-output").first
    out.locator('img[src^="data:image/png"]').wait_for(timeout=30_000)
    assert f"{n_layers} layers x {n_heads} heads" in out.inner_text()

    # the saved notebook itself (trusted: its outputs were made here), opened with no kernel: the view
    # must render from what the notebook holds (a static snapshot), not stay at "Loading widget..."
    lab.close_all()
    lab.open(NB, no_kernel=True)
    snap = page.locator(f".jp-OutputArea-output {ROOT}").first
    snap.wait_for(timeout=30_000)
    page.wait_for_selector(f'.jp-OutputArea-output {ROOT}[data-ready="1"]', timeout=30_000)
    assert snap.locator('[data-testid="iw-cell"]').count() == n_layers * n_heads
    assert snap.locator('[data-testid="iw-scores"]').count() == 1
    assert lab.server.kernels() == [], "opening with no kernel must not have started one"
