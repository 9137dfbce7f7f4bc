"""The Backend protocol: one API over TransformerLens, nnsight (local or remote) and torch modules.

Callers (analyses, widgets) only ever see this module's types. A backend:

* describes the model (:class:`ModelSpec`) and the sites it has (:meth:`Backend.sites`),
* tokenizes (``to_tokens`` / ``to_str_tokens``),
* runs a batch with captures, interventions and gradients in one call (:meth:`Backend.run`).

A remote backend implements the same ``run``: a whole batch of interventions
travels as one request, so callers batch their experiments and stay unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from interp_widget.tracing.sites import Site

if TYPE_CHECKING:
    import torch

InterventionOp = Literal["set", "add", "scale", "zero"]


@dataclass(frozen=True)
class ModelSpec:
    """Shape facts about a model that analyses and views need."""

    architecture: str  # e.g. "hooked-transformer", "gpt2", "bert"
    n_layers: int
    n_heads: int
    d_model: int
    d_head: int
    n_ctx: int
    d_vocab: int
    d_mlp: int | None = None  # None for attention-only models
    causal: bool = True  # False for encoders (BERT): no logits lens / next-token metrics
    name: str = ""


@dataclass(frozen=True)
class SiteInfo:
    """A site the model has, with the symbolic shape of its activation."""

    site: Site
    shape: tuple[str, ...]  # e.g. ("batch", "pos", "head", "d_head")


@dataclass
class Intervention:
    """Change the activation at ``site`` during a run.

    ``op``: ``set`` (replace by ``value``), ``add`` (add ``value``), ``scale``
    (multiply by ``value``), ``zero``. The site's ``head`` / ``position`` select
    the part that is changed; ``value`` must broadcast to that part.
    ``rows`` selects the batch rows it applies to (None: all rows), which is how
    a batched sweep patches a different site in each row.

    Mean and resample ablation and patching from another run are ``set`` with a
    value taken from a reference run: see :mod:`interp_widget.tracing.interventions`.
    """

    site: Site
    op: InterventionOp = "set"
    value: torch.Tensor | float | None = None
    rows: Sequence[int] | slice | None = None


@dataclass
class RunResult:
    """What a run gives back: logits, captured activations and gradients, keyed by hook name.

    Captured tensors are whole (not sliced by the site's head/position) and
    detached; ``grads[hook_name]`` is d(metric)/d(activation).
    """

    logits: torch.Tensor | None
    cache: dict[str, torch.Tensor] = field(default_factory=dict)
    grads: dict[str, torch.Tensor] = field(default_factory=dict)
    metric: float | None = None

    def __getitem__(self, key: str | Site) -> torch.Tensor:
        name = key.hook_name if isinstance(key, Site) else key
        return self.cache[name]


Metric = Callable[["torch.Tensor"], "torch.Tensor"]  # logits -> scalar (for grads)


@runtime_checkable
class Backend(Protocol):
    """What every backend implements. See the module docstring."""

    spec: ModelSpec

    @property
    def tokenizer(self) -> Any: ...

    def sites(self) -> list[SiteInfo]:
        """Every site this backend can capture / intervene on."""
        ...

    def to_tokens(self, text: str | Sequence[str], *, prepend_bos: bool = True) -> torch.Tensor:
        """Tokenize to a LongTensor [batch, pos]. Raises ContextLengthError past n_ctx."""
        ...

    def to_str_tokens(self, tokens: torch.Tensor | str) -> list[str]:
        """One prompt's tokens as strings."""
        ...

    def run(
        self,
        tokens: torch.Tensor,
        *,
        capture: Sequence[Site | str] = (),
        interventions: Sequence[Intervention] = (),
        grads: Sequence[Site | str] = (),
        metric: Metric | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> RunResult:
        """One forward pass (and a backward pass when ``grads`` is given, which needs ``metric``).

        Interventions are applied in forward order; captures see the activation
        after interventions at the same site. Hooks are always removed, even on error.
        """
        ...
