"""Units of a CNN: parsing ``"conv2:5"`` / ``"conv2:5@3,4"``, finding layers, and capturing activations.

A *layer* is a module path of the torch network (``dict(net.named_modules())``: ``"conv1"``,
``"layer1.0.conv2"``); a *unit* is a channel of its output (spatially reduced), or one neuron of that
channel at feature-map position ``@x,y``. Any ``torch.nn.Module`` works, and so does a
:class:`~interp_widget.models.model.Model` wrapping one (its ``raw`` module is used).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import torch

from interp_widget.errors import SiteIndexError, UnknownSiteError

Tensor = torch.Tensor
_UNIT = re.compile(r"^\s*([^:@\s]+)\s*(?::\s*(-?\d+))?\s*(?:@\s*(-?\d+)\s*,\s*(-?\d+))?\s*$")


@dataclass(frozen=True)
class Unit:
    """A channel (``x``/``y`` None) or one neuron of a layer's output; ``channel`` None: the whole layer."""

    layer: str
    channel: int | None = None
    x: int | None = None
    y: int | None = None

    @classmethod
    def parse(cls, spec: str | Unit) -> Unit:
        """``"conv2:5"`` (channel 5), ``"conv2:5@3,4"`` (its neuron at x=3, y=4), ``"conv2"`` (the layer)."""
        if isinstance(spec, Unit):
            return spec
        m = _UNIT.match(spec) if isinstance(spec, str) else None
        if m is None:
            msg = f"cannot read the unit {spec!r}: write 'layer:channel' (e.g. 'conv2:5') or 'layer:channel@x,y'"
            raise ValueError(msg)
        layer, ch, x, y = m.groups()
        if x is not None and ch is None:
            msg = f"cannot read the unit {spec!r}: a neuron needs a channel ('layer:channel@x,y')"
            raise ValueError(msg)
        return cls(layer, None if ch is None else int(ch), None if x is None else int(x), None if y is None else int(y))

    @property
    def label(self) -> str:
        s = self.layer if self.channel is None else f"{self.layer}:{self.channel}"
        return s if self.x is None else f"{s}@{self.x},{self.y}"

    def __str__(self) -> str:
        return self.label


def torch_module(model: Any) -> torch.nn.Module:
    """The torch network behind ``model`` (a ``torch.nn.Module`` or a :class:`Model` wrapping one)."""
    if isinstance(model, torch.nn.Module):
        return model
    raw = getattr(model, "raw", None)
    if isinstance(raw, torch.nn.Module):
        return raw
    msg = f"expected a torch.nn.Module (or an interp_widget Model wrapping one), got {type(model).__name__}"
    raise TypeError(msg)


def conv_layers(net: torch.nn.Module) -> list[str]:
    """Module paths of every ``Conv2d`` in ``net``, in registration order."""
    return [name for name, m in net.named_modules() if isinstance(m, torch.nn.Conv2d)]


def find_layer(net: torch.nn.Module, layer: str) -> torch.nn.Module:
    """The submodule at ``layer``; :class:`UnknownSiteError` listing the conv layers if there is none."""
    mods = dict(net.named_modules())
    if layer and layer in mods:
        return mods[layer]
    convs = conv_layers(net)
    shown = ", ".join(convs[:24]) + (" ..." if len(convs) > 24 else "")
    msg = f"{type(net).__name__} has no layer {layer!r}; its conv layers are: {shown or '(none)'}"
    raise UnknownSiteError(msg)


def input_channels(net: torch.nn.Module) -> int:
    """The input channels of the first conv layer (3 if there is none)."""
    for m in net.modules():
        if isinstance(m, torch.nn.Conv2d):
            return int(m.in_channels)
    return 3


