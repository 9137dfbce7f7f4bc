"""The circuit graph widget in a real JupyterLab: a GPT-2-small-shaped graph (158 nodes, 32k edges with
seeded random scores) renders every node; moving the threshold slider removes edges with no message to
the kernel (counted in the kernel and on the page's websocket); clicking a node opens its detail; SVG and
PNG export download files. A small real graph discovered with iw.circuit on the zoo model induction-2l
(displayed straight from the CircuitGraph) asks the kernel for the faithfulness of a selection and for a
head's attention pattern; the numbers match Python's."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.timeout(420)]

NB = "circuit_widget.ipynb"
ROOT = "[data-testid='iw-circuit']"
LIVE = f".jp-OutputArea-output {ROOT}[data-mode='live']"

SETUP = """
import warnings; warnings.filterwarnings("ignore")
import torch; torch.set_num_threads(1)
import interp_widget as iw
from interp_widget.analysis.circuits import CircuitGraph, EdgeIndex

# every comm message the front end sends to this kernel
COMM = []
_kernel = get_ipython().kernel
_handle = _kernel.shell_handlers["comm_msg"]
def _count(*args, **kwargs):
    COMM.append(1)
    return _handle(*args, **kwargs)
_kernel.shell_handlers["comm_msg"] = _count

ix = EdgeIndex.build(12, 12, True)  # GPT-2 small: input + 144 heads + 12 MLPs + logits
g = torch.Generator().manual_seed(0)
n = len(ix.edges)
scores = torch.randn(n, generator=g) * torch.rand(n, generator=g) ** 4
big = CircuitGraph(ix, scores, torch.ones(n, dtype=torch.bool), "eap", "logit diff", 2.0, 0.5)
"""
BIG = "w = iw.circuit_widget(big, top_k=300, title='GPT-2 small, random scores')\nw"
SMALL = """
from interp_widget.analysis.metrics import loss
model = iw.load("induction-2l")
gen = torch.Generator().manual_seed(0)
R = 12
first = torch.randint(2, 72, (2, R), generator=gen)
other = torch.randint(2, 72, (2, R), generator=gen)
bos = torch.zeros(2, 1, dtype=torch.long)
clean, corrupted = torch.cat([bos, first, first], 1), torch.cat([bos, other, first], 1)
small = iw.circuit(model, clean, corrupted, loss(positions=slice(R + 3, None)), method="eap")
small
"""


BIG_TITLE = "GPT-2 small, random scores"
SMALL_TITLE = "circuit · eap · loss"
# the live view with a given title (JupyterLab may re-attach outputs, so views are found by title, not order)
FIND = """(live, title) => [...document.querySelectorAll(live)].find(
    (r) => r.querySelector("[data-testid='iw-circuit-title']").textContent === title)"""


def _view(page: Any, title: str) -> Any:
    return page.locator(LIVE).filter(has=page.locator("[data-testid='iw-circuit-title']", has_text=title))


def _drawn(page: Any, title: str) -> int:
    """Edge paths shown in the live view titled ``title`` (counted in the DOM)."""
    return int(page.evaluate(
        f"""([live, title]) => [...({FIND})(live, title).querySelectorAll("[data-testid='iw-circuit-edge']")]
                         .filter((p) => p.getAttribute('display') !== 'none').length""", [LIVE, title]))


def test_circuit_graph_in_jupyterlab(lab: Any, tmp_path: Any) -> None:
    page = lab.page
    frames: list[str] = []  # comm messages the page sends over the kernel websocket

    def on_ws(ws: Any) -> None:
        def sent(payload: Any) -> None:
            data = payload if isinstance(payload, str) else bytes(payload).decode("utf-8", "replace")
            if '"comm_msg"' in data:
                frames.append(data)
        ws.on("framesent", sent)

    page.on("websocket", on_ws)
    lab.server.write_notebook(NB, [SETUP, BIG, SMALL])
    lab.open(NB)
    lab.run_all(timeout_ms=240_000)
    assert lab.errors() == []
    view = _view(page, BIG_TITLE)
    view.wait_for(timeout=60_000)
    view.locator("[data-testid='iw-circuit-svg']").wait_for(timeout=60_000)

    # --- 158 nodes; the top-k edges drawn ----------------------------------------------------------------
    nodes = view.locator("[data-testid='iw-circuit-node']")
    assert nodes.count() == 158
    assert view.get_attribute("data-nodes") == "158"
    assert int(view.get_attribute("data-drawn")) == 300 == _drawn(page, BIG_TITLE)
    render_ms, layout_ms = float(view.get_attribute("data-render-ms")), float(view.get_attribute("data-layout-ms"))
    print(f"\n158-node graph: first render {render_ms:.0f} ms (dagre layout {layout_ms:.0f} ms), 300 edges drawn")

    # --- the threshold slider prunes in the browser: no kernel message -------------------------------------
    comm_before = int(lab.run_code("print(len(COMM))"))
    frames_before = len(frames)
    slider = view.locator("[data-testid='iw-threshold']")
    slider.scroll_into_view_if_needed()
    box = slider.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + box["width"] * 0.93, box["y"] + box["height"] / 2)
    page.wait_for_function(f"([live, t]) => Number(({FIND})(live, t).dataset.drawn) < 300", arg=[LIVE, BIG_TITLE],
                           timeout=10_000)
    after_click = int(view.get_attribute("data-drawn"))
    assert 0 < after_click < 300
    assert _drawn(page, BIG_TITLE) == after_click
    assert f"{after_click} drawn" in view.locator("[data-testid='iw-edge-count']").inner_text()
    slider.focus()
    for _ in range(20):
        page.keyboard.press("ArrowRight")
    fewer = int(view.get_attribute("data-drawn"))
    assert fewer <= after_click and _drawn(page, BIG_TITLE) == fewer
    faded = view.locator("[data-testid='iw-circuit-node'][data-faded='1']").count()
    assert faded > 0  # nodes without a drawn edge fade
    # the Python pruning with the threshold shown agrees with the page
    shown = view.locator("[data-testid='iw-threshold-value']").inner_text()
    view.locator("[data-testid='iw-topk']").fill("0")  # no top-k: only the threshold
    no_k = int(view.get_attribute("data-drawn"))
    page.wait_for_timeout(500)
    assert int(lab.run_code("print(len(COMM))")) == comm_before  # the kernel received nothing
    assert len(frames) == frames_before
    py = int(lab.run_code("print(len(w.kept_edges(threshold=float(" + repr(shown) + "), top_k=0)))"))
    assert abs(py - no_k) <= 2  # the page shows the threshold rounded to 4 digits
    view.locator("[data-testid='iw-topk']").fill("300")
    slider.fill("0")
    assert int(view.get_attribute("data-drawn")) == 300

    # --- hover an edge, click a node: its detail ------------------------------------------------------------
    # move the mouse onto the strongest edge (drawn on top of the others), away from the nodes
    point = page.evaluate(
        f"""([live, t]) => {{ const p = ({FIND})(live, t).querySelector("[data-testid='iw-circuit-edge'][data-e='0']");
                       p.scrollIntoView({{block: 'center'}}); const len = p.getTotalLength(); const m = p.getScreenCTM();
                       for (const f of [0.5, 0.4, 0.6, 0.3, 0.7]) {{ const q = p.getPointAtLength(len * f);
                         const x = m.a * q.x + m.c * q.y + m.e, y = m.b * q.x + m.d * q.y + m.f;
                         if (document.elementFromPoint(x, y) === p) return [x, y]; }}
                       return null; }}""", [LIVE, BIG_TITLE])
    assert point is not None, "no point of the strongest edge is uncovered"
    page.mouse.move(point[0], point[1])
    tip = view.locator("[data-testid='iw-tooltip']")
    tip.wait_for(state="visible", timeout=10_000)
    top = json.loads(lab.run_code("import json\nprint(json.dumps([w.kept_edges(0.0, 1)[0], "
                                  "float(big.score(w.kept_edges(0.0, 1)[0]))]))"))
    edge_text = tip.locator("[data-role='edge']").inner_text().replace(" → ", "->")
    assert edge_text == top[0]
    assert float(tip.locator("[data-role='score']").inner_text()) == pytest.approx(top[1], abs=1e-4)
    sender = top[0].split("->")[0]
    view.locator(f"[data-testid='iw-circuit-node'][data-name='{sender}']").click()
    detail = view.locator("[data-testid='iw-node-detail']")
    detail.wait_for(state="visible", timeout=10_000)
    assert detail.get_attribute("data-node") == sender
    assert detail.locator("[data-role='outgoing'] tr").first.get_attribute("data-e") == "0"
    assert view.locator("[data-testid='iw-node-attention']").is_disabled()  # no model behind this graph

    # --- export SVG and PNG ------------------------------------------------------------------------------------
    with page.expect_download(timeout=30_000) as dl:
        view.locator("[data-testid='iw-export-svg']").click()
    assert dl.value.suggested_filename == "circuit.svg"
    svg_path = tmp_path / "circuit.svg"
    dl.value.save_as(svg_path)
    text = svg_path.read_text()
    assert text.startswith("<?xml") and "<svg" in text and 'xmlns="http://www.w3.org/2000/svg"' in text
    assert text.count('data-testid="iw-circuit-node"') == 158
    assert len(re.findall(r'data-testid="iw-circuit-edge"', text)) == 300
    assert ">L11H11<" in text and ">logits<" in text
    with page.expect_download(timeout=30_000) as dl:
        view.locator("[data-testid='iw-export-png']").click()
    assert dl.value.suggested_filename == "circuit.png"
    png_path = tmp_path / "circuit.png"
    dl.value.save_as(png_path)
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # --- zoom and pan: all in the page --------------------------------------------------------------------------
    comm_zoom = int(lab.run_code("print(len(COMM))"))
    scroller = view.locator("[data-testid='iw-circuit-graph']")
    svg = view.locator("[data-testid='iw-circuit-svg']")
    natural = float(svg.get_attribute("width"))
    view.locator("[data-testid='iw-zoom-fit']").click()
    fit_w = float(svg.get_attribute("width"))
    assert fit_w <= scroller.evaluate("e => e.clientWidth") + 1 and fit_w <= natural
    scroller.scroll_into_view_if_needed()
    box = scroller.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 40)
    page.keyboard.down("Control")
    page.mouse.wheel(0, -600)  # ctrl + wheel up: zoom in around the pointer
    page.keyboard.up("Control")
    page.wait_for_function(f"([live, t]) => Number(({FIND})(live, t).dataset.zoom) > 2", arg=[LIVE, BIG_TITLE],
                           timeout=10_000)
    assert float(svg.get_attribute("width")) > 2 * natural * 0.99
    # drag the background: the view pans (the band labels' column at the left edge holds no node)
    left0 = scroller.evaluate("e => e.scrollLeft")
    page.mouse.move(box["x"] + 4, box["y"] + 20)
    page.mouse.down()
    page.mouse.move(box["x"] + 4 - 150, box["y"] + 20, steps=5)
    page.mouse.up()
    assert scroller.evaluate("e => e.scrollLeft") == pytest.approx(left0 + 150, abs=2)
    view.locator("[data-testid='iw-zoom-fit']").click()
    assert int(lab.run_code("print(len(COMM))")) == comm_zoom  # the kernel heard nothing

    # --- the drawing cap: 2000 edges --------------------------------------------------------------------------
    t0 = time.monotonic()
    lab.run_code("w.top_k = 0")
    page.wait_for_function(f"([live, t]) => ({FIND})(live, t).dataset.drawn === '2000'", arg=[LIVE, BIG_TITLE],
                           timeout=30_000)
    assert _drawn(page, BIG_TITLE) == 2000
    assert "at most 2,000 are drawn" in view.locator("[data-testid='iw-edge-count']").inner_text()
    ms = page.evaluate(
        f"""([live, t]) => {{ const s = ({FIND})(live, t).querySelector("[data-testid='iw-threshold']");
                       const ms = []; for (const v of [600, 0, 600, 0]) {{ const t0 = performance.now(); s.value = String(v);
                       s.dispatchEvent(new Event('input')); ms.push(performance.now() - t0); }} return ms; }}""",
        [LIVE, BIG_TITLE])
    print(f"2000 drawn edges: shown {time.monotonic() - t0:.2f} s after the trait change; slider updates "
          f"{', '.join(f'{m:.0f}' for m in ms)} ms")

    # --- a real graph: faithfulness of a selection, a head's attention -------------------------------------------
    small = _view(page, SMALL_TITLE)
    small.wait_for(timeout=60_000)
    assert small.locator("[data-testid='iw-circuit-node']").count() == 1 + 2 * 4 + 1  # induction-2l: 2 x 4 heads
    small.locator("[data-testid='iw-topk']").fill("10")
    small.locator("[data-testid='iw-select-visible']").click()
    kept = json.loads(lab.run_code("print(json.dumps(small.top(10).edge_names()))"))
    drop = next(e.split("->")[0] for e in kept if e.split("->")[0] != "input")
    small.locator(f"[data-testid='iw-circuit-node'][data-name='{drop}']").click(modifiers=["Shift"])  # deselect one
    ends = {n for e in kept for n in (e.split("->")[0], e.split("->")[1].split(".")[0])}
    assert small.get_attribute("data-selected") == str(len(ends - {"input", "logits", drop}))
    faith = small.locator("[data-testid='iw-faithfulness']")
    assert faith.is_enabled()
    comm_before = int(lab.run_code("print(len(COMM))"))
    faith.click()
    page.wait_for_function(
        f"""([live, t]) => ['done', 'error'].includes(
              ({FIND})(live, t).querySelector("[data-testid='iw-faith-result']").dataset.state)""",
        arg=[LIVE, SMALL_TITLE], timeout=120_000)
    out = small.locator("[data-testid='iw-faith-result']")
    assert out.get_attribute("data-state") == "done", small.locator("[data-testid='iw-error']").inner_text()
    assert int(lab.run_code("print(len(COMM))")) > comm_before  # this one did go to the kernel
    # the sub-circuit: the top-10 edges whose ends are both selected (input and logits always are)
    sub = [e for e in kept if drop not in (e.split("->")[0], e.split("->")[1].split(".")[0])]
    assert 0 < len(sub) < len(kept)
    want = json.loads(lab.run_code(f"f = small.faithfulness({sub!r})\nprint(json.dumps([f['fraction'], {len(sub)}]))"))
    assert int(out.get_attribute("data-n-edges")) == want[1]
    assert float(out.get_attribute("data-fraction")) == pytest.approx(want[0], abs=1e-4)
    assert "faithfulness" in out.inner_text()
    small.locator("[data-testid='iw-circuit-node'][data-name='L1H3']").click()  # the induction head
    small.locator("[data-testid='iw-node-attention']").click()
    panel = small.locator("[data-testid='iw-head-panel']")
    panel.locator("[data-testid='iw-head-side']").first.wait_for(timeout=60_000)
    assert panel.get_attribute("data-layer") == "1" and panel.get_attribute("data-head") == "3"
    assert panel.locator("[data-testid='iw-detail-canvas']").first.get_attribute("data-exact") == "1"
    assert lab.run_code("print(6 * 7)") == "42\n"
    assert not [line for line in page.console_lines if "pageerror" in line], page.console_lines

    # --- saved and reopened without a kernel: the static snapshot (the same view, no kernel) ----------------
    lab.save()
    lab.shutdown_kernel()
    lab.close_all()
    lab.open(NB, no_kernel=True)
    snap = page.locator(f".jp-OutputArea-output {ROOT}[data-mode='static']").filter(
        has=page.locator("[data-testid='iw-circuit-title']", has_text=BIG_TITLE))
    snap.wait_for(timeout=60_000)
    assert snap.locator("[data-testid='iw-circuit-node']").count() == 158
    assert snap.get_attribute("data-drawn") == "300"  # the pruning when it was displayed
    snap.locator("[data-testid='iw-topk']").fill("12")
    assert snap.get_attribute("data-drawn") == "12"  # still prunes, with no kernel
    assert snap.locator("[data-testid='iw-faithfulness']").is_disabled()
