"""Feature-visualisation objectives: channels, neurons, directions, and weighted sums of them.

>>> Objective.parse("conv2:5")                 # channel 5 of conv2, mean over space
>>> Objective.parse("conv2:5@3,4")             # its neuron at x=3, y=4
>>> Objective.parse("conv2:5 + 0.5*conv3:1")   # a weighted sum
>>> Objective.direction("conv2", v)            # the dot product with v [C], mean over space
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from interp_widget.analysis.vision.units import Unit, check_unit

Tensor = torch.Tensor
_TERM = re.compile(r"\s*([+-])?\s*(?:(\d*\.?\d+(?:[eE][-+]?\d+)?)\s*\*\s*)?([\w.]+\s*(?::\s*\d+)?(?:\s*@\s*\d+\s*,\s*\d+)?)\s*")


@dataclass(frozen=True)
class Term:
    weight: float
    unit: Unit
    direction: Tensor | None = None  # [C] for a direction objective (unit.channel is None)

    @property
    def label(self) -> str:
        base = f"{self.unit.layer}·dir" if self.direction is not None else self.unit.label
        if self.weight in (1, -1):
            return base if self.weight == 1 else f"-{base}"
        return f"{self.weight:g}*{base}"


@dataclass(frozen=True)
class Objective:
    """A weighted sum of unit terms; its value on a batch of layer outputs is ``[n]`` (higher is better)."""

    terms: tuple[Term, ...]

    # --- constructors ------------------------------------------------------------------------
    @classmethod
    def channel(cls, layer: str, channel: int) -> Objective:
        return cls((Term(1.0, Unit(layer, channel)),))

    @classmethod
    def neuron(cls, layer: str, channel: int, x: int, y: int) -> Objective:
        return cls((Term(1.0, Unit(layer, channel, x, y)),))

    @classmethod
    def direction(cls, layer: str, vector: Sequence[float] | Tensor) -> Objective:
        v = torch.as_tensor(vector, dtype=torch.float32).flatten()
        return cls((Term(1.0, Unit(layer), v),))

    @classmethod
    def parse(cls, spec: str | Objective | Unit) -> Objective:
        """An objective from ``"conv2:5"``, ``"conv2:5@3,4"`` or ``"a*conv2:5 + conv3:1 - conv1:0"``."""
        if isinstance(spec, Objective):
            return spec
        if isinstance(spec, Unit):
            return cls((Term(1.0, spec),))
        if not isinstance(spec, str) or not spec.strip():
            msg = f"an objective is a string like 'conv2:5' or an Objective, not {spec!r}"
            raise ValueError(msg)
        terms: list[Term] = []
        pos = 0
        while pos < len(spec):
            m = _TERM.match(spec, pos)
            if m is None or not m.group(0) or (terms and not m.group(1)):
                msg = (f"cannot read the objective {spec!r} at {spec[pos:]!r}: write terms like 'conv2:5', "
                       "'conv2:5@3,4' or '0.5*conv3:1' joined by + or -")
                raise ValueError(msg)
            pos = m.end()
            unit = Unit.parse(m.group(3))
            if unit.channel is None:
                msg = (f"objective term {m.group(3)!r} names a layer but no channel: write 'layer:channel', "
                       "or use Objective.direction(layer, vector)")
                raise ValueError(msg)
            w = float(m.group(2)) if m.group(2) else 1.0
            terms.append(Term(-w if m.group(1) == "-" else w, unit))
        return cls(tuple(terms))

    # --- algebra --------------------------------------------------------------------------------
    def __add__(self, other: Objective | str) -> Objective:
        return Objective(self.terms + Objective.parse(other).terms)

    def __sub__(self, other: Objective | str) -> Objective:
        return self + (-1.0) * Objective.parse(other)

    def __mul__(self, k: float) -> Objective:
        return Objective(tuple(Term(t.weight * float(k), t.unit, t.direction) for t in self.terms))

    __rmul__ = __mul__

    def __neg__(self) -> Objective:
        return self * -1.0

    # --- use --------------------------------------------------------------------------------------
    @property
    def layers(self) -> list[str]:
        return list(dict.fromkeys(t.unit.layer for t in self.terms))

    @property
    def label(self) -> str:
        return " + ".join(t.label for t in self.terms).replace("+ -", "- ")

    def check(self, shapes: dict[str, tuple[int, ...]]) -> None:
        """Raise a clear error for a channel, position or direction that does not fit its layer."""
        for t in self.terms:
            shape = shapes[t.unit.layer]
            if len(shape) != 3:
                msg = f"{t.unit.layer} is not a convolutional feature map: its output is {list(shape)} per image"
                if t.unit.x is not None or t.direction is not None:
                    raise ValueError(msg)
            if t.direction is not None and t.direction.numel() != shape[0]:
                msg = (f"the direction for {t.unit.layer} has {t.direction.numel()} entries, but "
                       f"{t.unit.layer} has {shape[0]} channels")
                raise ValueError(msg)
            check_unit(t.unit, shape)

    def value(self, acts: dict[str, Tensor]) -> Tensor:
        """``[n]``: the objective on captured layer outputs ``layer -> [n, C, H, W]``."""
        total: Tensor | None = None
        for t in self.terms:
            a = acts[t.unit.layer]
            if t.direction is not None:
                v = (a * t.direction.to(a).view(1, -1, *([1] * (a.dim() - 2)))).sum(1)
                v = v.flatten(1).mean(1) if v.dim() > 1 else v
            elif t.unit.x is not None:
                v = a[:, t.unit.channel, t.unit.y, t.unit.x]
            else:
                v = a[:, t.unit.channel]
                v = v.flatten(1).mean(1) if v.dim() > 1 else v
            total = t.weight * v if total is None else total + t.weight * v
        assert total is not None
        return total


__all__ = ["Objective", "Term"]
