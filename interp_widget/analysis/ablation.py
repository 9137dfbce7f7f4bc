"""Ablation: zero, mean or resample ablation of heads, MLPs, layers or positions, and its effect on a metric.

* :func:`ablate` knocks out a set of components together and reports the metric before and after.
* :func:`ablation_sweep` knocks out each site of a sweep on its own (batched, like patching).

Components: ``"L1H3"`` (head 3 of layer 1: its ``attn.hook_z``), ``"MLP0"`` / ``"ATTN1"`` (a layer's MLP /
attention output), any hook name (``"blocks.0.hook_resid_pre"``), or a
:class:`~interp_widget.tracing.sites.Site` (with ``head`` / ``position`` to narrow it).
``positions=`` restricts every component to those positions.

Methods: ``"zero"`` (set to 0), ``"mean"`` (the mean over a ``reference`` batch, position by position;
default reference: the input batch itself), ``"resample"`` (each prompt gets the activation of a
seeded random prompt of the ``reference`` batch; default: another prompt of the input batch).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from interp_widget.analysis.metrics import Metric, bind_metric
from interp_widget.analysis.results import AblationResult, SweepResult
from interp_widget.analysis.sweeps import (
    PatchRun,
    Progress,
    TokensLike,
    as_tokens,
    build_grid,
    run_backend,
    run_sweep,
    select,
    supports_start,
)
from interp_widget.errors import InputMismatchError
from interp_widget.tracing.base import Intervention
from interp_widget.tracing.sites import Site

if TYPE_CHECKING:
    import torch

    from interp_widget.models.model import Model

Method = Literal["zero", "mean", "resample"]
_HEAD_RE = re.compile(r"^L(\d+)H(\d+)$", re.IGNORECASE)
_LAYER_RE = re.compile(r"^(MLP|ATTN)(\d+)$", re.IGNORECASE)


def parse_component(model: Model, c: Site | str | tuple[int, int]) -> Site:
    """``"L1H3"``, ``(1, 3)``, ``"MLP0"``, ``"ATTN1"``, a hook name or a Site -> a checked Site."""
    if isinstance(c, tuple):
        if len(c) != 2:
            msg = f"a head is (layer, head), not {c!r}"
            raise InputMismatchError(msg)
        return model.check_site(Site("attn.hook_z", int(c[0]), int(c[1])))
    if isinstance(c, str):
        m = _HEAD_RE.match(c.strip())
        if m:
            return model.check_site(Site("attn.hook_z", int(m.group(1)), int(m.group(2))))
        m = _LAYER_RE.match(c.strip())
        if m:
            comp = "hook_mlp_out" if m.group(1).upper() == "MLP" else "hook_attn_out"
            return model.check_site(Site(comp, int(m.group(2))))
    return model.check_site(c)


def _expand(sites: Sequence[Site], positions: Sequence[int] | None) -> list[Site]:
    if positions is None:
        return list(sites)
    return [s.with_(head=s.head, position=int(p)) for s in sites for p in positions]


def ablation_values(model: Model, tokens: torch.Tensor, sites: Sequence[Site], method: Method,
                    reference: torch.Tensor | None, seed: int) -> dict[Site, Any]:
    """The replacement value of each site for ``tokens`` (``[B, pos]``): a number or ``[B, ...part]``."""
    import torch

    if method == "zero":
        return {s: 0.0 for s in sites}
    if method not in ("mean", "resample"):
        msg = f"unknown ablation method {method!r}; use 'zero', 'mean' or 'resample'"
        raise ValueError(msg)
    ref = tokens if reference is None else reference
    if ref.shape[-1] != tokens.shape[-1]:
        msg = (f"{method} ablation takes activations position by position, so the reference batch needs the "
               f"input's length: reference has {ref.shape[-1]} tokens, input has {tokens.shape[-1]}")
        raise InputMismatchError(msg)
    b = tokens.shape[0]
    if method == "resample":
        gen = torch.Generator().manual_seed(seed)
        if reference is None:
            if b < 2:
                msg = "resample ablation of a single prompt needs a reference batch (reference=...)"
                raise InputMismatchError(msg)
            # a random derangement: every prompt gets another prompt's activations
            perm = torch.randperm(b, generator=gen)
            while bool((perm == torch.arange(b)).any()):
                perm = torch.randperm(b, generator=gen)
        else:
            perm = torch.randint(0, ref.shape[0], (b,), generator=gen)
    hooks = {s.hook_name: Site(s.component, s.layer) for s in sites}
    with torch.no_grad():
        cache = run_backend(model, ref, capture=list(hooks.values())).cache
    out: dict[Site, Any] = {}
    for s in sites:
        act = cache[s.hook_name]
        out[s] = select(act.mean(0, keepdim=True), s) if method == "mean" else select(act[perm], s)
    return out


def ablate(
    model: Model,
    tokens: TokensLike,
    metric: Metric | Callable[[torch.Tensor], Any] | str,
    components: Sequence[Site | str | tuple[int, int]] | Site | str,
    *,
    method: Method = "zero",
    reference: TokensLike | None = None,
    positions: Sequence[int] | None = None,
    seed: int = 0,
) -> AblationResult:
    """Ablate ``components`` together; the metric on ``tokens`` before and after.

    The unablated and ablated runs share one batched forward pass. ``metric`` ``"loss"`` means the
    next-token loss on ``tokens`` themselves.
    """
    import torch

    toks = as_tokens(model, tokens)
    comps = [components] if isinstance(components, (str, Site, tuple)) else list(components)
    if not comps:
        msg = "nothing to ablate: give at least one component"
        raise InputMismatchError(msg)
    sites = _expand([parse_component(model, c) for c in comps], positions)
    ref = as_tokens(model, reference) if reference is not None else None
    values = ablation_values(model, toks, sites, method, ref, seed)
    m = bind_metric(metric, model, tokens=toks)
    b = toks.shape[0]
    rows = slice(b, 2 * b)
    ivs = [Intervention(s, "set", v, rows) for s, v in values.items()]
    with torch.no_grad():
        res = run_backend(model, toks.repeat(2, 1), interventions=ivs)
    if res.logits is None:
        msg = "the backend returned no logits"
        raise InputMismatchError(msg)
    m = m.bind(model, reference_logits=res.logits[:b])
    per_prompt = m(res.logits).reshape(2, b).float()
    return AblationResult([str(s) for s in sites], method, m.name, float(per_prompt[0].mean()),
                          float(per_prompt[1].mean()), per_prompt[0].tolist(), per_prompt[1].tolist(),
                          meta={"n_prompts": b, "seed": seed})


def ablation_sweep(
    model: Model,
    tokens: TokensLike,
    metric: Metric | Callable[[torch.Tensor], Any] | str,
    sites: str | Sequence[Site | str] = "heads",
    *,
    method: Method = "zero",
    reference: TokensLike | None = None,
    seed: int = 0,
    layers: Sequence[int] | None = None,
    max_batch: int | None = None,
    max_bytes: int | None = None,
    progress: Progress | None = None,
) -> SweepResult:
    """Ablate each site of a sweep (``"heads"``, ``"mlp_out_all_pos"``, ``"resid_pre"``, ... or a list) on its own.

    ``clean_metric`` of the result is the unablated metric; ``values`` the metric with each site ablated.
    """
    import torch

    toks = as_tokens(model, tokens)
    grid = build_grid(model, sites, toks, layers)
    ref = as_tokens(model, reference) if reference is not None else None
    values = ablation_values(model, toks, grid.sites, method, ref, seed)
    cap = [Site("hook_resid_pre", x) for x in range(model.spec.n_layers)] if supports_start(model) else []
    with torch.no_grad():
        base = run_backend(model, toks, capture=cap)
    assert base.logits is not None
    m = bind_metric(metric, model, tokens=toks, reference_logits=base.logits)
    base_metric = float(m.per_run(base.logits, toks.shape[0])[0])
    resid = {x: base.cache[f"blocks.{x}.hook_resid_pre"] for x in range(model.spec.n_layers)} if cap else None
    runs = [PatchRun([(s, "set", values[s])]) for s in grid.sites]
    out = run_sweep(model, toks, runs, m, base_resid=resid, max_batch=max_batch, max_bytes=max_bytes,
                    progress=progress)
    return SweepResult(out.values.reshape(grid.shape), grid.axes, grid.labels, "ablation", grid.name, m.name,
                       clean_metric=base_metric,
                       meta={"method": method, "seed": seed, "forward_passes": out.forward_passes + 2,
                             "n_prompts": int(toks.shape[0])})
