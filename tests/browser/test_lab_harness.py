"""The harness itself: a notebook runs in the real JupyterLab and its kernel sees this checkout."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.browser


def test_notebook_runs_and_kernel_imports_package(lab: Any) -> None:
    lab.server.write_notebook("harness.ipynb", ["x = 6 * 7\nprint('answer', x)", "import interp_widget\nprint(interp_widget.__version__)"])
    lab.open("harness.ipynb")
    lab.run_all()
    assert lab.errors() == []
    assert lab.outputs(0)[0]["text"] == "answer 42\n"
    assert lab.run_code("print(x + 1)") == "43\n"
