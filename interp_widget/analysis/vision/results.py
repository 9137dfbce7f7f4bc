"""Result objects of the vision analyses (the contract between ``analysis.vision`` and ``widgets.vision``).

Every result is plain tensors plus labels: inspectable, savable, and rendered by the widgets
(``iw.show(result)`` or displaying it in a notebook) without recomputation.
Images are float tensors in [0, 1], layout ``[n, 3, H, W]`` (grey images are repeated to 3 channels).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


@dataclass
class FeatureVisResult:
    """Optimised inputs for one or more objectives (``feature_vis``).

    ``images[i]`` maximises ``labels[i]`` (e.g. ``"conv2:5"`` channel, ``"conv2:5@3,4"`` neuron,
    ``"conv2·dir"`` direction, or a sum written ``"conv2:5 + conv3:1"``); with ``diversity`` a label
    repeats once per batch element. ``losses[i, t]``: the objective's value at step ``t`` (higher is better).
    """

    images: torch.Tensor  # [n, 3, H, W] in [0, 1]
    labels: list[str]
    losses: torch.Tensor  # [n, steps]
    seed: int
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass
class LayerGrid:
    """A feature-visualisation overview: one image per channel for each conv layer (``layer_overview``)."""

    layers: list[str]  # module paths, e.g. "conv1", "layer1.0.conv2"
    images: dict[str, torch.Tensor]  # layer -> [n_channels_shown, 3, H, W] in [0, 1]
    channels: dict[str, list[int]]  # layer -> the channel index of each image
    seed: int
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass
class DatasetExamples:
    """Top-activating dataset images (or crops around the argmax, for spatial units) of one unit."""

    unit: str
    images: torch.Tensor  # [k, 3, h, w] in [0, 1]
    activations: torch.Tensor  # [k]
    indices: torch.Tensor  # [k] dataset indices
    boxes: torch.Tensor | None = None  # [k, 4] (y0, x0, y1, x1) crop boxes in the source image, or None


@dataclass
class TuningCurves:
    """Each unit's activation as a stimulus parameter is swept (``tuning``): the joint tuning view.

    ``activations[u, i]``: unit ``units[u]`` on stimulus ``i`` (parameter value ``values[i]``).
    ``stimuli``: the stimulus images ``[n_values, 3, H, W]`` in [0, 1], or for language models the
    prompt strings. ``detail(i)`` recomputes what the widget opens when a point is clicked: the
    activations of the units' layers for stimulus ``i`` (layer -> tensor); None when not available.
    """

    param: str  # "orientation", "curvature", "position", "frequency", "token", ...
    unit_of_param: str  # "degrees", "1/px", "", ...
    values: torch.Tensor  # [n_values]
    units: list[str]
    activations: torch.Tensor  # [n_units, n_values]
    stimuli: torch.Tensor | list[str]
    detail: Callable[[int], dict[str, torch.Tensor]] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def peaks(self) -> torch.Tensor:
        """The parameter value at which each unit responds most: ``[n_units]``."""
        return self.values[self.activations.argmax(dim=1)]
