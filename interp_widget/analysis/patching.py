"""Activation patching, batched: ``patch(model, clean, corrupted, metric, sites=...)``.

The corrupted prompt is run with one activation replaced by its value on the clean prompt
(``direction="denoise"``, TransformerLens's convention), once per site of the sweep; the result is the
metric of each patched run (``normalize=True``: 0 = the corrupted run, 1 = the clean run).
``direction="noise"`` runs the clean prompt with corrupted activations instead.

Sweeps (``sites=``), with TransformerLens's ``transformer_lens.patching`` equivalent:

===================  ==========================  ==============================================
sites                axes                        TransformerLens
===================  ==========================  ==============================================
``resid_pre``        layer x pos                 ``get_act_patch_resid_pre``
``resid_mid``        layer x pos                 ``get_act_patch_resid_mid``
``attn_out``         layer x pos                 ``get_act_patch_attn_out``
``mlp_out``          layer x pos                 ``get_act_patch_mlp_out``
``*_all_pos``        layer                       (``attn_out_all_pos``, ``mlp_out_all_pos``, ...)
``heads``            layer x head                ``get_act_patch_attn_head_out_all_pos``
``heads_by_pos``     layer x pos x head          ``get_act_patch_attn_head_out_by_pos``
``q`` / ``k`` / ``v``  layer x head              ``get_act_patch_attn_head_{q,k,v}_all_pos``
``*_by_pos``         layer x pos x head          ``get_act_patch_attn_head_{q,k,v}_by_pos``
``pattern``          layer x head                ``get_act_patch_attn_head_pattern_all_pos``
``pattern_by_pos``   layer x head x dest_pos     ``get_act_patch_attn_head_pattern_by_pos``
===================  ==========================  ==============================================

or an explicit list of :class:`~interp_widget.tracing.sites.Site` (a ``site`` axis). The patched runs
are stacked along the batch axis and chunked to ``max_bytes`` / ``max_batch``; see
:mod:`interp_widget.analysis.sweeps`. A site whose clean and corrupted activations are identical
(every position before the first differing token, in a causal model) is not run: patching it
changes nothing, so its value is the base run's metric.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from interp_widget.analysis.metrics import Metric, bind_metric
from interp_widget.analysis.results import SweepResult
from interp_widget.analysis.sweeps import (
    PatchRun,
    Progress,
    TokensLike,
    build_grid,
    pair_tokens,
    run_pair,
    run_sweep,
    select,
    shared_prefix,
)

if TYPE_CHECKING:
    import torch

    from interp_widget.models.model import Model
    from interp_widget.tracing.sites import Site

Direction = Literal["denoise", "noise"]


def patch(
    model: Model,
    clean: TokensLike,
    corrupted: TokensLike,
    metric: Metric | Callable[[torch.Tensor], Any] | str,
    sites: str | Sequence[Site | str] = "heads",
    *,
    direction: Direction = "denoise",
    normalize: bool = False,
    layers: Sequence[int] | None = None,
    max_batch: int | None = None,
    max_bytes: int | None = None,
    progress: Progress | None = None,
) -> SweepResult:
    """Activation patching over a sweep of sites; returns the patched metric for every site.

    ``clean`` / ``corrupted``: text, a list of texts, or tokens ``[batch, pos]`` of the same shape
    (different token lengths raise :class:`~interp_widget.errors.InputMismatchError`). ``metric``:
    a :class:`~interp_widget.analysis.metrics.Metric`, a callable ``logits -> scalar or [rows]``, or
    ``"loss"`` / ``"kl"`` (loss targets and the KL reference default to the clean run).
    ``progress(done, total)`` is called after each batched chunk; raising from it cancels the sweep.
    """
    import torch

    if direction not in ("denoise", "noise"):
        msg = f"direction must be 'denoise' (patch clean into corrupted) or 'noise', not {direction!r}"
        raise ValueError(msg)
    c, k = pair_tokens(model, clean, corrupted)
    base, source = (k, c) if direction == "denoise" else (c, k)
    grid = build_grid(model, sites, base, layers)
    pair = run_pair(model, base, source, grid.sites)
    clean_logits = pair.source_logits if direction == "denoise" else pair.base_logits
    m = bind_metric(metric, model, tokens=c, reference_logits=clean_logits)
    pair.score(m)
    # a patch whose value equals the base run's activation changes nothing: its result is the base metric
    # (e.g. every position before the first token where clean and corrupted differ, in a causal model)
    runs, where = [], []
    values = torch.full((len(grid.sites),), pair.base_metric)
    for i, s in enumerate(grid.sites):
        new = select(pair.source_cache[s.hook_name], s)
        if not torch.equal(new, select(pair.base_cache[s.hook_name], s)):
            runs.append(PatchRun([(s, "set", new)]))
            where.append(i)
    out = run_sweep(model, base, runs, m, base_resid=pair.base_resid(model), base_cache=pair.base_cache,
                    prefix=shared_prefix(model, base, source), max_batch=max_batch, max_bytes=max_bytes,
                    progress=progress)
    if where:
        values[torch.tensor(where)] = out.values
    clean_m, corr_m = ((pair.source_metric, pair.base_metric) if direction == "denoise"
                       else (pair.base_metric, pair.source_metric))
    res = SweepResult(values.reshape(grid.shape), grid.axes, grid.labels, "activation_patching", grid.name,
                      m.name, clean_m, corr_m,
                      meta={"direction": direction, "forward_passes": out.forward_passes + 1,
                            "patched_runs": len(runs), "unchanged_sites": len(grid.sites) - len(runs),
                            "shared_prefix": out.prefix,
                            "n_prompts": int(base.shape[0])})
    return res.normalized() if normalize else res
