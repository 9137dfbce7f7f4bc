"""Path patching (Wang et al. 2022, the IOI paper): a sender's effect through one receiver input only.

For a sender (a head's output, or an MLP) and a receiver (a later head's queries, keys or values, any
later site such as ``blocks.L.hook_resid_pre``, or ``"logits"``):

1. run the base prompt with the sender's activation taken from the source prompt and every other
   head (and MLP, with ``freeze_mlps=True``) from layer ``sender`` up frozen to its base value, and
   record the receiver's input: it now differs from the base run only by the direct path
   sender -> receiver;
2. run the base prompt with only the receiver's input set to that recording, everything else
   computed normally, and measure the metric.

``direction="denoise"`` (default, as :func:`~interp_widget.analysis.patching.patch`): base = corrupted,
source = clean. ``"noise"``: base = clean, source = corrupted, as in the IOI paper. For the
``"logits"`` receiver, step 1's metric is the answer (the direct path to the output).
Both steps are batched: all senders in one sweep, all (sender, receiver) pairs in another.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from interp_widget.analysis.ablation import parse_component
from interp_widget.analysis.metrics import Metric, bind_metric
from interp_widget.analysis.patching import Direction
from interp_widget.analysis.results import SweepResult
from interp_widget.analysis.sweeps import (
    Grid,
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
from interp_widget.errors import InputMismatchError
from interp_widget.tracing.sites import Site

if TYPE_CHECKING:
    import torch

    from interp_widget.models.model import Model

_RECV_RE = re.compile(r"^L(\d+)H(\d+)[ ._:]?([qkv])$", re.IGNORECASE)
LOGITS = "logits"


def parse_receiver(model: Model, r: Site | str) -> Site | str:
    """``"logits"``, ``"L1H2.k"`` (head 2 of layer 1, its keys), a hook name or a Site."""
    if isinstance(r, str):
        if r in (LOGITS, "resid_post", "output"):
            return LOGITS
        m = _RECV_RE.match(r.strip())
        if m:
            return model.check_site(Site(f"attn.hook_{m.group(3).lower()}", int(m.group(1)), int(m.group(2))))
    s = model.check_site(r)
    if s.layer is None:
        msg = f"receiver {s} is not inside a layer: use a later head's q/k/v, a block site, or 'logits'"
        raise InputMismatchError(msg)
    return s


def _receiver_layer(model: Model, r: Site | str) -> int:
    """The layer a receiver reads its input in (``n_layers`` for the logits)."""
    if isinstance(r, str) or r.layer is None:
        return model.spec.n_layers
    return r.layer


def _sender_grid(model: Model, senders: str | Sequence[Site | str | tuple[int, int]], tokens: torch.Tensor) -> Grid:
    if isinstance(senders, str) and senders in ("heads", "mlp_out_all_pos", "mlps", "attn_out_all_pos"):
        name = "mlp_out_all_pos" if senders == "mlps" else senders
        return build_grid(model, name, tokens)
    items = [senders] if isinstance(senders, (str, Site, tuple)) else list(senders)
    sites = [parse_component(model, s) for s in items]
    for s in sites:
        if s.component not in ("attn.hook_z", "attn.hook_result", "hook_attn_out", "hook_mlp_out") or s.position is not None:
            msg = f"a sender is a head, an attention layer or an MLP (all positions), not {s}"
            raise InputMismatchError(msg)
    return Grid(("sender",), {"sender": [str(s) for s in sites]}, sites, "senders")


def _frozen_sets(model: Model, sender: Site, pair: Any, freeze_mlps: bool) -> list[tuple[Site, str, Any]]:
    """Interventions of step 1: sender from the source run, everything else from the base run."""
    n = model.spec.n_layers
    sets: list[tuple[Site, str, Any]] = []
    for layer in range(sender.layer or 0, n):
        z = Site("attn.hook_z", layer)
        value = pair.base_cache[z.hook_name]
        if sender.component == "attn.hook_z" and sender.layer == layer and sender.head is not None:
            value = value.clone()
            value[:, :, sender.head] = pair.source_cache[z.hook_name][:, :, sender.head]
        if not (sender.component in ("hook_attn_out", "attn.hook_result") and sender.layer == layer):
            sets.append((z, "set", value))
        if sender.component in ("hook_attn_out", "attn.hook_result") and sender.layer == layer:
            sets.append((sender, "set", select(pair.source_cache[sender.hook_name], sender)))
        if model.spec.d_mlp is not None:
            mlp = Site("hook_mlp_out", layer)
            if sender.component == "hook_mlp_out" and sender.layer == layer:
                sets.append((mlp, "set", pair.source_cache[mlp.hook_name]))
            elif freeze_mlps:
                sets.append((mlp, "set", pair.base_cache[mlp.hook_name]))
    return sets


def path_patch(
    model: Model,
    clean: TokensLike,
    corrupted: TokensLike,
    metric: Metric | Callable[[torch.Tensor], Any] | str,
    receivers: Site | str | Sequence[Site | str],
    senders: str | Sequence[Site | str | tuple[int, int]] = "heads",
    *,
    direction: Direction = "denoise",
    freeze_mlps: bool = True,
    normalize: bool = False,
    max_batch: int | None = None,
    max_bytes: int | None = None,
    progress: Progress | None = None,
) -> SweepResult:
    """Path patching from each sender to each receiver; returns the metric per (receiver,) sender.

    ``receivers``: one receiver (result axes = the senders' axes, e.g. ``layer x head``) or a list
    (a leading ``receiver`` axis). ``senders``: ``"heads"`` (every head), ``"mlps"``, or a list such as
    ``["L0H1", "MLP0"]``. Pairs whose sender is not below the receiver are ``NaN``.
    """
    if direction not in ("denoise", "noise"):
        msg = f"direction must be 'denoise' or 'noise', not {direction!r}"
        raise ValueError(msg)
    single = isinstance(receivers, (str, Site))
    items: list[Site | str] = [receivers] if isinstance(receivers, (str, Site)) else list(receivers)
    recv = [parse_receiver(model, r) for r in items]
    if not recv:
        msg = "no receivers given"
        raise InputMismatchError(msg)
    c, k = pair_tokens(model, clean, corrupted)
    base, source = (k, c) if direction == "denoise" else (c, k)
    grid = _sender_grid(model, senders, base)
    hooks = [Site("attn.hook_z", x) for x in range(model.spec.n_layers)]
    if model.spec.d_mlp is not None:
        hooks += [Site("hook_mlp_out", x) for x in range(model.spec.n_layers)]
    hooks += [s for s in grid.sites if s.component not in ("attn.hook_z", "hook_mlp_out")]
    hooks += [Site(r.component, r.layer) for r in recv if isinstance(r, Site)]
    pair = run_pair(model, base, source, hooks)
    clean_logits = pair.source_logits if direction == "denoise" else pair.base_logits
    m = bind_metric(metric, model, tokens=c, reference_logits=clean_logits)
    pair.score(m)
    b = base.shape[0]
    depth = [_receiver_layer(model, r) for r in recv]
    top = max(depth)
    active = [i for i, s in enumerate(grid.sites) if (s.layer or 0) < top]
    n_steps = 2
    step_progress = _Steps(progress, n_steps)
    # step 1: every sender, everything else frozen; record the receivers' inputs
    cap = list({r.hook_name: Site(r.component, r.layer) for r in recv if isinstance(r, Site)}.values())
    low = min(depth)
    runs1 = [PatchRun(_frozen_sets(model, grid.sites[i], pair, freeze_mlps), start=min(grid.sites[i].layer or 0, low))
             for i in active]
    prefix = shared_prefix(model, base, source)
    out1 = run_sweep(model, base, runs1, m, base_resid=pair.base_resid(model), base_cache=pair.base_cache,
                     prefix=prefix, capture=cap, max_batch=max_batch, max_bytes=max_bytes,
                     progress=step_progress.step(0))
    # step 2: each receiver input set to its recording, everything else free
    import torch

    values = torch.full((len(recv), len(grid.sites)), float("nan"))
    runs2: list[PatchRun] = []
    where: list[tuple[int, int]] = []
    for ri, r in enumerate(recv):
        for j, i in enumerate(active):
            s = grid.sites[i]
            if r == LOGITS:
                values[ri, i] = out1.values[j]
                continue
            assert isinstance(r, Site)
            if (s.layer or 0) >= (r.layer or 0):
                continue
            rec = out1.captures[r.hook_name][j * b:(j + 1) * b]
            runs2.append(PatchRun([(r, "set", select(rec, r))]))
            where.append((ri, i))
    if runs2:
        out2 = run_sweep(model, base, runs2, m, base_resid=pair.base_resid(model), base_cache=pair.base_cache,
                         prefix=prefix, max_batch=max_batch, max_bytes=max_bytes, progress=step_progress.step(1))
        for (ri, i), v in zip(where, out2.values.tolist(), strict=True):
            values[ri, i] = v
        passes = out1.forward_passes + out2.forward_passes + 1
    else:
        passes = out1.forward_passes + 1
    rlabels = [r if isinstance(r, str) else str(r) for r in recv]
    if single:
        vals, axes, labels = values[0].reshape(grid.shape), grid.axes, dict(grid.labels)
    else:
        vals = values.reshape(len(recv), *grid.shape)
        axes, labels = ("receiver", *grid.axes), {"receiver": rlabels, **grid.labels}
    clean_m, corr_m = ((pair.source_metric, pair.base_metric) if direction == "denoise"
                       else (pair.base_metric, pair.source_metric))
    res = SweepResult(vals, axes, labels, "path_patching", grid.name, m.name, clean_m, corr_m,
                      meta={"direction": direction, "receivers": rlabels, "freeze_mlps": freeze_mlps,
                            "forward_passes": passes, "n_prompts": int(b)})
    return res.normalized() if normalize else res


class _Steps:
    """Map the progress of step ``i`` of ``n`` onto one ``progress(done, total)`` over 0..1000."""

    def __init__(self, progress: Progress | None, n: int) -> None:
        self.progress, self.n = progress, n

    def step(self, i: int) -> Progress | None:
        if self.progress is None:
            return None
        cb = self.progress

        def report(done: int, total: int) -> Any:
            return cb(int(1000 * (i + (done / total if total else 1)) / self.n), 1000)

        return report
