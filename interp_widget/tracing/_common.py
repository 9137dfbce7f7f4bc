"""Pieces shared by every backend: site shapes, run plans, range checks, and applying interventions.

A *plan* groups what one ``Backend.run`` call asks for by hook name: capture it,
take its gradient, and the interventions to apply there (in the order given).
Interventions are applied out of place on the site's tensor (TransformerLens
layout, see :mod:`interp_widget.tracing.sites`); the backend then puts the new
tensor back into the model.

Selection rules for an :class:`~interp_widget.tracing.base.Intervention`:

* ``rows``: batch rows it applies to (``None``: all; a slice; or a sequence of ints).
* ``site.position``: one (query) position along the site's position axis (negative counts from the end).
* ``site.head``: one head along the site's head axis.
* ``value``: a number, or a tensor. A tensor with the site's full rank whose
  non-batch axes equal the site's is a *whole-site* value: its batch axis is 1
  (broadcast), the full batch (indexed by ``rows``), or ``len(rows)`` (row ``i``
  goes to ``rows[i]``), and the same head/position part is taken from it. Any
  other tensor must broadcast to the selected part, whose shape is the site's
  shape with the batch axis cut to the selected rows and the head/position axes
  dropped (e.g. ``attn.hook_z`` with head and position: ``[rows, d_head]``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from interp_widget.errors import (
    BackendError,
    ContextLengthError,
    InterventionError,
    SiteIndexError,
    UnknownSiteError,
)
from interp_widget.tracing.base import Intervention, Metric, ModelSpec
from interp_widget.tracing.sites import Site

_OPS = ("set", "add", "scale", "zero")

#: symbolic shape of each component (module sites: ``("batch", "...")``)
SHAPES: dict[str, tuple[str, ...]] = {
    "hook_embed": ("batch", "pos", "d_model"),
    "hook_pos_embed": ("batch", "pos", "d_model"),
    "hook_resid_pre": ("batch", "pos", "d_model"),
    "hook_resid_mid": ("batch", "pos", "d_model"),
    "hook_resid_post": ("batch", "pos", "d_model"),
    "attn.hook_q": ("batch", "pos", "head", "d_head"),
    "attn.hook_k": ("batch", "pos", "head", "d_head"),
    "attn.hook_v": ("batch", "pos", "head", "d_head"),
    "attn.hook_z": ("batch", "pos", "head", "d_head"),
    "attn.hook_attn_scores": ("batch", "head", "query_pos", "key_pos"),
    "attn.hook_pattern": ("batch", "head", "query_pos", "key_pos"),
    "attn.hook_result": ("batch", "pos", "head", "d_model"),
    "hook_attn_out": ("batch", "pos", "d_model"),
    "mlp.hook_pre": ("batch", "pos", "d_mlp"),
    "mlp.hook_post": ("batch", "pos", "d_mlp"),
    "hook_mlp_out": ("batch", "pos", "d_model"),
    "ln_final.hook_normalized": ("batch", "pos", "d_model"),
    "logits": ("batch", "pos", "d_vocab"),
}


def shape_of(site: Site) -> tuple[str, ...]:
    return SHAPES.get(site.component, ("batch", "..."))


@dataclass
class SitePlan:
    """What one run does at one hook name."""

    site: Site  # without head / position
    capture: bool = False
    grad: bool = False
    interventions: list[Intervention] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.site.hook_name


def check_site(site: Site | str, spec: ModelSpec, known: Collection[str], model_name: str) -> Site:
    """Parse ``site`` and check it against the model: layer, head, and that the model has it."""
    s = Site.parse(site)
    if s.layer is not None and spec.n_layers and not 0 <= s.layer < spec.n_layers:
        msg = f"layer {s.layer} is out of range: {model_name} has {spec.n_layers} layers (0..{spec.n_layers - 1})"
        raise SiteIndexError(msg)
    if s.head is not None and spec.n_heads and not 0 <= s.head < spec.n_heads:
        msg = (f"head {s.head} is out of range: {model_name} has {spec.n_heads} heads per layer "
               f"(0..{spec.n_heads - 1})")
        raise SiteIndexError(msg)
    if s.hook_name not in known:
        hint = ""
        if s.is_module:
            hint = " (module sites name a submodule path, e.g. 'module:' + a name from model.named_modules())"
        msg = f"{model_name} has no site {s.hook_name!r}{hint}"
        raise UnknownSiteError(msg)
    return s


def _check_rows(rows: Sequence[int] | slice | None, batch: int, where: str) -> None:
    if rows is None or isinstance(rows, slice):
        return
    for r in rows:
        if not -batch <= int(r) < batch:
            msg = f"row {int(r)} of {where} is out of range: the batch has {batch} rows (0..{batch - 1})"
            raise SiteIndexError(msg)


def build_plan(
    *,
    spec: ModelSpec,
    known: Collection[str],
    model_name: str,
    batch: int,
    n_pos: int | None,
    capture: Sequence[Site | str],
    interventions: Sequence[Intervention],
    grads: Sequence[Site | str],
    metric: Metric | None,
) -> dict[str, SitePlan]:
    """Validate a run's requests and group them by hook name (insertion order is not forward order)."""
    if grads and metric is None:
        msg = "grads were requested but no metric was given: pass metric=, a function from logits to a scalar"
        raise BackendError(msg)
    plan: dict[str, SitePlan] = {}

    def entry(site: Site) -> SitePlan:
        base = Site(site.component, site.layer)
        return plan.setdefault(base.hook_name, SitePlan(base))

    for c in capture:
        entry(check_site(c, spec, known, model_name)).capture = True
    for g in grads:
        entry(check_site(g, spec, known, model_name)).grad = True
    for iv in interventions:
        if not isinstance(iv, Intervention):
            msg = f"interventions must be Intervention objects, not {type(iv).__name__}"
            raise InterventionError(msg)
        s = check_site(iv.site, spec, known, model_name)
        if iv.op not in _OPS:
            msg = f"unknown intervention op {iv.op!r} at {s}; use one of {', '.join(_OPS)}"
            raise InterventionError(msg)
        if iv.op != "zero" and iv.value is None:
            msg = f"intervention {iv.op!r} at {s} needs a value"
            raise InterventionError(msg)
        if s.position is not None and n_pos is not None and not -n_pos <= s.position < n_pos:
            msg = f"position {s.position} of {s} is out of range: the input has {n_pos} positions (0..{n_pos - 1})"
            raise SiteIndexError(msg)
        _check_rows(iv.rows, batch, f"intervention at {s}")
        entry(s).interventions.append(Intervention(s, iv.op, iv.value, iv.rows))
    return plan


