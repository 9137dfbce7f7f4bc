"""Helpers that build :class:`~interp_widget.tracing.base.Intervention` objects.

Every helper takes a site (hook name or :class:`Site`) plus optional ``head``,
``position`` and ``rows`` and returns one ``Intervention``; pass a list of them
to ``model.run(..., interventions=[...])``. Mean and resample ablation run the
model once on a reference batch to get their values::

    from interp_widget.tracing import interventions as iv
    run = model.run(tokens, interventions=[
        iv.zero("blocks.0.attn.hook_z", head=1, position=3),
        iv.mean(model, "blocks.1.attn.hook_z", reference_tokens, head=0),
        iv.resample(model, "blocks.0.hook_mlp_out", reference_tokens, n_rows=tokens.shape[0], seed=0),
        iv.patch("blocks.1.hook_resid_pre", clean_run, position=4),
    ])

``rows`` selects the batch rows of the patched run an intervention applies to,
which is how a batched sweep ablates a different head in each row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import torch

from interp_widget.errors import InterventionError, SiteIndexError
from interp_widget.tracing.base import Intervention, RunResult
from interp_widget.tracing.sites import Site

if TYPE_CHECKING:
    from interp_widget.tracing.base import Metric

Rows = Sequence[int] | slice | None


class Runs(Protocol):
    """Anything with the Backend/Model ``run`` method."""

    def run(self, tokens: Any, *, capture: Sequence[Site | str] = (), interventions: Sequence[Intervention] = (),
            grads: Sequence[Site | str] = (), metric: Metric | None = None) -> RunResult: ...


def _site(site: Site | str, head: int | None, position: int | None) -> Site:
    return Site.parse(site, head=head, position=position)


def _reference_activation(model: Runs, site: Site, reference: Any) -> torch.Tensor:
    # capturing the site with its head checks the head against the model (captures are whole tensors)
    return model.run(reference, capture=[site]).cache[site.hook_name]


def _select(site: Site, t: torch.Tensor, *, pos_index: int | None) -> torch.Tensor:
    """The head/position part of ``t`` (batch axis kept), as the value of an intervention at ``site``."""
    idx: list[Any] = [slice(None)] * t.ndim
    if pos_index is not None:
        if not -t.shape[site.pos_axis] <= pos_index < t.shape[site.pos_axis]:
            n = t.shape[site.pos_axis]
            msg = f"position {pos_index} of {site} is out of range: the reference has {n} positions (0..{n - 1})"
            raise SiteIndexError(msg)
        idx[site.pos_axis] = pos_index
    if site.head is not None and site.head_axis is not None:
        idx[site.head_axis] = site.head
    return t[tuple(idx)]


def zero(site: Site | str, *, head: int | None = None, position: int | None = None, rows: Rows = None) -> Intervention:
    """Zero ablation: set the selected part of the activation to 0."""
    return Intervention(_site(site, head, position), "zero", None, rows)


def mean(model: Runs, site: Site | str, reference: Any, *, head: int | None = None, position: int | None = None,
         rows: Rows = None, over_positions: bool = False) -> Intervention:
    """Mean ablation: replace the selected part by its mean over the ``reference`` batch.

    The mean is taken per position (the reference must then have as many
    positions as the patched input, unless ``position`` picks one) or, with
    ``over_positions=True``, over positions too.
    """
    s = _site(site, head, position)
    act = _reference_activation(model, s, reference)
    dims = (0, s.pos_axis) if over_positions else (0,)
    avg = act.mean(dim=dims, keepdim=True)
    pos_index = (0 if over_positions else s.position) if s.position is not None else None
    return Intervention(s, "set", _select(s, avg, pos_index=pos_index), rows)


def resample(model: Runs, site: Site | str, reference: Any, *, n_rows: int, seed: int = 0, head: int | None = None,
             position: int | None = None, rows: Rows = None) -> Intervention:
    """Resample ablation: replace the selected part, row by row, by that of a random reference row.

    ``n_rows`` is the number of patched rows (the batch size, or ``len(rows)``);
    reference rows are drawn with replacement from a ``torch.Generator`` seeded with ``seed``.
    """
    s = _site(site, head, position)
    act = _reference_activation(model, s, reference)
    if n_rows < 1:
        msg = f"resample ablation needs n_rows >= 1 (the number of patched rows), got {n_rows}"
        raise InterventionError(msg)
    generator = torch.Generator().manual_seed(seed)
    pick = torch.randint(act.shape[0], (n_rows,), generator=generator)
    return Intervention(s, "set", _select(s, act[pick.to(act.device)], pos_index=s.position), rows)


def patch(site: Site | str, source: RunResult | torch.Tensor, *, head: int | None = None,
          position: int | None = None, rows: Rows = None, source_rows: Rows = None) -> Intervention:
    """Patch from another run: set the selected part to the same part of ``source``.

    ``source`` is a :class:`RunResult` that captured this site, or the site's
    tensor itself (whole-site shape; its batch is 1, the patched batch, or
    ``len(rows)``). ``source_rows`` picks rows of the source first.
    """
    s = _site(site, head, position)
    if isinstance(source, RunResult):
        if s.hook_name not in source.cache:
            msg = f"the source run did not capture {s.hook_name!r}; run it with capture=[{s.hook_name!r}]"
            raise InterventionError(msg)
        value = source.cache[s.hook_name]
    elif isinstance(source, torch.Tensor):
        value = source
    else:
        msg = f"patch() takes a RunResult or a tensor as its source, not {type(source).__name__}"
        raise InterventionError(msg)
    if source_rows is not None:
        value = value[source_rows] if isinstance(source_rows, slice) else value[torch.as_tensor(list(source_rows))]
    return Intervention(s, "set", value, rows)


def add(site: Site | str, value: torch.Tensor | float, *, head: int | None = None, position: int | None = None,
        rows: Rows = None) -> Intervention:
    """Add ``value`` (e.g. a steering vector) to the selected part."""
    return Intervention(_site(site, head, position), "add", value, rows)


def scale(site: Site | str, factor: torch.Tensor | float, *, head: int | None = None, position: int | None = None,
          rows: Rows = None) -> Intervention:
    """Multiply the selected part by ``factor``."""
    return Intervention(_site(site, head, position), "scale", factor, rows)
