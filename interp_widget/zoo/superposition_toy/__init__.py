"""``superposition-toy``: the ReLU-output toy models of Elhage et al. (2022), "Toy Models of Superposition".

``n = 20`` sparse features go through ``m = 5`` hidden dimensions and back:
``h = W x``, ``x' = ReLU(W^T h + b)``, with ``W`` ``[5, 20]``. Each feature is 0 with probability ``S``
(the sparsity) and uniform in [0, 1] otherwise; the loss weights feature ``i`` by its importance
``0.7 ** i``. One model is trained per sparsity in :data:`SPARSITIES` (all at once, as instances of
one batched model) by ``scripts/train_superposition_toy.py`` (seeded; seconds on a CPU), and stored in
``model.safetensors`` (``W`` ``[k, 5, 20]``, ``b`` ``[k, 20]``, ``sparsities``, ``importance``).

* :func:`load_all` gives every instance (:class:`ToyModels`), what the superposition analysis and widget use;
* :func:`load` (``iw.load("superposition-toy")``) gives one sparsity (default :data:`DEFAULT_SPARSITY`)
  as a :class:`~interp_widget.models.model.Model` over a torch module whose sites are
  ``module:hidden`` (``h``, ``[batch, 5]``) and ``module:relu`` (the output ``[batch, 20]``); inputs are
  feature vectors ``[batch, 20]``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from interp_widget.errors import ModelLoadError

if TYPE_CHECKING:
    import torch

    from interp_widget.models.model import Model

NAME = "superposition-toy"
HERE = Path(__file__).resolve().parent
WEIGHTS = HERE / "model.safetensors"
N_FEATURES, N_HIDDEN = 20, 5
IMPORTANCE_DECAY = 0.7
SPARSITIES: tuple[float, ...] = (0.0, 0.7, 0.9, 0.97, 0.99, 0.997)
DEFAULT_SPARSITY = 0.99


@dataclass
class ToyModels:
    """Every trained instance: ``W`` ``[k, m, n]``, ``b`` ``[k, n]``, one sparsity per instance."""

    W: torch.Tensor
    b: torch.Tensor
    sparsities: list[float]
    importance: torch.Tensor  # [n]

    @property
    def n_features(self) -> int:
        return int(self.W.shape[2])

    @property
    def n_hidden(self) -> int:
        return int(self.W.shape[1])

    def index(self, sparsity: float) -> int:
        """The instance trained at ``sparsity``."""
        for i, s in enumerate(self.sparsities):
            if abs(s - sparsity) < 1e-9:
                return i
        msg = f"no superposition-toy model at sparsity {sparsity}; trained sparsities: {self.sparsities}"
        raise ModelLoadError(msg)

    def sample(self, n: int, sparsity: float, *, seed: int = 0) -> torch.Tensor:
        """``n`` seeded feature vectors ``[n, n_features]`` drawn as in training."""
        import torch

        g = torch.Generator().manual_seed(seed)
        x = torch.rand(n, self.n_features, generator=g)
        keep = torch.rand(n, self.n_features, generator=g) >= sparsity
        return x * keep

    def hidden(self, x: torch.Tensor, sparsity: float) -> torch.Tensor:
        """Hidden activations ``h = W x`` ``[n, m]`` of the instance at ``sparsity``."""
        return x @ self.W[self.index(sparsity)].T

    def module(self, sparsity: float) -> torch.nn.Module:
        """One instance as a torch module (sites ``hidden`` and ``relu``)."""
        i = self.index(sparsity)
        return build(self.W[i], self.b[i], sparsity=sparsity, importance=self.importance)


def build(W: torch.Tensor, b: torch.Tensor, *, sparsity: float = 0.0, importance: torch.Tensor | None = None) -> Any:
    """A ReLU-output toy model with weights ``W`` ``[m, n]`` and bias ``b`` ``[n]``."""
    from torch import nn

    class ToyModel(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.W = nn.Parameter(W.detach().clone().float())
            self.b = nn.Parameter(b.detach().clone().float())
            self.hidden = nn.Identity()
            self.relu = nn.ReLU()
            self.sparsity = sparsity
            self.importance = importance

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.hidden(x.float() @ self.W.T)
            return self.relu(h @ self.W + self.b)

    return ToyModel()


def load_all() -> ToyModels:
    """Every trained instance of ``superposition-toy``."""
    if not WEIGHTS.is_file():
        msg = f"the weights of {NAME!r} are missing from {HERE}; rebuild them with: python scripts/train_superposition_toy.py"
        raise ModelLoadError(msg)
    from safetensors import safe_open

    with safe_open(str(WEIGHTS), framework="pt") as f:
        meta = f.metadata() or {}
        t = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no __iter__
    sparsities = json.loads(meta.get("sparsities", "[]")) or t["sparsities"].tolist()
    return ToyModels(t["W"], t["b"], [float(s) for s in sparsities], t["importance"])


def load(device: str | None = None, *, sparsity: float = DEFAULT_SPARSITY) -> Model:
    """One sparsity of ``superposition-toy`` as a :class:`Model` (nnsight backend; ``model.raw`` is the module)."""
    from interp_widget.models.loading import load as load_object

    net = load_all().module(sparsity)
    return load_object(net if device is None else net.to(device), name=f"{NAME}@{sparsity:g}")