def check_context(n_tokens: int, n_ctx: int, model_name: str) -> None:
    """Raise ContextLengthError when an input is longer than the model's context window."""
    if n_ctx and n_tokens > n_ctx:
        msg = (f"the input is {n_tokens} tokens long but {model_name} has a context window of {n_ctx} tokens; "
               f"shorten the text (or split it) to at most {n_ctx} tokens")
        raise ContextLengthError(msg)


def as_token_batch(tokens: Any) -> torch.Tensor:
    """A [batch, pos] tensor from a 1-d or 2-d tensor / nested list."""
    t = tokens if isinstance(tokens, torch.Tensor) else torch.as_tensor(tokens)
    if t.ndim == 1:
        t = t.unsqueeze(0)
    if t.ndim != 2 or t.dtype.is_floating_point or t.dtype == torch.bool:
        msg = f"tokens must be an integer tensor [batch, pos] (or [pos]); got dtype {t.dtype}, shape {tuple(t.shape)}"
        raise BackendError(msg)
    return t


# --- applying interventions ---------------------------------------------------------------


def _row_index(rows: Sequence[int] | slice | None, device: torch.device) -> Any:
    if rows is None:
        return slice(None)
    if isinstance(rows, slice):
        return rows
    return torch.as_tensor([int(r) for r in rows], dtype=torch.long, device=device)


