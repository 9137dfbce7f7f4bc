"""Notebook display of results: a SweepResult or HeadScores shows as an interactive heatmap.

:func:`register` adds a mime-bundle printer for the result classes to IPython's display formatter
(by module and class name, so nothing is imported until a result is displayed): the analysis layer
stays free of widget code, and a result still has its plain ``repr`` outside a notebook. It is
called by ``import interp_widget`` and does nothing where IPython is not running.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

log = logging.getLogger(__name__)

#: (module, class) of every result that displays as a heatmap (subclasses included)
RESULT_TYPES: tuple[tuple[str, str], ...] = (
    ("interp_widget.analysis.results", "SweepResult"),
    ("interp_widget.analysis.heads", "HeadScores"),
)


def _printer(obj: Any) -> Any:
    try:
        from interp_widget.widgets.heatmap import result_mimebundle

        return result_mimebundle(obj)
    except Exception:  # never break display: fall back to the plain repr
        log.warning("interp-widget could not draw %s as a heatmap", type(obj).__name__, exc_info=True)
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
