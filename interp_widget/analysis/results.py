"""Plain result objects of the causal experiments: a tensor, its axis labels, and metadata.

They import no widget code and need no rendering to be read: ``res.values`` is the tensor,
``res.labels[axis]`` names each index, ``res.to_dict()`` is JSON-ready, and ``res.normalized()``
rescales a patching result so that 0 is the corrupted run's metric and 1 the clean run's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from interp_widget.errors import InputMismatchError

if TYPE_CHECKING:
    import torch


@dataclass
class SweepResult:
    """The metric for every site of a sweep.

    ``values`` has one axis per name in ``axes`` (``("layer", "head")``, ``("layer", "pos")``, ...) and
    ``labels[axis]`` has one string per index. ``clean_metric`` / ``corrupted_metric`` are the
    unpatched runs' metrics (for an ablation: ``clean_metric`` is the unablated run). ``NaN`` marks
    sites that do not exist (e.g. a path-patching sender after its receiver).
    """

    values: torch.Tensor
    axes: tuple[str, ...]
    labels: dict[str, list[str]]
    kind: str  # "activation_patching", "ablation", "path_patching", "attribution"
    sites: str  # the sweep, e.g. "heads", "resid_pre"
    metric: str
    clean_metric: float | None = None
    corrupted_metric: float | None = None
    is_normalized: bool = False
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        shape = tuple(self.values.shape)
        want = tuple(len(self.labels[a]) for a in self.axes)
        if shape != want:
            msg = f"result values have shape {shape} but the axis labels {dict(zip(self.axes, want, strict=True))}"
            raise InputMismatchError(msg)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.values.shape)

    def normalized(self) -> SweepResult:
        """``(value - corrupted) / (clean - corrupted)``: 0 = corrupted run, 1 = clean run."""
        if self.is_normalized:
            return self
        c, k = self.clean_metric, self.corrupted_metric
        if c is None or k is None:
            msg = f"{self.kind} result has no clean and corrupted metric to normalise by"
            raise InputMismatchError(msg)
        if math.isclose(c, k, rel_tol=0.0, abs_tol=1e-12):
            msg = (f"cannot normalise: the clean and corrupted runs give the same metric ({c:.6g}); "
                   "choose prompts or a metric that tell them apart")
            raise InputMismatchError(msg)
        return replace(self, values=(self.values - k) / (c - k), is_normalized=True, meta=dict(self.meta))

    def index(self, flat: int) -> dict[str, int]:
        """The per-axis indices of a flat (C-order) index into ``values``."""
        out: dict[str, int] = {}
        for axis, n in reversed(list(zip(self.axes, self.shape, strict=True))):
            out[axis] = flat % n
            flat //= n
        return dict(reversed(list(out.items())))

    def top(self, k: int = 10, *, by: str = "abs") -> list[tuple[dict[str, int], float]]:
        """The ``k`` largest entries (``by="abs"``: largest magnitude, ``"value"``: largest value)."""
        import torch

        v = self.values.reshape(-1).float()
        key = v.abs() if by == "abs" else v
        key = torch.where(torch.isnan(key), torch.full_like(key, -math.inf), key)
        idx = key.argsort(descending=True)[:k].tolist()
        return [(self.index(i), float(v[i])) for i in idx]

    def label_of(self, index: dict[str, int]) -> str:
        return ", ".join(f"{a}={self.labels[a][i]}" for a, i in index.items())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: values as nested lists (NaN as None), labels, and metadata."""
        vals = self.values.detach().float().cpu()
        flat = [None if math.isnan(x) else x for x in vals.reshape(-1).tolist()]
        return {
            "kind": self.kind,
            "sites": self.sites,
            "metric": self.metric,
            "axes": list(self.axes),
            "shape": list(self.shape),
            "labels": {a: list(self.labels[a]) for a in self.axes},
            "values": _nest(flat, list(self.shape)),
            "clean_metric": self.clean_metric,
            "corrupted_metric": self.corrupted_metric,
            "normalized": self.is_normalized,
            "meta": _jsonable(self.meta),
        }

    def __repr__(self) -> str:
        dims = " x ".join(f"{a}={n}" for a, n in zip(self.axes, self.shape, strict=True))
        head = f"<{self.kind} {self.sites!r} [{dims}] metric={self.metric}"
        if self.clean_metric is not None:
            head += f" clean={self.clean_metric:.4g}"
        if self.corrupted_metric is not None:
            head += f" corrupted={self.corrupted_metric:.4g}"
        if self.is_normalized:
            head += " normalized"
        tops = "; ".join(f"{self.label_of(i)}: {v:.4g}" for i, v in self.top(3)) if self.values.numel() else ""
        return head + (f" top: {tops}>" if tops else ">")


