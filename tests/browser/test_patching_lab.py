"""The patching widget in a real JupyterLab: type prompts, run, see the heatmap update (without
re-executing the cell), hover a cell, open a head's attention on the clean and corrupted prompt,
get a clear error for prompts of different token lengths, cancel a long run, and the kernel stays
usable throughout. Both the DOM and the kernel's state are checked.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.timeout(420)]

NB = "patching_widget.ipynb"
ROOT = "[data-testid='iw-patching']"
LIVE = f".jp-OutputArea-output {ROOT}[data-mode='live']"  # a live view (not a snapshot)

SETUP = """
import warnings; warnings.filterwarnings("ignore")
import torch; torch.set_num_threads(1)
from transformer_lens import HookedTransformer, HookedTransformerConfig
import interp_widget as iw
from interp_widget.zoo.tokenizer import build_tokenizer

def tiny(n_layers, d_model, n_heads, n_ctx, seed):
    cfg = HookedTransformerConfig(n_layers=n_layers, d_model=d_model, n_heads=n_heads, d_head=d_model // n_heads,
                                  n_ctx=n_ctx, d_vocab=72, attn_only=True, act_fn=None, seed=seed,
                                  normalization_type="LN")
    ht = HookedTransformer(cfg)
    ht.set_tokenizer(build_tokenizer())
    return iw.load(ht.eval(), name=f"random-{n_layers}l")

small = tiny(2, 16, 4, 48, 0)
"""
# a patching widget with nothing run yet: everything is typed in the browser
SMALL = "w = iw.patching_widget(small)\nw"
# a long run: 8 prompts of 241 tokens, the residual stream at 4 x 241 sites (~700 of them differ), one run per chunk
LONG = """
big = tiny(4, 64, 4, 256, 1)
g = torch.Generator().manual_seed(0)
letters = "abcdefghijklmnopqrstuvwxyz"
def rand_text(n):
    return "".join(letters[int(i)] for i in torch.randint(26, (n,), generator=g))
