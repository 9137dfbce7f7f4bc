"""The vision widgets in a real JupyterLab: the layer grid (thumbnail count, a 512-channel layer fetched
when selected, click to enlarge), the tuning-curve widget (hover a point: tooltip with the stimulus
image and the value; click: that stimulus's activations from the kernel; no detail: a clear error),
text stimuli, and the light and dark themes. DOM and kernel state are both checked; render times
measured in Chromium are printed (``-s`` shows them).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.timeout(420)]

NB = "vision_widgets.ipynb"
GRID = ".jp-OutputArea-output [data-testid='iw-vision-grid'][data-mode='live']"
TUNING = ".jp-OutputArea-output [data-testid='iw-tuning'][data-mode='live']"

SETUP = """
import math, torch; torch.set_num_threads(1)
import interp_widget as iw
from interp_widget.analysis.vision.results import LayerGrid, TuningCurves

g = torch.Generator().manual_seed(0)
def grating(theta, size=24, freq=0.2):
    y, x = torch.meshgrid(torch.arange(size) - size / 2, torch.arange(size) - size / 2, indexing="ij")
    t = math.radians(theta)
    v = 0.5 + 0.5 * torch.cos(2 * math.pi * freq * (x * math.cos(t) + y * math.sin(t)))
    return v.expand(3, size, size)

grid = LayerGrid(layers=["conv1", "layer4.1.conv2"],
                 images={"conv1": torch.stack([grating(15 * c) for c in range(8)]),
                         "layer4.1.conv2": torch.rand(512, 3, 16, 16, generator=g)},
                 channels={"conv1": list(range(8)), "layer4.1.conv2": list(range(512))}, seed=0)
thetas = torch.arange(0, 180, 10.0)
prefs = [30.0, 90.0, 150.0]
acts = torch.stack([torch.exp(2 * torch.cos(torch.deg2rad(2 * (thetas - p)))) for p in prefs])
conv1 = {i: torch.rand(8, 6, 6, generator=g) for i in range(len(thetas))}
curves = TuningCurves(param="orientation", unit_of_param="degrees", values=thetas, units=["conv1:1", "conv1:3", "conv1:5"],
                      activations=acts, stimuli=torch.stack([grating(float(t), 32) for t in thetas]), detail=lambda i: {"conv1": conv1[i]})
