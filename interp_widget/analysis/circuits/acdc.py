"""Exact ACDC-style pruning (Conmy et al. 2023), seeded from attribution scores.

1. The ``max_candidates`` edges with the largest ``|attribution|`` form the starting circuit; every other
   edge is ablated from the start (the attribution ranking prunes the long tail without patching).
2. Greedy pass, weakest candidates first, in chunks: each remaining edge of the chunk is removed on its
   own from the current circuit (one batched run, one row per edge) and the metric change measured;
   edges whose change is at most ``threshold`` are removed, weakest first, as long as the sum of their
   changes stays within ``threshold`` (so that redundant edges are not all dropped together), and the
   chunk is measured again until none of its edges is below the threshold.
3. Verification to a fixed point: the same on every kept edge of the final circuit, so that on return
   every kept edge changes the metric by more than ``threshold`` when removed from the circuit
   (``effects[e]`` holds that measured change, ``M(circuit) - M(circuit without e)``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from interp_widget.analysis.circuits._engine import EdgeRunner
    from interp_widget.analysis.metrics import Metric


@dataclass
class PruneStats:
    rounds: int = 0
    measured: int = 0  # single-edge removals measured


def _measure(runner: EdgeRunner, tokens: torch.Tensor, metric: Metric, ref: torch.Tensor, kept: torch.Tensor,
             edges: list[int], stats: PruneStats) -> tuple[float, torch.Tensor]:
    """M(circuit) and M(circuit) - M(circuit without e) for each e in ``edges``."""
    base = ~kept
    masks = base.repeat(len(edges) + 1, 1)
    for i, e in enumerate(edges):
        masks[i + 1, e] = True
    vals = runner.ablated_metric(tokens, metric, ref, masks)
    stats.rounds += 1
    stats.measured += len(edges)
    return float(vals[0]), vals[0] - vals[1:]


def _drop(edges: list[int], change: torch.Tensor, threshold: float, kept: torch.Tensor) -> int:
    """Remove the weakest edges at or below ``threshold`` while their summed |change| stays within it."""
    order = change.abs().argsort(stable=True).tolist()
    total, n = 0.0, 0
    for i in order:
        c = abs(float(change[i]))
        if c > threshold or (n > 0 and total + c > threshold):
            break
        kept[edges[i]] = False
        total += c
        n += 1
    return n


def prune(runner: EdgeRunner, tokens: torch.Tensor, metric: Metric, ref: torch.Tensor, scores: torch.Tensor,
          threshold: float, *, max_candidates: int, chunk: int = 64, max_rounds: int = 10_000,
          report: Callable[[int], None] | None = None) -> tuple[torch.Tensor, torch.Tensor, PruneStats]:
    """Returns ``(kept [n_edges] bool, effects [n_edges] (NaN where not measured), stats)``.

    ``report(done)`` counts candidates: after each chunk of the greedy pass ``done`` is the number of
    candidates passed, and ``len(candidates) + 1`` once the verification is over (an exception it raises
    stops the pruning)."""
    import torch

    if threshold < 0:
        msg = f"threshold must be >= 0, not {threshold}"
        raise ValueError(msg)
    stats = PruneStats()
    order = scores.abs().argsort(descending=True, stable=True)
    cand = order[:max_candidates].tolist()
    kept = torch.zeros(runner.n_edges, dtype=torch.bool)
    kept[cand] = True
    weakest_first = cand[::-1]
    for i in range(0, len(weakest_first), chunk):
        group = weakest_first[i:i + chunk]
        while stats.rounds < max_rounds:
            live = [e for e in group if bool(kept[e])]
            if not live:
                break
            _, change = _measure(runner, tokens, metric, ref, kept, live, stats)
            if _drop(live, change, threshold, kept) == 0:
                break
        if report is not None:
            report(min(i + chunk, len(cand)))
    effects = torch.full((runner.n_edges,), float("nan"))
    while stats.rounds < max_rounds:
        live = kept.nonzero().flatten().tolist()
        if not live:
            break
        changes = []
        for j in range(0, len(live), chunk):
            changes.append(_measure(runner, tokens, metric, ref, kept, live[j:j + chunk], stats)[1])
        change = torch.cat(changes)
        if _drop(live, change, threshold, kept) == 0:
            effects[live] = change
            break
    if report is not None:
        report(len(cand) + 1)
    return kept, effects, stats
