"""``shapes-cnn``: a small CNN trained on the synthetic shapes of :mod:`interp_widget.analysis.vision.stimuli`.

Three conv layers (``conv1`` 16 5x5, ``conv2`` 32 3x3, ``conv3`` 48 3x3, ReLU and 2x2 max-pooling
between them), global average pooling and a linear classifier ``fc`` over
:data:`~interp_widget.analysis.vision.stimuli.CLASSES` (straight lines/gratings in 8 orientation bins,
curves in 2 curvature x 4 orientation bins, rings, textures). Input: ``[n, 3, 32, 32]`` in [0, 1]
(grey images repeated to 3 channels); any size works (the network is fully convolutional).

``scripts/train_shapes_cnn.py`` trains it (seeded, one CPU thread) and writes ``model.safetensors``;
:mod:`.card` measures its units and writes ``card.json`` + ``MODEL_CARD.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from interp_widget.errors import ModelLoadError

if TYPE_CHECKING:
    import torch

    from interp_widget.models.model import Model

NAME = "shapes-cnn"
HERE = Path(__file__).resolve().parent
WEIGHTS = HERE / "model.safetensors"
CHANNELS = (16, 32, 48)


def build() -> torch.nn.Module:
    """The untrained network (layer names: conv1, relu1, pool1, conv2, ..., conv3, relu3, gap, fc)."""
    from torch import nn

    from interp_widget.analysis.vision.stimuli import CLASSES

    class ShapesCNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            c1, c2, c3 = CHANNELS
            self.conv1 = nn.Conv2d(3, c1, 5, padding=2)
            self.relu1 = nn.ReLU()
            self.pool1 = nn.MaxPool2d(2)
            self.conv2 = nn.Conv2d(c1, c2, 3, padding=1)
            self.relu2 = nn.ReLU()
            self.pool2 = nn.MaxPool2d(2)
            self.conv3 = nn.Conv2d(c2, c3, 3, padding=1)
            self.relu3 = nn.ReLU()
            self.gap = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(c3, len(CLASSES))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.pool1(self.relu1(self.conv1(x)))
            x = self.pool2(self.relu2(self.conv2(x)))
            x = self.gap(self.relu3(self.conv3(x)))
            return self.fc(x.flatten(1))

    return ShapesCNN()


def load_module() -> torch.nn.Module:
    """The trained network as a plain ``torch.nn.Module`` in eval mode."""
    if not WEIGHTS.is_file():
        msg = f"the weights of {NAME!r} are missing from {HERE}; rebuild them with: python scripts/train_shapes_cnn.py"
        raise ModelLoadError(msg)
    from safetensors.torch import load_file

    net = build()
    net.load_state_dict(load_file(str(WEIGHTS)))
    return net.eval()


def load(device: str | None = None) -> Model:
    """``shapes-cnn`` as a :class:`Model` (nnsight backend over the torch module; ``model.raw`` is the module)."""
    from interp_widget.models.loading import load as load_object

    net = load_module()
    return load_object(net if device is None else net.to(device), name=NAME)

