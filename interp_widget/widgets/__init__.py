"""interp_widget.widgets: anywidget front ends built from analysis results.

Importing this package imports no torch (nor anywidget until a widget is used).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "AttentionWidget": "interp_widget.widgets.attention",
    "CircuitWidget": "interp_widget.widgets.circuit",
    "circuit_widget": "interp_widget.widgets.circuit",
    "attention": "interp_widget.widgets.attention",
    "PatchingWidget": "interp_widget.widgets.patching",
    "patching_widget": "interp_widget.widgets.patching",
    "show": "interp_widget.widgets.heatmap",
    "FeatureDashboard": "interp_widget.widgets.features",
    "feature_dashboard": "interp_widget.widgets.features",
    "SteeringWidget": "interp_widget.widgets.steering",
    "steering_widget": "interp_widget.widgets.steering",
}

__all__ = ["AttentionWidget", "CircuitWidget", "FeatureDashboard", "PatchingWidget", "SteeringWidget", "attention",
           "circuit_widget", "feature_dashboard", "patching_widget", "show", "steering_widget"]


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        msg = f"module 'interp_widget.widgets' has no attribute {name!r}"
        raise AttributeError(msg)
    return getattr(importlib.import_module(mod), name)
