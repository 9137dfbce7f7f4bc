"""The superposition widget in a real JupyterLab: the sparsity slider drives the Python trait (and the drawing),
and setting the trait from Python moves the slider."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

NB = "superposition_lab.ipynb"
VIEW = ".jp-OutputArea-output .iw-superposition"

SETUP = "import interp_widget as iw\nw = iw.superposition_widget()\nw"


def test_sparsity_slider_and_python_trait_stay_in_step(lab: Any) -> None:
    lab.server.write_notebook(NB, [SETUP])
    lab.open(NB)
    lab.run_all()
    assert lab.errors() == []
    page = lab.page
    view = page.locator(VIEW).first
    view.wait_for(timeout=60_000)
    assert view.get_attribute("data-selected") == "1"  # S = 0.7: the first sparsity in superposition
    assert view.locator("[data-role='gram'] rect").count() == 400
    bars = view.locator("[data-role='bars'] rect[data-represented='1']")
    assert bars.count() == 7
    # click the slider's track at the 4th of its 6 stops (S = 0.97): a real input event
    slider = view.locator("[data-role='sparsity']")
    box = slider.bounding_box()
    assert box is not None
    slider.click(position={"x": box["width"] * 3 / 5, "y": box["height"] / 2})
    page.wait_for_function(f"() => document.querySelector({VIEW!r}).dataset.selected === '3'", timeout=20_000)
    assert "S = 0.97" in view.locator("[data-role='sparsity-label']").inner_text()
    assert bars.count() == 10
    page.wait_for_timeout(500)
    assert lab.run_code("print(w.selected, w.sparsity)") == "3 0.97\n"
    # Python -> view
    lab.run_code("w.select_sparsity(0.0)")
    page.wait_for_function(f"() => document.querySelector({VIEW!r}).dataset.selected === '0'", timeout=20_000)
    assert bars.count() == 5
    assert slider.input_value() == "0"
