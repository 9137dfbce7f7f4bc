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
    from interp_widget.analysis.activation_store import ActivationStore, capture_activations
    from interp_widget.analysis.attribution import attribute
    from interp_widget.analysis.circuits import circuit
    from interp_widget.analysis.decompose import decompose
    from interp_widget.analysis.features import feature_view
    from interp_widget.analysis.heads import head_scores
    from interp_widget.analysis.metrics import kl_divergence, logit_diff, loss, probability
    from interp_widget.analysis.neurons import logit_effects, neuron, top_examples
    from interp_widget.analysis.patching import patch
    from interp_widget.analysis.path_patching import path_patch
    from interp_widget.analysis.probes import ProbeResult, train_probes
    from interp_widget.analysis.sae import SAEResult, load_sae, train_sae
    from interp_widget.analysis.steering import mean_difference, steer, steering_effect
    from interp_widget.analysis.superposition import SuperpositionResult, superposition
    from interp_widget.analysis.vision import dataset_examples, feature_vis, layer_overview, tuning
    from interp_widget.models.loading import load
    from interp_widget.models.model import Model
    from interp_widget.remote import remote
    from interp_widget.tracing.base import Intervention
    from interp_widget.tracing.sites import Site
    from interp_widget.widgets.attention import attention
    from interp_widget.widgets.circuit import CircuitWidget, circuit_widget
    from interp_widget.widgets.features import feature_dashboard
    from interp_widget.widgets.heatmap import show
    from interp_widget.widgets.patching import PatchingWidget, patching_widget
    from interp_widget.widgets.steering import steering_widget
    from interp_widget.widgets.vision import TuningWidget, VisionGridWidget, feature_grid, tuning_widget

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
    "feature_vis": "interp_widget.analysis.vision",
    "layer_overview": "interp_widget.analysis.vision",
    "tuning": "interp_widget.analysis.vision",
    "dataset_examples": "interp_widget.analysis.vision",
    "steer": "interp_widget.analysis.steering",
    "steering_effect": "interp_widget.analysis.steering",
    "mean_difference": "interp_widget.analysis.steering",
    "feature_dashboard": "interp_widget.widgets.features",
    "feature_view": "interp_widget.analysis.features",
    "steering_widget": "interp_widget.widgets.steering",
    "circuit_widget": "interp_widget.widgets.circuit",
    "CircuitWidget": "interp_widget.widgets.circuit",
    "feature_grid": "interp_widget.widgets.vision",
    "tuning_widget": "interp_widget.widgets.vision",
    "VisionGridWidget": "interp_widget.widgets.vision",
    "TuningWidget": "interp_widget.widgets.vision",
    "capture_activations": "interp_widget.analysis.activation_store",
    "ActivationStore": "interp_widget.analysis.activation_store",
    "train_sae": "interp_widget.analysis.sae",
    "load_sae": "interp_widget.analysis.sae",
    "SAEResult": "interp_widget.analysis.sae",
    "train_probes": "interp_widget.analysis.probes",
    "ProbeResult": "interp_widget.analysis.probes",
    "superposition": "interp_widget.analysis.superposition",
    "SuperpositionResult": "interp_widget.analysis.superposition",
    "superposition_widget": "interp_widget.widgets.superposition",
    "neuron": "interp_widget.analysis.neurons",
    "top_examples": "interp_widget.analysis.neurons",
    "logit_effects": "interp_widget.analysis.neurons",
    "decompose": "interp_widget.analysis.decompose",
    "remote": "interp_widget.remote",
}

__all__ = [
    "ActivationStore",
    "CircuitWidget",
    "ContextLengthError",
    "InputMismatchError",
    "InterpWidgetError",
    "Intervention",
    "Model",
    "ModelLoadError",
    "PatchingWidget",
    "ProbeResult",
    "SAEResult",
    "Site",
    "SiteIndexError",
    "SuperpositionResult",
    "TuningWidget",
    "UnknownSiteError",
    "VisionGridWidget",
    "__version__",
    "ablate",
    "ablation_sweep",
    "attention",
    "attribute",
    "capture_activations",
    "circuit",
    "circuit_widget",
    "dataset_examples",
    "decompose",
    "feature_dashboard",
    "feature_grid",
    "feature_view",
    "feature_vis",
    "head_scores",
    "kl_divergence",
    "layer_overview",
    "load",
    "load_sae",
    "logit_diff",
    "logit_effects",
    "loss",
    "mean_difference",
    "neuron",
    "patch",
    "patching_widget",
    "path_patch",
    "probability",
    "remote",
    "save",
    "show",
    "steer",
    "steering_effect",
    "steering_widget",
    "superposition",
    "superposition_widget",
    "top_examples",
    "train_probes",
    "train_sae",
    "tuning",
    "tuning_widget",
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
