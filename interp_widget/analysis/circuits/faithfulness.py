"""Faithfulness: how much of the clean-minus-corrupted metric a circuit recovers on its own.

Every edge outside the circuit is ablated (its sender's contribution to its receiver input replaced
by the corrupted run's value, ``"resample"``, or by the mean over the clean prompts, ``"mean"``); the
edges inside keep their values *as computed in the ablated run*, so ablations propagate.
``faithfulness = (M(circuit) - M(empty)) / (M(clean) - M(empty))`` where ``M(empty)`` ablates every edge
(for resample ablation it equals the corrupted run's metric exactly).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import torch

    from interp_widget.analysis.circuits._engine import EdgeRunner
    from interp_widget.analysis.metrics import Metric

Ablation = Literal["resample", "mean"]


def reference(clean_acts: torch.Tensor, corr_acts: torch.Tensor, ablation: str) -> torch.Tensor:
    """The replacement of every sender's output, ``[S, B, pos, d]``."""
    if ablation == "resample":
        return corr_acts
    if ablation == "mean":
        return clean_acts.mean(1, keepdim=True).expand_as(clean_acts)
    msg = f"ablation must be 'resample' or 'mean', not {ablation!r}"
    raise ValueError(msg)


@dataclass
class FaithfulnessCurve:
    """Faithfulness against the number of edges kept (the top ``n_edges[i]`` by ``|score|``)."""

    n_edges: list[int]
    fractions: list[float]
    metrics: list[float]
    clean_metric: float
    empty_metric: float
    total_edges: int
    ablation: str
    meta: dict[str, Any] = field(default_factory=dict)

    def edges_for(self, fraction: float) -> int | None:
        """The fewest edges (among those measured) that recover at least ``fraction``."""
        ok = [n for n, f in zip(self.n_edges, self.fractions, strict=True) if f >= fraction]
        return min(ok) if ok else None

    def to_dict(self) -> dict[str, Any]:
        return {"n_edges": self.n_edges, "fractions": self.fractions, "metrics": self.metrics,
                "clean_metric": self.clean_metric, "empty_metric": self.empty_metric,
                "total_edges": self.total_edges, "ablation": self.ablation}

    def __repr__(self) -> str:
        pts = ", ".join(f"{n}: {f:.3f}" for n, f in zip(self.n_edges, self.fractions, strict=True))
        return f"<FaithfulnessCurve ({self.ablation}) of {self.total_edges} edges: {pts}>"


def measure(runner: EdgeRunner, clean: torch.Tensor, metric: Metric, ref: torch.Tensor,
            kept: torch.Tensor, report: Callable[[int], None] | None = None) -> tuple[torch.Tensor, float, float]:
    """Metric per circuit (``kept`` ``[G, n_edges]``) and the clean and empty-circuit metrics (``G + 2`` runs;
    ``report(runs_done)`` after each batched chunk)."""
    import torch

    e = runner.n_edges
    masks = torch.cat([torch.zeros(1, e, dtype=torch.bool), torch.ones(1, e, dtype=torch.bool), ~kept])
    vals = runner.ablated_metric(clean, metric, ref, masks, report)
    return vals[2:], float(vals[0]), float(vals[1])


def fraction(value: float, clean: float, empty: float) -> float:
    gap = clean - empty
    return float("nan") if gap == 0 else (value - empty) / gap


def curve(runner: EdgeRunner, clean: torch.Tensor, metric: Metric, ref: torch.Tensor, scores: torch.Tensor,
          n_edges: Sequence[int], ablation: str, report: Callable[[int], None] | None = None) -> FaithfulnessCurve:
    import torch

    order = scores.abs().argsort(descending=True, stable=True)
    kept = torch.zeros(len(n_edges), runner.n_edges, dtype=torch.bool)
    for i, n in enumerate(n_edges):
        kept[i, order[:n]] = True
    vals, c, emp = measure(runner, clean, metric, ref, kept, report)
    return FaithfulnessCurve(list(n_edges), [fraction(float(v), c, emp) for v in vals], vals.tolist(), c, emp,
                             runner.n_edges, ablation)


def default_points(n: int) -> list[int]:
    """0, 1, 2, 4, ... up to ``n``, plus 5%, 10%, 20%, 50% of the edges."""
    pts = {0, n}
    k = 1
    while k < n:
        pts.add(k)
        k *= 2
    pts.update(max(1, round(n * f)) for f in (0.05, 0.1, 0.2, 0.5))
    return sorted(pts)
