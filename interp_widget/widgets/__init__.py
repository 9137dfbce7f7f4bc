"""interp_widget.widgets: anywidget front ends built from analysis results.

Importing this package imports no torch (nor anywidget until a widget is used).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "AttentionWidget": "interp_widget.widgets.attention",
    "attention": "interp_widget.widgets.attention",
    "PatchingWidget": "interp_widget.widgets.patching",
    "patching_widget": "interp_widget.widgets.patching",
    "show": "interp_widget.widgets.heatmap",
}

__all__ = ["AttentionWidget", "PatchingWidget", "attention", "patching_widget", "show"]


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        msg = f"module 'interp_widget.widgets' has no attribute {name!r}"
        raise AttributeError(msg)
    return getattr(importlib.import_module(mod), name)