@dataclass
class AblationResult:
    """The metric with and without an ablation (one value per run, and per prompt)."""

    components: list[str]
    method: str
    metric: str
    baseline: float
    ablated: float
    baseline_per_prompt: list[float]
    ablated_per_prompt: list[float]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def effect(self) -> float:
        """``ablated - baseline``."""
        return self.ablated - self.baseline

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "ablation", "components": list(self.components), "method": self.method,
                "metric": self.metric, "baseline": self.baseline, "ablated": self.ablated, "effect": self.effect,
                "baseline_per_prompt": list(self.baseline_per_prompt),
                "ablated_per_prompt": list(self.ablated_per_prompt), "meta": _jsonable(self.meta)}

    def __repr__(self) -> str:
        return (f"<ablation {self.method} of {len(self.components)} component(s) {self.components[:6]}"
                f"{'...' if len(self.components) > 6 else ''}: {self.metric} {self.baseline:.4g} -> "
                f"{self.ablated:.4g} (effect {self.effect:+.4g})>")


@dataclass
class AttributionCheck:
    """Attribution estimates against exact patching on the top-``k`` candidates."""

    indices: list[dict[str, int]]
    labels: list[str]
    estimate: list[float]
    exact: list[float]
    pearson: float
    sign_agreement: float  # fraction of candidates whose estimated effect has the exact effect's sign

    def to_dict(self) -> dict[str, Any]:
        return _jsonable({"indices": self.indices, "labels": self.labels, "estimate": self.estimate,
                          "exact": self.exact, "pearson": self.pearson, "sign_agreement": self.sign_agreement})

    def __repr__(self) -> str:
        return (f"<attribution check on {len(self.labels)} candidates: pearson={self.pearson:.3f}, "
                f"sign agreement={self.sign_agreement:.0%}>")


@dataclass(repr=False)
class AttributionResult(SweepResult):
    """An attribution sweep: ``values`` are estimated patched metrics; ``check`` compares with exact patching."""

    check: AttributionCheck | None = None

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d["check"] = self.check.to_dict() if self.check is not None else None
        return d

    def __repr__(self) -> str:
        base = super().__repr__()
        return base if self.check is None else f"{base[:-1]} {self.check!r}>"


def pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    """Pearson correlation of two same-shaped tensors (NaNs dropped)."""
    import torch

    a, b = a.reshape(-1).double(), b.reshape(-1).double()
    ok = ~(torch.isnan(a) | torch.isnan(b))
    a, b = a[ok] - a[ok].mean(), b[ok] - b[ok].mean()
    den = float(a.norm() * b.norm())
    return float((a * b).sum()) / den if den > 0 else math.nan


def _nest(flat: list[Any], shape: list[int]) -> Any:
    if not shape:
        return flat[0]
    if len(shape) == 1:
        return flat
    step = len(flat) // shape[0] if shape[0] else 0
    return [_nest(flat[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])]


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, float) and math.isnan(x):
        return None
    if hasattr(x, "tolist"):
        return _jsonable(x.tolist())
    return x
