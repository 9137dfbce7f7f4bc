"""Attribution patching: a whole patching sweep from gradients, with AtP*'s fix for saturated attention.

Plain AtP (Nanda 2023; Kramár et al. 2024): one forward and backward pass on the base prompt and one
forward pass on the source prompt give, for every site, the first-order estimate

    metric(base with site := source) - metric(base)  ~=  sum (a_source - a_base) * d metric / d a_base

``direction="noise"`` (default): base = clean (gradients at the clean run), source = corrupted.
``"denoise"``: base = corrupted, source = clean, the direction of :func:`~interp_widget.analysis.patching.patch`.
``values`` are the estimated patched metrics, directly comparable with exact patching in the same
direction (``normalized()``: 0 = corrupted, 1 = clean).

The linear estimate is wrong where attention saturates: a softmax that puts ~all its weight on one
key has ~zero gradient, so an upstream node whose effect runs through a later head's queries or keys
(a previous-token head feeding an induction head's keys) gets ~nothing for that path, and its other,
smaller paths can give it the wrong sign. ``method="atp*"`` (default) applies AtP*'s QK fix: it
recomputes the attention softmax for the query/key part instead of linearising through it.

* queries / keys (sweeps ``q``, ``k``, ``q_by_pos``, ``k_by_pos``), as in the paper: the patched pattern
  is computed exactly, ``softmax(scale * q k^T)`` with the source's q (or k), and only what follows
  the pattern is linearised: ``sum dM/dA * (A_patched - A)``;
* nodes that write to the residual stream (heads, attention and MLP outputs, the residual stream):
  for every later layer, that layer's attention scores are recomputed from its input plus the node's
  direct-path change ``d`` (a batched pass per layer that starts at the layer and stops once the
  scores are taken), and plain AtP's term for this path, ``dM/dA . J_softmax dS`` (``dS`` the
  linearised score change, by central difference), is replaced by ``dM/dA . (softmax(S(x + d)) - A)``.
  Everything else (values, MLPs, indirect paths) stays as in plain AtP, so where attention is not
  saturated AtP* and AtP agree. ``v`` and ``pattern`` sweeps keep the plain estimate.

Cost: plain AtP is two passes (the two unpatched runs stacked, then one forward and backward); the QK
fix adds, per layer, one batched pass over the nodes below it (three rows each) that computes only
that layer's attention scores.

``verify_top=k`` runs exact patching on the ``k`` sites with the largest estimated effect and attaches
an :class:`~interp_widget.analysis.results.AttributionCheck` (Pearson r, sign agreement).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from interp_widget.analysis.metrics import Metric, bind_metric
from interp_widget.analysis.patching import Direction
from interp_widget.analysis.results import AttributionCheck, AttributionResult, pearson
from interp_widget.analysis.sweeps import (
    Grid,
    PatchRun,
    Progress,
    TokensLike,
    build_grid,
    pair_tokens,
    run_backend,
    run_pair,
    run_sweep,
    select,
    shared_prefix,
)
from interp_widget.errors import BackendError
from interp_widget.tracing.base import Intervention
from interp_widget.tracing.sites import Site

if TYPE_CHECKING:
    import torch

    from interp_widget.models.model import Model

AtpMethod = Literal["atp", "atp*"]
_QK = ("attn.hook_q", "attn.hook_k")


def _fit_scale(q: torch.Tensor, k: torch.Tensor, scores: torch.Tensor, where: str) -> float:
    """The attention scale ``c`` with ``scores = c * q . k`` (checked), from captured tensors."""
    import torch

    qk = torch.einsum("bqhd,bkhd->bhqk", q.double(), k.double())
    ok = torch.isfinite(scores) & (scores > -1e8)
    s = scores.double()[ok]
    x = qk[ok]
    c = float((s * x).sum() / (x * x).sum().clamp_min(1e-30))
    err = float((s - c * x).abs().max()) if s.numel() else 0.0
    if err > 1e-3 * max(1.0, float(s.abs().max()) if s.numel() else 1.0):
        msg = (f"AtP* for queries/keys needs attention scores = scale * q.k; at {where} they differ by up to "
               f"{err:.3g} (rotary or additive position terms?). Use method='atp' for this sweep")
        raise BackendError(msg)
    return c


def _softmax_masked(s: torch.Tensor, causal: bool) -> torch.Tensor:
    import torch

    if causal:
        n_q, n_k = s.shape[-2], s.shape[-1]
        mask = torch.ones(n_q, n_k, dtype=torch.bool, device=s.device).tril(n_k - n_q)
        s = s.masked_fill(~mask, float("-inf"))
    return s.softmax(-1)


def _qk_exact(model: Model, grid: Grid, base: dict[str, torch.Tensor], src: dict[str, torch.Tensor],
              grads: dict[str, torch.Tensor]) -> dict[Site, float]:
    """AtP*: the exact pattern change of each q / k patch, times the gradient at the pattern."""
    import torch

    causal = model.spec.causal
    out: dict[Site, float] = {}
    for layer in sorted({s.layer for s in grid.sites if s.layer is not None and s.component in _QK}):
        pre = f"blocks.{layer}.attn."
        q, k = base[pre + "hook_q"].double(), base[pre + "hook_k"].double()
        c = _fit_scale(base[pre + "hook_q"], base[pre + "hook_k"], base[pre + "hook_attn_scores"], f"layer {layer}")
        a = base[pre + "hook_pattern"].double()
        g = grads[pre + "hook_pattern"].double()
        s_base = c * torch.einsum("bqhd,bkhd->bhqk", q, k)
        for site in (s for s in grid.sites if s.layer == layer and s.component in _QK):
            is_q = site.component == "attn.hook_q"
            new = src[site.hook_name].double()
            h = site.head
            if site.position is None:  # every position of the head
                qq, kk = (new, k) if is_q else (q, new)
                s_new = c * torch.einsum("bqd,bkd->bqk", qq[:, :, h], kk[:, :, h])
            else:
                p = site.position
                s_new = s_base[:, h].clone()
                if is_q:
                    s_new[:, p, :] = c * torch.einsum("bd,bkd->bk", new[:, p, h], k[:, :, h])
                else:
                    s_new[:, :, p] = c * torch.einsum("bqd,bd->bq", q[:, :, h], new[:, p, h])
            delta = _softmax_masked(s_new, causal) - a[:, h]
            out[site] = float((g[:, h] * delta).sum())
    return out


#: components whose change enters the residual stream directly: the hook holding that change, and the
#: offset of the first layer whose attention reads it
_DIRECT: dict[str, tuple[str, int]] = {
    "attn.hook_z": ("attn.hook_result", 1),
    "attn.hook_result": ("attn.hook_result", 1),
    "hook_attn_out": ("hook_attn_out", 1),
    "hook_mlp_out": ("hook_mlp_out", 1),
    "hook_resid_mid": ("hook_resid_mid", 1),
    "hook_resid_post": ("hook_resid_post", 1),
    "hook_resid_pre": ("hook_resid_pre", 0),
}


def _direct_change(site: Site, base: dict[str, torch.Tensor], src: dict[str, torch.Tensor]) -> torch.Tensor:
    """The change of the residual stream (``[B, pos, d_model]``) when ``site`` alone is patched: direct path."""
    import torch

    hook, _ = _DIRECT[site.component]
    name = f"blocks.{site.layer}.{hook}"
    d = src[name] - base[name]
    if site.head is not None:
        d = d[:, :, site.head]
    if site.position is not None:
        keep = torch.zeros(d.shape[1], dtype=torch.bool, device=d.device)
        keep[site.position] = True
        d = d * keep[None, :, None]
    return d


#: step of the central difference that linearises a node's effect on later attention scores
FD_STEP = 1e-2


def _qk_correction(model: Model, grid: Grid, base_tokens: torch.Tensor, base: dict[str, torch.Tensor],
                   src: dict[str, torch.Tensor], grads: dict[str, torch.Tensor],
                   max_bytes: int | None, prefix: int = 0) -> tuple[dict[Site, float], int]:
    """AtP*'s QK fix for nodes upstream of attention: ``(correction per site, forward passes)``.

    For every later layer ``Lr`` whose attention reads a node's output, the layer's attention scores are
    recomputed from ``resid_pre[Lr] + d`` with ``d`` the node's direct-path change (a batched pass that
    starts at ``Lr`` and stops once the scores are captured, where the backend allows): exactly
    (``S(x + d)``) and linearised (central difference, ``(S(x + e d) - S(x - e d)) / 2e``). Plain AtP's
    term for this path, ``dM/dA . J_softmax dS_lin``, is replaced by ``dM/dA . (softmax(S(x + d)) - A)``.
    With ``prefix=P`` (positions where base and source agree, see :func:`shared_prefix`) only the query
    positions after it are computed, the prefix's keys and values coming from the base run.
    """
    import torch

    from interp_widget.analysis.sweeps import DEFAULT_MAX_BYTES, supports_prefix, supports_start

    spec = model.spec
    b, n_pos = base_tokens.shape
    nodes = [(s, _direct_change(s, base, src), (s.layer or 0) + _DIRECT[s.component][1])
             for s in grid.sites if s.component in _DIRECT]
    corr: dict[Site, float] = {s: 0.0 for s in grid.sites}
    kv_names = [f"blocks.{x}.attn.hook_{c}" for x in range(spec.n_layers) for c in ("k", "v")]
    p = prefix if (prefix > 0 and supports_prefix(model) and supports_start(model)
                   and all(n in base for n in kv_names)) else 0
    per_node = 3 * b * 4 * n_pos * (8 * spec.d_model + 4 * spec.n_heads * n_pos)
    cap = max(1, (max_bytes or DEFAULT_MAX_BYTES) // per_node)
    eps = FD_STEP
    passes = 0
    for layer in range(spec.n_layers):
        todo = [(s, d) for s, d, first in nodes if first <= layer and bool(d.any())]
        if not todo:
            continue
        pre = f"blocks.{layer}."
        scores_site = Site("attn.hook_attn_scores", layer)
        x = base[pre + "hook_resid_pre"][:, p:]
        a = base[pre + "attn.hook_pattern"].double()[:, :, p:]
        g = grads[pre + "attn.hook_pattern"].double()[:, :, p:]
        for i in range(0, len(todo), cap):
            chunk = todo[i:i + cap]
            resid = torch.cat([torch.cat([x + d[:, p:], x + eps * d[:, p:], x - eps * d[:, p:]]) for _, d in chunk])
            rows = 3 * len(chunk)
            big = base_tokens[:, p:].repeat(rows, 1)
            if p:
                kv = [(base[f"blocks.{y}.attn.hook_k"][:, :p].repeat(rows, 1, 1, 1),
                       base[f"blocks.{y}.attn.hook_v"][:, :p].repeat(rows, 1, 1, 1)) for y in range(spec.n_layers)]
                res = run_backend(model, big, capture=[scores_site], start_at_layer=layer, resid=resid,
                                  stop_after_capture=True, prefix_kv=kv)
            elif layer > 0 and supports_start(model):
                res = run_backend(model, big, capture=[scores_site], start_at_layer=layer, resid=resid,
                                  stop_after_capture=True)
            else:
                res = run_backend(model, big, capture=[scores_site], stop_after_capture=True,
                                  interventions=[Intervention(Site("hook_resid_pre", layer), "set", resid)])
            passes += 1
            s_all = res.cache[scores_site.hook_name].double().reshape(len(chunk), 3, *a.shape)
            s_new, s_up, s_down = s_all[:, 0], s_all[:, 1], s_all[:, 2]
            ds = (s_up - s_down) / (2 * eps)
            ds = torch.where(torch.isfinite(ds), ds, torch.zeros_like(ds))
            linear = a * (ds - (a * ds).sum(-1, keepdim=True))  # J_softmax dS
            fix = (g * (s_new.softmax(-1) - a - linear)).flatten(1).sum(1)
            for (site, _), v in zip(chunk, fix.tolist(), strict=True):
                corr[site] += v
    return corr, passes


def _reduce(grid: Grid, diff: dict[str, torch.Tensor], grads: dict[str, torch.Tensor]) -> dict[Site, float]:
    prods = {n: (diff[n] * grads[n]).double() for n in {s.hook_name for s in grid.sites}}
    return {s: float(select(prods[s.hook_name], s).sum()) for s in grid.sites}


def attribute(
    model: Model,
    clean: TokensLike,
    corrupted: TokensLike,
    metric: Metric | Callable[[torch.Tensor], Any] | str,
    sites: str | Sequence[Site | str] = "heads",
    *,
    method: AtpMethod = "atp*",
    direction: Direction = "noise",
    verify_top: int = 0,
    normalize: bool = False,
    layers: Sequence[int] | None = None,
    max_batch: int | None = None,
    max_bytes: int | None = None,
    progress: Progress | None = None,
) -> AttributionResult:
    """Attribution patching over a sweep (see the module docstring); ``verify_top=k`` checks the top k exactly."""
    import torch

    if method not in ("atp", "atp*"):
        msg = f"method must be 'atp' or 'atp*', not {method!r}"
        raise ValueError(msg)
    if direction not in ("denoise", "noise"):
        msg = f"direction must be 'noise' (gradients at the clean run) or 'denoise', not {direction!r}"
        raise ValueError(msg)
    c, k = pair_tokens(model, clean, corrupted)
    base_t, src_t = (c, k) if direction == "noise" else (k, c)
    grid = build_grid(model, sites, base_t, layers)
    b = base_t.shape[0]
    n_layers = model.spec.n_layers
    hooks = {s.hook_name: Site(s.component, s.layer) for s in grid.sites}
    star = method == "atp*"
    extra: dict[str, Site] = {}
    if star:
        for layer in range(n_layers):
            for comp in ("attn.hook_attn_scores", "attn.hook_pattern", "attn.hook_q", "attn.hook_k",
                         "hook_resid_pre"):
                extra[f"blocks.{layer}.{comp}"] = Site(comp, layer)
        for s in grid.sites:
            if s.component in _DIRECT:
                hook = Site(_DIRECT[s.component][0], s.layer)
                extra[hook.hook_name] = hook
    cap = list({**hooks, **extra}.values())
    pattern_sites = [Site("attn.hook_pattern", x) for x in range(n_layers)] if star else []
    # the unpatched runs (one pass of 2B rows) give both caches and the metric's reference
    pair = run_pair(model, base_t, src_t, cap)
    clean_logits = pair.base_logits if direction == "noise" else pair.source_logits
    m = bind_metric(metric, model, tokens=c, reference_logits=clean_logits)
    pair.score(m)
    if progress is not None:
        progress(0, 3)
    diff = {n: pair.source_cache[n] - pair.base_cache[n] for n in hooks}
    grad_sites = [*hooks.values(), *pattern_sites]
    passes = 2
    res = run_backend(model, base_t, grads=grad_sites, metric=lambda lg: m.scalar(lg, b))
    plain = _reduce(grid, diff, res.grads)
    est = dict(plain)
    if star:
        est.update(_qk_exact(model, grid, pair.base_cache, pair.source_cache, res.grads))
        if any(s.component in _DIRECT for s in grid.sites):
            if progress is not None:
                progress(1, 3)
            fix, extra_passes = _qk_correction(model, grid, base_t, pair.base_cache, pair.source_cache, res.grads,
                                               max_bytes, prefix=shared_prefix(model, base_t, src_t))
            passes += extra_passes
            est.update({s: plain[s] + fix[s] for s in grid.sites if s.component in _DIRECT})
    if progress is not None:
        progress(2, 3)
    base_metric = pair.base_metric
    values = torch.tensor([base_metric + est[s] for s in grid.sites], dtype=torch.float32).reshape(grid.shape)
    plain_v = torch.tensor([base_metric + plain[s] for s in grid.sites], dtype=torch.float32).reshape(grid.shape)
    clean_m, corr_m = ((pair.base_metric, pair.source_metric) if direction == "noise"
                       else (pair.source_metric, pair.base_metric))
    check = None
    if verify_top > 0:
        check, extra_passes = _verify(model, grid, pair, m, est, verify_top, max_batch=max_batch,
                                      max_bytes=max_bytes)
        passes += extra_passes
    if progress is not None:
        progress(3, 3)
    out = AttributionResult(values, grid.axes, grid.labels, "attribution", grid.name, m.name, clean_m, corr_m,
                            meta={"method": method, "direction": direction, "forward_passes": passes,
                                  "n_prompts": int(b), "plain_atp": plain_v},
                            check=check)
    if normalize:
        n = out.normalized()
        n.meta["plain_atp"] = (plain_v - corr_m) / (clean_m - corr_m)
        return n  # type: ignore[return-value]
    return out


def _verify(model: Model, grid: Grid, pair: Any, m: Metric, est: dict[Site, float], k: int, *,
            max_batch: int | None, max_bytes: int | None) -> tuple[AttributionCheck, int]:
    """Exact patching (same direction) on the ``k`` sites with the largest estimated effect."""
    import torch

    order = sorted(range(len(grid.sites)), key=lambda i: -abs(est[grid.sites[i]]))[:k]
    runs = [PatchRun([(grid.sites[i], "set", select(pair.source_cache[grid.sites[i].hook_name], grid.sites[i]))])
            for i in order]
    out = run_sweep(model, pair.base_tokens, runs, m, base_resid=pair.base_resid(model), base_cache=pair.base_cache,
                    prefix=shared_prefix(model, pair.base_tokens, pair.source_tokens), max_batch=max_batch,
                    max_bytes=max_bytes)
    shape = grid.shape
    idx = []
    for i in order:
        d, rest = {}, i
        for axis, n in reversed(list(zip(grid.axes, shape, strict=True))):
            d[axis] = rest % n
            rest //= n
        idx.append(dict(reversed(list(d.items()))))
    estimate = [pair.base_metric + est[grid.sites[i]] for i in order]
    exact = out.values.tolist()
    eff_e = torch.tensor(estimate) - pair.base_metric
    eff_x = torch.tensor(exact) - pair.base_metric
    agree = float(((eff_e.sign() == eff_x.sign()) | (eff_x.abs() < 1e-6)).float().mean()) if order else float("nan")
    check = AttributionCheck(idx, [str(grid.sites[i]) for i in order], estimate, exact,
                             pearson(torch.tensor(estimate), torch.tensor(exact)), agree)
    return check, out.forward_passes
