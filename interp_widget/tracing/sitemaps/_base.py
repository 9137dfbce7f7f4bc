"""Building blocks of a site map: where a site's tensor lives in a torch model, and how to read/write it.

A site map says, for each TransformerLens site of an architecture, which
:class:`Point` of the model holds its tensor (a module's input or output, or an
operation inside a module's ``forward`` reached through nnsight's ``.source``),
and a :class:`Codec` that turns the value at that point into the site's tensor
(TransformerLens layout) and puts an edited tensor back.

Codecs are small frozen dataclasses (picklable: a remote backend can ship them).
Weights they need are looked up by parameter path through the run context, so a
codec holds no tensors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import torch

from interp_widget.errors import BackendError


@dataclass(frozen=True)
class OpRef:
    """An operation inside a ``forward``: its nnsight label prefix and a regex its source line must match.

    nnsight labels operations ``{name}_{n}`` (``attention_interface_1``); the number
    shifts between library versions, so a site map names the prefix and the
    line it is on and the backend finds the label at run time.
    """

    prefix: str
    line: str = ""


@dataclass(frozen=True)
class Point:
    """A place where a value flows: a module's input or output, or an operation inside it.

    ``ops`` descends through ``.source``: the first op is in the module's own
    ``forward``, each next one inside the function the previous op calls.
    ``anchor`` is the module event this point comes right after (``(path,
    "pre"|"post")``; default: the module's own pre/post event), and ``sub``
    orders points that share an anchor. Forward order of points is the order of
    their anchors in one forward pass, then ``sub``.
    """

    module: str
    attr: Literal["input", "output"]
    ops: tuple[OpRef, ...] = ()
    anchor: tuple[str, str] | None = None
    sub: int = 0

    @property
    def event(self) -> tuple[str, str]:
        if self.anchor is not None:
            return self.anchor
        return (self.module, "pre" if self.attr == "input" else "post")


class Context(Protocol):
    """What codecs may ask of a run in progress."""

    batch: int  #: the run's batch size

    def value(self, point: Point) -> Any:
        """The (possibly edited) value already seen at an earlier point of this run."""
        ...

    def param(self, path: str) -> torch.Tensor:
        """A parameter of the model by dotted path."""
        ...


class Codec:
    """Identity: the value at the point is the site's tensor."""

    needs: tuple[Point, ...] = ()
    identity: bool = True

    def extract(self, value: Any, ctx: Context) -> torch.Tensor:
        if not isinstance(value, torch.Tensor):
            msg = f"expected a tensor at this site, found {type(value).__name__}"
            raise BackendError(msg)
        return value

    def insert(self, value: Any, old: torch.Tensor, new: torch.Tensor, ctx: Context) -> Any:
        return new


@dataclass(frozen=True)
class FirstTensor(Codec):
    """A module output that may be a tuple/list or a ModelOutput: its first tensor (``logits`` if it has one)."""

    identity: bool = False

    def extract(self, value: Any, ctx: Context) -> torch.Tensor:
        if isinstance(value, torch.Tensor):
            return value
        if hasattr(value, "logits") and isinstance(value.logits, torch.Tensor):
            return value.logits
        if isinstance(value, (tuple, list)) and value and isinstance(value[0], torch.Tensor):
            return value[0]
        if hasattr(value, "to_tuple"):
            first = value.to_tuple()
            if first and isinstance(first[0], torch.Tensor):
                return first[0]
        msg = f"a site needs a tensor output (or a tuple starting with one); the module returns {type(value).__name__}"
        raise BackendError(msg)

    def insert(self, value: Any, old: torch.Tensor, new: torch.Tensor, ctx: Context) -> Any:
        if isinstance(value, torch.Tensor):
            return new
        if hasattr(value, "logits") and value.logits is old:
            items = dict(value.items())
            items["logits"] = new
            return type(value)(**items)
        if isinstance(value, tuple):
            return (new, *value[1:])
        if isinstance(value, list):
            return [new, *value[1:]]
        items = dict(value.items())  # a ModelOutput: rebuild it with the new first field
        items[next(iter(items))] = new
        return type(value)(**items)


@dataclass(frozen=True)
class BatchExpanded(Codec):
    """A value computed once for the whole batch (``[1, pos, ...]``, e.g. position embeddings), seen per row."""

    identity: bool = False

    def extract(self, value: Any, ctx: Context) -> torch.Tensor:
        return value.expand(ctx.batch, *value.shape[1:])


@dataclass(frozen=True)
class Heads(Codec):
    """``[batch, pos, n_heads * d_head]`` <-> ``[batch, pos, n_heads, d_head]``."""

    n_heads: int
    identity: bool = False

    def extract(self, value: Any, ctx: Context) -> torch.Tensor:
        return value.unflatten(-1, (self.n_heads, -1))

    def insert(self, value: Any, old: torch.Tensor, new: torch.Tensor, ctx: Context) -> Any:
        return new.flatten(-2)


@dataclass(frozen=True)
class FusedHeads(Codec):
    """One of ``parts`` equal slices of a fused projection (GPT-2's ``c_attn``: q, k, v), split into heads."""

    index: int
    parts: int
    n_heads: int
    identity: bool = False

    def extract(self, value: Any, ctx: Context) -> torch.Tensor:
        return value.chunk(self.parts, dim=-1)[self.index].unflatten(-1, (self.n_heads, -1))

    def insert(self, value: Any, old: torch.Tensor, new: torch.Tensor, ctx: Context) -> Any:
        chunks = list(value.chunk(self.parts, dim=-1))
        chunks[self.index] = new.flatten(-2)
        return torch.cat(chunks, dim=-1)


@dataclass(frozen=True)
class MaskedScores(Codec):
    """Pre-softmax attention scores; entries masked with a large negative number read as ``-inf`` (as in TransformerLens)."""

    identity: bool = False

    def extract(self, value: Any, ctx: Context) -> torch.Tensor:
        floor = torch.finfo(value.dtype).min / 2
        return value.masked_fill(value < floor, float("-inf"))


@dataclass(frozen=True)
class HeadResult(Codec):
    """Per-head attention output ``z[h] @ W_O[h]`` (no bias), at the output projection's output.

    ``z`` is the projection's input (read at ``z_point``). ``weight`` is the
    projection's weight path; ``conv1d`` says it is stored ``[in, out]`` (GPT-2's
    ``Conv1D``) rather than ``[out, in]`` (``nn.Linear``). Writing back adds the
    change in the summed heads to the projection's output.
    """

    z_point: Point
    weight: str
    n_heads: int
    conv1d: bool
    identity: bool = False

    @property
    def needs(self) -> tuple[Point, ...]:  # type: ignore[override]
        return (self.z_point,)

    def extract(self, value: Any, ctx: Context) -> torch.Tensor:
        z = ctx.value(self.z_point).unflatten(-1, (self.n_heads, -1))  # b p h dh
        w = ctx.param(self.weight)
        w = w if self.conv1d else w.T  # [in = h*dh, out]
        w = w.unflatten(0, (self.n_heads, -1)).to(z.dtype)  # h dh m
        return torch.einsum("bphd,hdm->bphm", z, w)

    def insert(self, value: Any, old: torch.Tensor, new: torch.Tensor, ctx: Context) -> Any:
        return value + (new - old).sum(dim=-2)


@dataclass(frozen=True)
class LayerNormNormalized(Codec):
    """A LayerNorm's normalized input before its affine map (TransformerLens ``hook_normalized``).

    Read from the LayerNorm's input (``in_point``); writing back replaces the
    LayerNorm's output with ``new * weight + bias``.
    """

    in_point: Point
    weight: str
    bias: str | None
    eps: float
    identity: bool = False

    @property
    def needs(self) -> tuple[Point, ...]:  # type: ignore[override]
        return (self.in_point,)

    def extract(self, value: Any, ctx: Context) -> torch.Tensor:
        x = ctx.value(self.in_point)
        x = x - x.mean(-1, keepdim=True)
        return x / (x.pow(2).mean(-1, keepdim=True) + self.eps).sqrt()

    def insert(self, value: Any, old: torch.Tensor, new: torch.Tensor, ctx: Context) -> Any:
        out = new * ctx.param(self.weight)
        return out + ctx.param(self.bias) if self.bias is not None else out


@dataclass(frozen=True)
class Binding:
    """A site's point and codec."""

    point: Point
    codec: Codec = field(default_factory=Codec)