def _index(site: Site, rows: Sequence[int] | slice | None, t: torch.Tensor) -> tuple[Any, ...]:
    idx: list[Any] = [slice(None)] * t.ndim
    idx[0] = _row_index(rows, t.device)
    if site.position is not None:
        if site.pos_axis >= t.ndim:
            msg = f"{site} selects a position but its tensor has shape {tuple(t.shape)}"
            raise InterventionError(msg)
        idx[site.pos_axis] = site.position
    if site.head is not None and site.head_axis is not None:
        idx[site.head_axis] = site.head
    return tuple(idx)


def _fit_value(iv: Intervention, t: torch.Tensor, idx: tuple[Any, ...], part_shape: torch.Size) -> torch.Tensor:
    v = iv.value
    if not isinstance(v, torch.Tensor):
        return torch.as_tensor(v, dtype=t.dtype, device=t.device)
    v = v.to(device=t.device, dtype=t.dtype)
    batch = t.shape[0]
    n_rows = part_shape[0] if len(part_shape) else 1
    if v.ndim == t.ndim and v.ndim > 0 and tuple(v.shape[1:]) == tuple(t.shape[1:]):
        if v.shape[0] == batch and iv.rows is not None:
            v = v[_row_index(iv.rows, v.device)]
        elif v.shape[0] not in (1, batch, n_rows):
            msg = (f"the value for {iv.op!r} at {iv.site} has batch size {v.shape[0]}; a whole-site value needs "
                   f"1, the batch size ({batch}) or the number of selected rows ({n_rows})")
            raise InterventionError(msg)
        v = v[(slice(None), *idx[1:])]
    try:
        shape = torch.broadcast_shapes(v.shape, part_shape)
    except RuntimeError:
        shape = None
    if shape != part_shape:
        msg = (f"the value for {iv.op!r} at {iv.site} has shape {tuple(v.shape)}, which does not fit the selected "
               f"part {tuple(part_shape)} of the site's tensor {tuple(t.shape)} (give the whole site's shape, "
               f"or a shape that broadcasts to the selected part)")
        raise InterventionError(msg)
    return v


def apply_interventions(t: torch.Tensor, ivs: Sequence[Intervention]) -> torch.Tensor:
    """A new tensor: ``t`` with ``ivs`` applied in order (``t`` is left unchanged)."""
    out = t.clone()
    for iv in ivs:
        idx = _index(iv.site, iv.rows, out)
        part = out[idx]
        if iv.op == "zero":
            new = torch.zeros_like(part)
        else:
            v = _fit_value(iv, out, idx, part.shape)
            if iv.op == "set":
                new = v.expand(part.shape)
            elif iv.op == "add":
                new = part + v
            else:  # scale
                new = part * v
        out[idx] = new
    return out


def scalar_metric(value: Any) -> torch.Tensor:
    if not isinstance(value, torch.Tensor) or value.numel() != 1:
        got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        msg = f"metric(logits) must return a scalar tensor; got {got}"
        raise BackendError(msg)
    return value.reshape(())


def str_tokens(tokenizer: Any, ids: torch.Tensor) -> list[str]:
    """One prompt's token ids ([pos] or [1, pos]) decoded one token at a time, spaces kept."""
    if ids.ndim == 2:
        if ids.shape[0] != 1:
            msg = f"to_str_tokens takes one prompt; got a batch of {ids.shape[0]} (index a row first)"
            raise BackendError(msg)
        ids = ids[0]
    if tokenizer is None:
        msg = "this model has no tokenizer, so tokens cannot be turned into strings"
        raise BackendError(msg)
    return [tokenizer.decode([int(i)], clean_up_tokenization_spaces=False) for i in ids.tolist()]