"""
CELLS = [
    SETUP,
    "w = iw.feature_grid(grid)\nw",
    "tw = iw.tuning_widget(curves)\ntw",
    "bare = TuningCurves(param='orientation', unit_of_param='degrees', values=thetas, units=['a', 'b', 'c'],\n"
    "                    activations=acts, stimuli=curves.stimuli)\ntw2 = iw.tuning_widget(bare)\ntw2",
    "text = TuningCurves(param='number', unit_of_param='', values=torch.arange(5.0), units=['L0.mlp:7'],\n"
    "                    activations=torch.tensor([[0.1, 0.5, 2.0, 0.4, 0.2]]), stimuli=[f'I have {n} apples' for n in range(5)])\n"
    "tw3 = iw.tuning_widget(text)\ntw3",
]


def _forget_workspaces(lab: Any) -> None:
    import contextlib
    import urllib.error

    listed = lab.server.api("GET", "/lab/api/workspaces")
    for ws in (listed.get("workspaces", {}).get("ids", []) if isinstance(listed, dict) else []):
        with contextlib.suppress(urllib.error.URLError):
            lab.server.api("DELETE", f"/lab/api/workspaces/{ws}")


def _wait(page: Any, selector: str, index: int, js: str, timeout: float = 60_000) -> None:
    """Wait until ``js`` (on element ``r``) holds for the ``index``-th element matching ``selector``."""
    page.wait_for_function(f"([sel, i]) => {{ const r = document.querySelectorAll(sel)[i]; return !!r && ({js}); }}",
                           arg=[selector, index], timeout=timeout)


def _py(lab: Any, expr: str) -> Any:
    return json.loads(lab.run_code(f"import json\nprint(json.dumps({expr}))"))


def _point(view: Any, k: int) -> tuple[float, float]:
    dot = view.locator("[data-testid='iw-tuning-svg'] circle").nth(k)
    dot.scroll_into_view_if_needed()
    box = dot.bounding_box()
    assert box is not None
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def test_vision_widgets_in_jupyterlab(lab: Any) -> None:
    page = lab.page
    _forget_workspaces(lab)
    lab.server.write_notebook(NB, CELLS)
    lab.open(NB)
    lab.run_all(timeout_ms=180_000)
    assert lab.errors() == []
    timings: dict[str, float] = {}

    # --- layer grid: thumbnails, a large layer fetched on selection, click enlarges --------------------
    grid = page.locator(GRID).first
    grid.wait_for(timeout=60_000)
    _wait(page, GRID, 0, "r.dataset.count === '8'")
    assert grid.locator("[data-testid='iw-vision-thumb']").count() == 8
    assert grid.locator(".iw-vcell-label").nth(3).inner_text() == "ch 3"
    timings["grid 8 thumbnails"] = float(grid.get_attribute("data-render-ms"))
    grid.locator("[data-testid='iw-vision-layer']").select_option("1")
    _wait(page, GRID, 0, "r.dataset.count === '512' && !r.dataset.loading")
    assert grid.locator("[data-testid='iw-vision-thumb']").count() == 512
    timings["grid 512 thumbnails"] = float(grid.get_attribute("data-render-ms"))
    grid.locator(".iw-vcell").nth(5).click()
    panel = grid.locator("[data-testid='iw-vision-enlarged-panel']")
    panel.wait_for(state="visible", timeout=30_000)
    _wait(page, GRID, 0, "r.querySelector(\"[data-testid='iw-vision-enlarged']\").dataset.full === '1'")
    assert grid.locator("[data-testid='iw-vision-enlarged-label']").inner_text() == "layer4.1.conv2 · ch 5"
    assert _py(lab, "[w.group, w.selected]") == [1, 5]
    # the thumbnail's pixels are the image's (canvas read back in the browser)
    px = page.evaluate(f"""() => {{ const c = document.querySelectorAll("{GRID} [data-testid='iw-vision-thumb']")[5];
        return Array.from(c.getContext('2d').getImageData(2, 1, 1, 1).data.slice(0, 3)); }}""")
    assert px == _py(lab, "[round(float(v) * 255) for v in grid.images['layer4.1.conv2'][5, :, 1, 2]]")

    # --- tuning widget: all points drawn, hover shows the stimulus and the value ------------------------
    tv = page.locator(TUNING).nth(0)
    tv.wait_for(timeout=60_000)
    assert tv.get_attribute("data-points") == str(3 * 18)
    timings["tuning plot 3 x 18"] = float(tv.get_attribute("data-render-ms"))
    k = 18 + 9  # unit 1 (conv1:3) at 90 degrees: its peak
    x, y = _point(tv, k)
    page.mouse.move(x, y)
    tip = tv.locator("[data-testid='iw-tooltip']")
    _wait(page, TUNING, 0, "r.querySelector(\"[data-testid='iw-tooltip']\").dataset.visible === '1'", 10_000)
    stim = tip.locator("[data-testid='iw-tooltip-stimulus']")
    assert stim.is_visible() and stim.get_attribute("data-index") == "9"
    assert tip.locator("[data-role='unit']").inner_text() == "conv1:3"
    assert tip.locator("[data-role='param']").inner_text() == "90"
    assert float(tip.locator("[data-role='value']").inner_text()) == pytest.approx(_py(lab, "float(acts[1, 9])"), rel=1e-3)

    # --- click: the kernel sends that stimulus's activations --------------------------------------------
    x, y = _point(tv, k)  # running code above scrolled the notebook
    page.mouse.click(x, y)
    detail = tv.locator("[data-testid='iw-tuning-detail']")
    detail.locator("[data-testid='iw-detail-layer']").wait_for(timeout=30_000)
    assert detail.get_attribute("data-index") == "9"
    assert detail.locator("[data-testid='iw-detail-layer']").get_attribute("data-layer") == "conv1"
    assert detail.locator("[data-testid='iw-detail-bars'] svg").count() == 1
    assert _py(lab, "tw.selected") == 9
    best = _py(lab, "int(conv1[9].amax(dim=(1, 2)).argmax())")
    first_bar = detail.locator("[data-testid='iw-detail-bars'] svg g[aria-label='y-axis tick label'] text").first
    assert first_bar.text_content() == f"ch {best}"

    # toggle a unit off: its points go, Python sees it
    tv.locator("[data-testid='iw-tuning-unit']").nth(0).uncheck()
    _wait(page, TUNING, 0, f"r.dataset.points === '{2 * 18}'")
    assert _py(lab, "tw.visible") == [False, True, True]

    # --- no detail: a clear error in the view, the kernel fine ---------------------------------------
    tv2 = page.locator(TUNING).nth(1)
    x, y = _point(tv2, 3)
    page.mouse.click(x, y)
    _wait(page, TUNING, 1, "(r.querySelector(\"[data-testid='iw-tuning-error']\").textContent || '').length > 0", 30_000)
    err = tv2.locator("[data-testid='iw-tuning-error']").inner_text()
    assert err.startswith("InputMismatchError: ") and "no per-stimulus activations" in err
    assert lab.run_code("print(6 * 7)") == "42\n"

    # --- text stimuli: the prompt in the tooltip ------------------------------------------------------
    tv3 = page.locator(TUNING).nth(2)
    x, y = _point(tv3, 2)
    page.mouse.move(x, y)
    _wait(page, TUNING, 2, "!!r.querySelector(\"[data-testid='iw-tooltip-prompt']\")", 10_000)
    assert tv3.locator("[data-testid='iw-tooltip-prompt']").inner_text() == "I have 2 apples"

    # --- theme: the views follow JupyterLab light / dark ----------------------------------------------
    def colours() -> dict[str, str]:
        return page.evaluate(f"""() => {{ const r = document.querySelector("{TUNING}");
            const t = r.querySelector("[data-testid='iw-tuning-svg'] g[aria-label='x-axis tick label']");
            return {{ bg: getComputedStyle(r).backgroundColor, axis: getComputedStyle(t).color,
                      cell: getComputedStyle(document.querySelector("{GRID}")).backgroundColor }}; }}""")

    light = colours()
    page.evaluate("async () => { await window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'}); }")
    page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'", timeout=30_000)
    page.wait_for_timeout(500)
    dark = colours()

    def lum(css: str) -> float:
        r, g, b = (float(v) for v in css[css.index("(") + 1:css.index(")")].split(",")[:3])
        return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255

    assert lum(light["bg"]) > 0.5 > lum(dark["bg"]) and lum(dark["cell"]) < 0.5
    assert lum(light["axis"]) < 0.5 < lum(dark["axis"])  # axis text redrawn in the theme's colour
    page.evaluate("async () => { await window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Light'}); }")

    assert not [line for line in page.console_lines if "interp-widget" in line.lower() or "pageerror" in line]
    print("\nrender times in Chromium (ms):", json.dumps(timings))


def test_static_pages_render_offline(lab: Any, tmp_path: Any) -> None:
    """The snapshots' HTML in a page of its own (no kernel, no JupyterLab): the grid and the plot render and hover."""
    page = lab.page
    out = tmp_path / "snap.html"
    code = (SETUP + "\nhtml = iw.feature_grid(grid).snapshot_html() + iw.tuning_widget(curves).snapshot_html()\n"
            f"open({str(out)!r}, 'w').write('<!doctype html><html><body>' + html + '</body></html>')\n")
    lab.server.write_notebook("snap.ipynb", [code])
    lab.open("snap.ipynb")
    lab.run_all()
    assert lab.errors() == []
    page.goto(out.as_uri())
    grid = page.locator("[data-testid='iw-vision-grid'][data-mode='static']")
    grid.wait_for(timeout=30_000)
    assert grid.locator("[data-testid='iw-vision-thumb']").count() == 8
    tv = page.locator("[data-testid='iw-tuning'][data-mode='static']")
    assert tv.get_attribute("data-points") == str(3 * 18)
    x, y = _point(tv, 5)
    page.mouse.move(x, y)
    tv.locator("[data-testid='iw-tooltip-stimulus']").wait_for(timeout=10_000)