def model_device(net: torch.nn.Module) -> torch.device:
    p = next(iter(net.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


class _Stop(Exception):
    """Raised by a hook once every requested layer is captured: the rest of the network is skipped."""


@contextmanager
def capture(net: torch.nn.Module, layers: Sequence[str], *, stop: bool = True,
            detach: bool = False) -> Iterator[dict[str, Tensor]]:
    """Forward hooks storing each layer's output in the yielded dict; removed when the block exits.

    With ``stop``, the forward pass is cut short once all ``layers`` ran (call the network through
    :func:`forward`, which swallows that signal).
    """
    out: dict[str, Tensor] = {}
    wanted = set(layers)
    handles = []

    def hook(name: str) -> Any:
        def fn(_m: torch.nn.Module, _i: Any, o: Any) -> None:
            t = o[0] if isinstance(o, (tuple, list)) else o
            # a copy: later in-place ops (ReLU(inplace=True) after a BatchNorm) must not change it
            out[name] = t.detach().clone() if detach else t.clone()
            if stop and wanted.issubset(out):
                raise _Stop

        return fn

    try:
        for name in dict.fromkeys(layers):
            handles.append(find_layer(net, name).register_forward_hook(hook(name)))
        yield out
    finally:
        for h in handles:
            h.remove()


def forward(net: torch.nn.Module, x: Tensor) -> None:
    """Run ``net`` on ``x`` inside :func:`capture` (stopping early is not an error)."""
    with suppress(_Stop):
        net(x)


def layer_outputs(net: torch.nn.Module, x: Tensor, layers: Sequence[str]) -> dict[str, Tensor]:
    """Each layer's output on ``x`` (no gradients)."""
    with torch.no_grad(), capture(net, layers, detach=True) as out:
        forward(net, x)
        missing = [name for name in layers if name not in out]
        if missing:
            msg = f"layer(s) {', '.join(missing)} did not run in the forward pass of {type(net).__name__}"
            raise UnknownSiteError(msg)
        return dict(out)


def probe_shapes(net: torch.nn.Module, layers: Sequence[str], size: int = 32) -> dict[str, tuple[int, ...]]:
    """Each layer's output shape (without the batch) for a ``size`` x ``size`` input."""
    x = torch.zeros(1, input_channels(net), size, size, device=model_device(net))
    was = net.training
    net.eval()
    try:
        return {k: tuple(v.shape[1:]) for k, v in layer_outputs(net, x, layers).items()}
    finally:
        net.train(was)


def check_unit(unit: Unit, shape: tuple[int, ...]) -> None:
    """Raise :class:`SiteIndexError` if ``unit``'s channel or position is outside ``shape`` (``[C, H, W]``)."""
    if unit.channel is not None:
        n = shape[0]
        if not 0 <= unit.channel < n:
            msg = f"channel {unit.channel} is out of range: {unit.layer} has {n} channels (0..{n - 1})"
            raise SiteIndexError(msg)
    if unit.x is not None:
        if len(shape) != 3:
            msg = f"{unit.label}: a neuron position needs a spatial layer; {unit.layer} has output shape {list(shape)}"
            raise SiteIndexError(msg)
        h, w = shape[1], shape[2]
        if not (0 <= unit.x < w and 0 <= int(unit.y or 0) < h):
            msg = (f"position x={unit.x}, y={unit.y} is out of range: {unit.layer}'s feature map is {w} wide "
                   f"and {h} high (x 0..{w - 1}, y 0..{h - 1}) for this input size")
            raise SiteIndexError(msg)


def reduce(act: Tensor, unit: Unit, mode: str = "max") -> Tensor:
    """``[n]``: the unit's value in a batch of layer outputs ``[n, C, (H, W)]``.

    A neuron reads its position; a channel is reduced over space by ``mode`` (``max``, ``mean`` or
    ``centre``).
    """
    a = act if unit.channel is None else act[:, unit.channel]
    if unit.x is not None:
        return a[:, unit.y, unit.x]
    if a.dim() == 1:
        return a
    if a.dim() == 2:
        return a.amax(1) if mode == "max" else a.mean(1)
    if mode == "max":
        return a.flatten(1).amax(1)
    if mode == "mean":
        return a.flatten(1).mean(1)
    if mode in ("centre", "center"):
        return a[:, a.shape[-2] // 2, a.shape[-1] // 2]
    msg = f"unknown reduction {mode!r}: use 'max', 'mean' or 'centre'"
    raise ValueError(msg)


__all__ = ["Unit", "capture", "check_unit", "conv_layers", "find_layer", "forward", "input_channels",
           "layer_outputs", "model_device", "probe_shapes", "reduce", "torch_module"]
