"""interp-widget: a microscope for neural networks that lives inside the notebook.

``import interp_widget`` is fast: torch, TransformerLens and nnsight are imported
only when a model is touched.

>>> import interp_widget as iw
>>> model = iw.load("induction-2l")          # doctest: +SKIP
>>> iw.attention(model, "A B C D A B C D")  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from interp_widget._version import __version__
from interp_widget.errors import (
    ContextLengthError,
    InputMismatchError,
    InterpWidgetError,
    ModelLoadError,
    SiteIndexError,
    UnknownSiteError,
)
from interp_widget.server import serve_in_kernel as _serve_in_kernel
from interp_widget.widgets._display import register as _register_displays

if TYPE_CHECKING:
    from interp_widget.analysis.ablation import ablate, ablation_sweep
    from interp_widget.analysis.attribution import attribute
    from interp_widget.analysis.circuits import circuit
    from interp_widget.analysis.heads import head_scores
    from interp_widget.analysis.metrics import kl_divergence, logit_diff, loss, probability
    from interp_widget.analysis.patching import patch
    from interp_widget.analysis.path_patching import path_patch
    from interp_widget.models.loading import load
    from interp_widget.models.model import Model
    from interp_widget.tracing.base import Intervention
    from interp_widget.tracing.sites import Site
    from interp_widget.widgets.attention import attention
    from interp_widget.widgets.heatmap import show
    from interp_widget.widgets.patching import PatchingWidget, patching_widget

# public name -> module that defines it (imported on first use)
_LAZY: dict[str, str] = {
    "load": "interp_widget.models.loading",
    "Model": "interp_widget.models.model",
    "Site": "interp_widget.tracing.sites",
    "Intervention": "interp_widget.tracing.base",
    "head_scores": "interp_widget.analysis.heads",
    "circuit": "interp_widget.analysis.circuits",
    "patch": "interp_widget.analysis.patching",
    "ablate": "interp_widget.analysis.ablation",
    "ablation_sweep": "interp_widget.analysis.ablation",
    "path_patch": "interp_widget.analysis.path_patching",
    "attribute": "interp_widget.analysis.attribution",
    "logit_diff": "interp_widget.analysis.metrics",
    "probability": "interp_widget.analysis.metrics",
    "kl_divergence": "interp_widget.analysis.metrics",
    "loss": "interp_widget.analysis.metrics",
    "attention": "interp_widget.widgets.attention",
    "patching_widget": "interp_widget.widgets.patching",
    "PatchingWidget": "interp_widget.widgets.patching",
    "show": "interp_widget.widgets.heatmap",
}

__all__ = [
    "ContextLengthError",
    "InputMismatchError",
    "InterpWidgetError",
    "Intervention",
    "Model",
    "ModelLoadError",
    "PatchingWidget",
    "Site",
    "SiteIndexError",
    "UnknownSiteError",
    "__version__",
    "ablate",
    "ablation_sweep",
    "attention",
    "attribute",
    "circuit",
    "head_scores",
    "kl_divergence",
    "load",
    "logit_diff",
    "loss",
    "patch",
    "patching_widget",
    "path_patch",
    "probability",
    "save",
    "show",
]


def save(model: Any, path: Any, *, name: str | None = None, card: str | None = None) -> Any:
    """Save a model in interp-widget's own layout; see :func:`interp_widget.models.format.save`.

    A real function rather than a lazy attribute: nnsight mounts a ``save`` method on every
    object once imported, which would shadow a module-level ``__getattr__`` for this name.
    """
    from interp_widget.models.format import save as _save

    return _save(model, path, name=name, card=card)


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        msg = f"module 'interp_widget' has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(mod), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


_serve_in_kernel()  # the side panel's comm target; does nothing outside an ipykernel
_register_displays()  # results display as heatmaps in IPython; does nothing elsewhere


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Where JupyterLab finds the prebuilt extension (for ``jupyter labextension develop``)."""
    return [{"src": "labextension", "dest": "interp-widget"}]