SHAPES = """
import torch; torch.set_num_threads(1)
import interp_widget as iw
from interp_widget.analysis.vision import ShapesDataset, dataset_examples, layer_overview, tuning
cnn = iw.load("shapes-cnn")
"""


def test_shapes_cnn_results_display_as_widgets(lab: Any) -> None:
    """The analyses' own results (``layer_overview``, ``tuning``, ``dataset_examples`` on the shapes-cnn zoo
    model) shown as a cell's value: the grid, the tuning plot with hover and click, the examples grid."""
    page = lab.page
    _forget_workspaces(lab)
    lab.server.write_notebook("shapes.ipynb", [
        SHAPES,
        "overview = layer_overview(cnn, max_channels=8, steps=8, size=32)\noverview",
        "tc = tuning(cnn, ['conv1:2', 'conv1:10', 'conv1:15'], 'grating', list(range(0, 180, 10)))\ntc",
        "ex = dataset_examples(cnn, 'conv2:5', ShapesDataset(200), k=6)\nex",
    ])
    lab.open("shapes.ipynb")
    lab.run_all(timeout_ms=180_000)
    assert lab.errors() == []
    grid = page.locator(GRID).nth(0)
    grid.wait_for(timeout=60_000)
    _wait(page, GRID, 0, "r.dataset.count === '8'")
    assert grid.locator("[data-testid='iw-vision-layer'] option").all_inner_texts() == ["conv1 (8)", "conv2 (8)", "conv3 (8)"]
    grid.locator("[data-testid='iw-vision-layer']").select_option("2")
    _wait(page, GRID, 0, "r.dataset.group === '2' && r.dataset.count === '8'")

    tv = page.locator(TUNING).first
    assert tv.get_attribute("data-points") == str(3 * 18)
    peaks = _py(lab, "tc.peaks().tolist()")
    pk = int(_py(lab, "int(tc.activations[0].argmax())"))
    x, y = _point(tv, pk)  # unit 0 at its peak
    page.mouse.move(x, y)
    tip = tv.locator("[data-testid='iw-tooltip']")
    tip.locator("[data-testid='iw-tooltip-stimulus']").wait_for(timeout=10_000)
    assert tip.locator("[data-role='unit']").inner_text() == "conv1:2"
    assert float(tip.locator("[data-role='param']").inner_text()) == peaks[0]
    page.mouse.click(x, y)
    layer = tv.locator("[data-testid='iw-detail-layer']")
    layer.wait_for(timeout=30_000)
    assert layer.get_attribute("data-layer") == "conv1"
    assert layer.locator("[data-testid='iw-detail-strip']").get_attribute("data-n") == "16"

    ex = page.locator(GRID).nth(1)
    assert ex.get_attribute("data-kind") == "dataset_examples"
    _wait(page, GRID, 1, "r.dataset.count === '6'")
    first = ex.locator(".iw-vcell-label").first.inner_text()
    assert first.startswith(f"#{_py(lab, 'int(ex.indices[0])')} · ")
