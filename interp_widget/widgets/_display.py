"""Notebook display of results: each result class shows as its widget (a SweepResult or HeadScores as an
interactive heatmap, a CircuitGraph as the circuit graph, vision results as image grids or tuning curves, ...).

:func:`register` adds a mime-bundle printer for the result classes to IPython's display formatter
(by module and class name, so nothing is imported until a result is displayed): the analysis layer
stays free of widget code, and a result still has its plain ``repr`` outside a notebook. It is
called by ``import interp_widget`` and does nothing where IPython is not running.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

#: (module, class) of every result that displays as a widget (subclasses included) ->
#: "widget module:function" returning its ``(data, metadata)`` mime bundle
DISPLAYS: dict[tuple[str, str], str] = {
    ("interp_widget.analysis.results", "SweepResult"): "interp_widget.widgets.heatmap:result_mimebundle",
    ("interp_widget.analysis.heads", "HeadScores"): "interp_widget.widgets.heatmap:result_mimebundle",
    # vision results: an image grid or the tuning-curve widget
    **{("interp_widget.analysis.vision.results", name): "interp_widget.widgets.vision:result_mimebundle"
       for name in ("LayerGrid", "FeatureVisResult", "DatasetExamples", "TuningCurves")},
    # a circuit: the circuit graph widget
    ("interp_widget.analysis.circuits.graph", "CircuitGraph"): "interp_widget.widgets.circuit:circuit_mimebundle",
    # a steering result: base and steered generations side by side
    ("interp_widget.analysis.steering", "SteeringResult"): "interp_widget.widgets.steering:result_mimebundle",
    # toy-model superposition: the superposition widget; probe accuracy: a line plot
    ("interp_widget.analysis.superposition", "SuperpositionResult"):
        "interp_widget.widgets.superposition:result_mimebundle",
    ("interp_widget.analysis.probes", "ProbeResult"): "interp_widget.widgets.superposition:result_mimebundle",
}
RESULT_TYPES: tuple[tuple[str, str], ...] = tuple(DISPLAYS)


def widget_bundle(widget: Any, result: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """``widget``'s mime bundle (the live view and its static snapshot), with ``result``'s plain ``repr`` as
    its ``text/plain``."""
    bundle = widget._repr_mimebundle_()
    data, metadata = bundle if isinstance(bundle, tuple) else (bundle or {}, {})
    return {**data, "text/plain": repr(result)}, dict(metadata)


def _bundler(obj: Any) -> Callable[[Any], Any]:
    for klass in type(obj).__mro__:
        target = DISPLAYS.get((klass.__module__, klass.__name__))
        if target is not None:
            module, name = target.split(":")
            return getattr(importlib.import_module(module), name)
    msg = f"interp-widget has no widget for {type(obj).__name__}"
    raise TypeError(msg)


def _printer(obj: Any) -> Any:
    try:
        return _bundler(obj)(obj)
    except Exception:  # never break display: fall back to the plain repr
        log.warning("interp-widget could not draw %s as a widget", type(obj).__name__, exc_info=True)
        return {"text/plain": repr(obj)}, {}


def register(shell: Any = None) -> bool:
    """Register the heatmap display with ``shell`` (default: the running IPython); True if it did."""
    if shell is None:
        if "IPython" not in sys.modules:  # not in IPython: nothing to do, and no import of it
            return False
        from IPython import get_ipython

        shell = get_ipython()
    formatter = getattr(getattr(shell, "display_formatter", None), "mimebundle_formatter", None)
    if formatter is None:
        return False
    for module, name in RESULT_TYPES:
        formatter.for_type_by_name(module, name, _printer)
    return True