clean = [rand_text(240) for _ in range(8)]
corrupted = [c[:5] + rand_text(1) + c[6:] for c in clean]
w2 = iw.patching_widget(big, clean, corrupted, metric="loss", component="resid", run=False, max_batch=8)
w2
"""


def _view(page: Any, index: int) -> Any:
    return page.locator(LIVE).nth(index)


def _wait_attr(page: Any, index: int, selector: str, attr: str, predicate: str, timeout: float = 60_000) -> None:
    """Wait until ``predicate`` (JS, on ``v``) holds for ``attr`` of ``selector`` inside live view ``index``."""
    page.wait_for_function(
        f"""([live, i, sel, attr]) => {{ const r = document.querySelectorAll(live)[i]; if (!r) return false;
                 const el = sel ? r.querySelector(sel) : r; if (!el) return false;
                 const v = el.getAttribute(attr); return {predicate}; }}""",
        arg=[LIVE, index, selector, attr], timeout=timeout,
    )


def _execution_counts(lab: Any) -> list[Any]:
    return list(lab.page.evaluate(
        """() => { const cells = window.jupyterapp.shell.currentWidget.content.model.cells; const out = [];
                   for (let i = 0; i < cells.length; i++) out.push(cells.get(i).executionCount); return out; }"""))


def _forget_workspaces(lab: Any) -> None:
    """Drop the saved JupyterLab workspaces: opening a notebook must not also restore (and start a kernel
    for) the notebooks an earlier test left open."""
    import contextlib
    import urllib.error

    listed = lab.server.api("GET", "/lab/api/workspaces")
    ids = listed.get("workspaces", {}).get("ids", []) if isinstance(listed, dict) else []
    for ws in ids:
        with contextlib.suppress(urllib.error.URLError):
            lab.server.api("DELETE", f"/lab/api/workspaces/{ws}")


def test_patching_widget_in_jupyterlab(lab: Any) -> None:
    page = lab.page
    _forget_workspaces(lab)
    lab.server.write_notebook(NB, [SETUP, SMALL, LONG])
    lab.open(NB)
    lab.run_all(timeout_ms=180_000)
    assert lab.errors() == []
    view = _view(page, 0)
    view.wait_for(timeout=60_000)
    heatmap = view.locator('[data-testid="iw-heatmap"]')
    assert view.locator('[data-testid="iw-heatmap-empty"]').is_visible()  # nothing run yet
    counts = _execution_counts(lab)

    # --- type prompts and answers, choose heads, run -------------------------------------------
    clean, corrupted = "abcdefgabcdefg", "abcdefgabczefg"
    view.locator('[data-testid="iw-clean"]').fill(clean)
    view.locator('[data-testid="iw-corrupted"]').fill(corrupted)
    view.locator('[data-testid="iw-answer"]').fill("e")
    view.locator('[data-testid="iw-wrong"]').fill("z")
    view.locator('[data-testid="iw-component"]').select_option("heads")
    view.locator('[data-testid="iw-run"]').click()
    _wait_attr(page, 0, '[data-testid="iw-heatmap"]', "data-version", "v === '1'")
    _wait_attr(page, 0, "", "data-state", "v === 'done'")
    assert heatmap.get_attribute("data-rows") == "2"
    assert heatmap.get_attribute("data-cols") == "4"
    assert "heads" in heatmap.get_attribute("data-title")
    state = json.loads(lab.run_code(
        "import json\nr = w.last_result\n"
        "print(json.dumps({'clean': w.clean, 'corrupted': w.corrupted, 'answer': w.answer, 'wrong': w.wrong,"
        " 'axes': list(r.axes), 'values': r.values.tolist(), 'clean_m': r.clean_metric, 'corr_m': r.corrupted_metric,"
        " 'state': w.status['state']}))"))
    assert (state["clean"], state["corrupted"], state["answer"], state["wrong"]) == (clean, corrupted, "e", "z")
    assert state["axes"] == ["layer", "head"]
    assert state["state"] == "done"
    # the same numbers as patch() called directly
    direct = json.loads(lab.run_code(
        "from interp_widget.analysis.patching import patch\nfrom interp_widget.analysis.metrics import logit_diff\n"
        f"print(json.dumps(patch(small, {clean!r}, {corrupted!r}, logit_diff('e', 'z'), sites='heads').values.tolist()))"))
    for row_w, row_d in zip(state["values"], direct, strict=True):
        assert row_w == pytest.approx(row_d, abs=1e-5)

    # --- hover a cell: labels, value, clean / corrupted metrics ------------------------------------
    canvas = view.locator('[data-testid="iw-heatmap-canvas"]')
    box = canvas.bounding_box()
    assert box is not None
    cell, left, top = (float(canvas.get_attribute(a)) for a in ("data-cell", "data-left", "data-top"))
    layer, head = 1, 2
    page.mouse.move(box["x"] + left + (head + 0.5) * cell, box["y"] + top + (layer + 0.5) * cell)
    tooltip = view.locator('[data-testid="iw-tooltip"]')
    page.wait_for_function("(sel) => document.querySelector(sel)?.dataset.visible === '1'",
                           arg=f"{LIVE} [data-testid='iw-tooltip']", timeout=10_000)
    assert tooltip.locator('[data-role="cell"]').inner_text() == f"L{layer}H{head}"
    assert float(tooltip.locator('[data-role="value"]').inner_text()) == pytest.approx(state["values"][layer][head], abs=1e-3)
    assert float(tooltip.locator('[data-role="clean"]').inner_text()) == pytest.approx(state["clean_m"], abs=1e-3)
    assert float(tooltip.locator('[data-role="corrupted"]').inner_text()) == pytest.approx(state["corr_m"], abs=1e-3)

    # --- click the head: its attention on the clean and the corrupted prompt ------------------------
    page.mouse.click(box["x"] + left + (head + 0.5) * cell, box["y"] + top + (layer + 0.5) * cell)
    panel = view.locator('[data-testid="iw-head-panel"]')
    panel.locator('[data-testid="iw-head-side"]').nth(1).wait_for(timeout=30_000)
    assert panel.get_attribute("data-layer") == str(layer) and panel.get_attribute("data-head") == str(head)
    sides = panel.locator('[data-testid="iw-head-side"]')
    assert [sides.nth(i).get_attribute("data-name") for i in range(2)] == ["clean", "corrupted"]
    for i in range(2):
        c = sides.nth(i).locator('[data-testid="iw-detail-canvas"]')
        assert c.get_attribute("data-layer") == str(layer) and c.get_attribute("data-head") == str(head)
        assert c.get_attribute("data-exact") == "1"

    # --- another component: the heatmap is replaced, no cell re-executed -----------------------------
    view.locator('[data-testid="iw-component"]').select_option("resid")
    view.locator('[data-testid="iw-run"]').click()
    _wait_attr(page, 0, '[data-testid="iw-heatmap"]', "data-version", "v === '2'")
    assert heatmap.get_attribute("data-cols") == str(len(clean) + 1)  # BOS + one token per character
    assert "resid_pre" in heatmap.get_attribute("data-title")
    assert panel.is_hidden()  # the old head panel went with the old result
    assert lab.run_code("print(w.last_result.sites, tuple(w.last_result.values.shape))") == f"resid_pre (2, {len(clean) + 1})\n"

    # --- prompts of different token lengths: a clear error in the widget, the kernel still usable ---
    view.locator('[data-testid="iw-corrupted"]').fill(corrupted + "x")
    view.locator('[data-testid="iw-run"]').click()
    error = view.locator('[data-testid="iw-error"]')
    page.wait_for_function("(sel) => (document.querySelector(sel)?.textContent || '').length > 0",
                           arg=f"{LIVE} [data-testid='iw-error']", timeout=30_000)
    text = error.inner_text()
    assert "InputMismatchError" in text
    assert re.search(rf"clean has {len(clean) + 1} tokens, corrupted has {len(clean) + 2}", text), text
    assert heatmap.get_attribute("data-version") == "2"  # the last good result stays
    assert lab.run_code("print(6 * 7, w.status['state'], w.running)") == "42 done False\n"
    assert view.locator('[data-testid="iw-run"]').is_enabled()

    # --- a long run: progress shows, Cancel stops it, the kernel answers meanwhile -----------------
    view2 = _view(page, 1)
    view2.wait_for(timeout=60_000)
    view2.locator('[data-testid="iw-run"]').click()
    _wait_attr(page, 1, "", "data-state", "v === 'running'", timeout=60_000)
    page.wait_for_function(
        """(live) => { const r = document.querySelectorAll(live)[1];
                       const p = r && r.querySelector("[data-testid='iw-progress']"); return !!p && p.value > 0; }""",
        arg=LIVE, timeout=60_000,
    )
    progress_text = view2.locator('[data-testid="iw-run-status"]').inner_text()
    m = re.search(r"running: (\d+) / (\d+) patched runs", progress_text)
    assert m and 0 < int(m.group(1)) < int(m.group(2)) <= 4 * 241, progress_text
    assert lab.run_code("print(w2.running)") == "True\n"  # the kernel runs cells while the sweep goes on
    view2.locator('[data-testid="iw-cancel"]').click()
    _wait_attr(page, 1, "", "data-state", "v === 'cancelled'", timeout=60_000)
    assert "cancelled after" in view2.locator('[data-testid="iw-run-status"]').inner_text()
    after = json.loads(lab.run_code("print(json.dumps([w2.status, w2.running, w2.last_result is None]))"))
    assert after[0]["state"] == "cancelled" and 0 < after[0]["done"] < after[0]["total"]
    assert after[1:] == [False, True]
    assert view2.locator('[data-testid="iw-heatmap-empty"]').is_visible()
    assert view2.locator('[data-testid="iw-run"]').is_enabled()

    # the kernel is still usable: a new cell runs, and nothing was re-executed by the widget runs
    assert lab.run_code("print(sum(range(10)))") == "45\n"
    assert _execution_counts(lab)[:3] == counts[:3]
    assert not [line for line in page.console_lines if "interp-widget" in line.lower() or "pageerror" in line]


def test_result_displays_as_heatmap_and_snapshot(lab: Any) -> None:
    """``res`` as a cell's value shows the live heatmap; saved and reopened without a kernel, the
    notebook shows the static snapshot of it (the JupyterLab extension mounts it), not "Loading widget..."."""
    page = lab.page
    _forget_workspaces(lab)
    lab.server.write_notebook("result.ipynb", [
        SETUP,
        "from interp_widget.analysis.patching import patch\nfrom interp_widget.analysis.metrics import logit_diff\n"
        "res = patch(small, 'abcdefgabcdefg', 'abcdefgabczefg', logit_diff('e', 'z'), sites='resid_pre')\nres",
    ])
    lab.open("result.ipynb")
    lab.run_all()
    assert lab.errors() == []
    view = _view(page, 0)
    view.wait_for(timeout=60_000)
    heatmap = view.locator('[data-testid="iw-heatmap"]')
    assert (heatmap.get_attribute("data-rows"), heatmap.get_attribute("data-cols")) == ("2", "15")
    assert view.locator('[data-testid="iw-controls"]').is_hidden()  # a bare result: no model to re-run
    expected = float(lab.run_code("print(float(res.values[1, 11]))"))
    canvas = view.locator('[data-testid="iw-heatmap-canvas"]')
    box = canvas.bounding_box()
    cell, left, top = (float(canvas.get_attribute(a)) for a in ("data-cell", "data-left", "data-top"))
    page.mouse.move(box["x"] + left + 11.5 * cell, box["y"] + top + 1.5 * cell)
    assert float(view.locator('[data-role="value"]').inner_text()) == pytest.approx(expected, abs=1e-3)

    lab.save()
    lab.shutdown_kernel()
    lab.close_all()
    lab.open("result.ipynb", no_kernel=True)
    snap = page.locator(f".jp-OutputArea-output {ROOT}[data-mode='static']").first
    snap.wait_for(timeout=30_000)
    static_map = snap.locator('[data-testid="iw-heatmap"]')
    assert (static_map.get_attribute("data-rows"), static_map.get_attribute("data-cols")) == ("2", "15")
    assert "resid_pre" in static_map.get_attribute("data-title")
    assert lab.server.kernels() == [], "opening with no kernel must not have started one"
