"""Superposition geometry of toy models (Elhage et al. 2022): norms, interference, dimensionality.

>>> res = superposition()                 # every sparsity of the zoo's superposition-toy   # doctest: +SKIP
>>> res.n_represented, res.dims_per_feature                                                   # doctest: +SKIP
>>> res                                   # displays as the superposition widget              # doctest: +SKIP

For weights ``W`` ``[m, n]`` (column ``W_i`` is feature ``i``'s direction in the ``m``-dim hidden space):

* ``norms[i] = |W_i|``: whether feature ``i`` is represented (about 1) or dropped (about 0);
* ``gram = W^T W`` ``[n, n]``: its diagonal holds ``|W_i|^2``, its off-diagonal the *interference*
  ``W_i . W_j`` between features;
* ``superposition[i] = sum_{j != i} (W^_i . W_j)^2`` (``W^_i`` the unit direction): how much other
  features share feature ``i``'s direction (0 when it has a dimension of its own);
* ``dimensionality[i] = |W_i|^2 / sum_j (W^_i . W_j)^2``: the fraction of a hidden dimension feature ``i``
  gets (1: a dedicated dimension, 1/2: an antipodal pair, 2/5: a pentagon);
* ``dims_per_feature = m / |W|_F^2``: hidden dimensions per represented feature (the paper's ``D*``);
* ``projection`` ``[n, 2]``: the feature directions projected on the two principal axes of ``W``'s columns.

All of these are per sparsity (one row per trained instance).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from interp_widget.errors import InputMismatchError

if TYPE_CHECKING:
    import torch

#: a feature counts as represented when its norm is at least this
REPRESENTED = 0.5


@dataclass
class SuperpositionResult:
    """Geometry of ``k`` toy models: ``W`` ``[k, m, n]`` with one sparsity per model."""

    W: torch.Tensor
    sparsities: list[float]
    importance: torch.Tensor | None = None
    b: torch.Tensor | None = None
    feature_labels: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.W.ndim == 2:
            self.W = self.W[None]
            if self.b is not None and self.b.ndim == 1:
                self.b = self.b[None]
        if self.W.ndim != 3:
            msg = f"W must be [m, n] or [k, m, n] (hidden x features), got shape {tuple(self.W.shape)}"
            raise InputMismatchError(msg)
        self.W = self.W.detach().float().cpu()
        if len(self.sparsities) != self.W.shape[0]:
            msg = f"{len(self.sparsities)} sparsities for {self.W.shape[0]} models"
            raise InputMismatchError(msg)
        if not self.feature_labels:
            self.feature_labels = [f"f{i}" for i in range(self.W.shape[2])]

    @property
    def n_features(self) -> int:
        return int(self.W.shape[2])

    @property
    def n_hidden(self) -> int:
        return int(self.W.shape[1])

    @property
    def norms(self) -> torch.Tensor:
        """``[k, n]``: ``|W_i|``."""
        return self.W.norm(dim=1)

    @property
    def gram(self) -> torch.Tensor:
        """``[k, n, n]``: ``W^T W`` (diagonal: squared norms; off-diagonal: interference)."""
        return self.W.transpose(1, 2) @ self.W

    @property
    def interference(self) -> torch.Tensor:
        """``[k, n, n]``: ``W^T W`` with its diagonal zeroed."""
        import torch

        g = self.gram
        return g - torch.diag_embed(torch.diagonal(g, dim1=1, dim2=2))

    def _unit_dots_sq(self) -> torch.Tensor:
        """``[k, n, n]``: ``(W^_i . W_j)^2`` (row ``i``)."""
        unit = self.W / self.norms[:, None, :].clamp_min(1e-8)
        return (unit.transpose(1, 2) @ self.W) ** 2

    @property
    def superposition(self) -> torch.Tensor:
        """``[k, n]``: ``sum_{j != i} (W^_i . W_j)^2``."""
        import torch

        d = self._unit_dots_sq()
        return d.sum(-1) - torch.diagonal(d, dim1=1, dim2=2)

    @property
    def dimensionality(self) -> torch.Tensor:
        """``[k, n]``: ``|W_i|^2 / sum_j (W^_i . W_j)^2`` (0 for dropped features)."""
        d = self._unit_dots_sq().sum(-1)
        dim = self.norms**2 / d.clamp_min(1e-12)
        return dim * (self.norms >= 1e-4)

    @property
    def dims_per_feature(self) -> torch.Tensor:
        """``[k]``: ``m / |W|_F^2``."""
        return self.n_hidden / (self.W**2).sum(dim=(1, 2)).clamp_min(1e-12)

    @property
    def n_represented(self) -> list[int]:
        """Per model, how many features have norm >= :data:`REPRESENTED`."""
        return [int(v) for v in (self.norms >= REPRESENTED).sum(-1)]

    @property
    def projection(self) -> torch.Tensor:
        """``[k, n, 2]``: feature directions on the two principal axes of each model's hidden space.

        The axes are the top two left singular vectors of ``W`` (signs fixed so the largest-norm
        feature points right and up); with 2 hidden dimensions this is an exact rotation."""
        import torch

        out = torch.zeros(self.W.shape[0], self.n_features, 2)
        for k in range(self.W.shape[0]):
            u, _, _ = torch.linalg.svd(self.W[k], full_matrices=False)
            p = (u[:, :2].T @ self.W[k]).T  # [n, 2]
            top = int(self.norms[k].argmax())
            for a in range(min(2, p.shape[1])):
                if p[top, a] < 0:
                    p[:, a] = -p[:, a]
            out[k, :, : p.shape[1]] = p
        return out

    def summary(self) -> list[dict[str, Any]]:
        """One row per sparsity: represented features and dimensions per feature."""
        return [{"sparsity": s, "feature_probability": round(1 - s, 6), "n_represented": r,
                 "dims_per_feature": round(float(d), 4)}
                for s, r, d in zip(self.sparsities, self.n_represented, self.dims_per_feature, strict=True)]

    def __repr__(self) -> str:
        rows = ", ".join(f"S={s:g}: {r}/{self.n_features}" for s, r in zip(self.sparsities, self.n_represented,
                                                                              strict=True))
        return f"<SuperpositionResult {self.n_features} features in {self.n_hidden} dims; represented {rows}>"


def superposition(source: Any = None, *, sparsities: Sequence[float] | None = None) -> SuperpositionResult:
    """The superposition geometry of ``source``: nothing (the zoo's ``superposition-toy``, every sparsity),
    a :class:`~interp_widget.zoo.superposition_toy.ToyModels`, a toy module / Model with a ``W``
    ``[m, n]``, or weights ``W`` ``[m, n]`` / ``[k, m, n]`` (with ``sparsities``)."""
    import torch

    if source is None:
        from interp_widget.zoo.superposition_toy import load_all

        source = load_all()
    raw = getattr(source, "raw", None)
    if raw is not None and isinstance(getattr(raw, "W", None), torch.Tensor):  # a Model over a toy module
        source = raw
    if isinstance(source, torch.nn.Module):
        w = getattr(source, "W", None)
        if not isinstance(w, torch.Tensor):
            msg = f"{type(source).__name__} has no W [hidden, features] weight"
            raise InputMismatchError(msg)
        b = getattr(source, "b", None)
        return SuperpositionResult(w, [float(getattr(source, "sparsity", 0.0))],
                                   getattr(source, "importance", None), b.detach() if b is not None else None)
    if isinstance(source, torch.Tensor):
        k = 1 if source.ndim == 2 else int(source.shape[0])
        sp = list(sparsities) if sparsities is not None else [float("nan")] * k
        return SuperpositionResult(source, sp)
    if hasattr(source, "W") and hasattr(source, "sparsities"):
        return SuperpositionResult(source.W, list(source.sparsities), getattr(source, "importance", None),
                                   getattr(source, "b", None))
    msg = f"cannot read superposition weights from a {type(source).__name__}"
    raise TypeError(msg)


__all__ = ["REPRESENTED", "SuperpositionResult", "superposition"]
