"""Linear probes: how well a labelled property can be read off each layer, against a control baseline.

>>> res = train_probes(model, tokens, labels)            # one probe per layer's residual stream   # doctest: +SKIP
>>> res.accuracy, res.control_accuracy, res.selectivity                                             # doctest: +SKIP
>>> res                                                   # displays as a line plot by layer         # doctest: +SKIP

``labels`` are per sequence (``[n]``, read at ``position``, default the last token) or per token
(``[n, pos]``; ``-1`` marks tokens to skip). Sequences are split into train and test sets (seeded), so
no sequence is in both. Features are standardised with the training statistics.

Probes (``method``):

* ``"logistic"``: multinomial logistic regression with an L2 penalty, fitted full-batch by L-BFGS;
* ``"least_squares"``: closed-form ridge regression onto one-hot targets, predicting the argmax.

Control baselines (``control``), trained and tested exactly like the real probe:

* ``"shuffled"``: training labels permuted; tested on the real labels (chance level for a probe that
  cannot find the property);
* ``"control_task"`` (Hewitt & Liang 2019): every token id gets a random label (drawn from the label
  distribution, seeded); train and test on those. A probe that scores well here memorises token
  identity, so ``selectivity = accuracy - control_accuracy`` is the measure to trust.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from interp_widget.analysis.activation_store import Progress, as_sequences, iter_activations, progress_reporter
from interp_widget.errors import InputMismatchError
from interp_widget.tracing.sites import Site

if TYPE_CHECKING:
    import torch

    from interp_widget.models.model import Model

Method = Literal["logistic", "least_squares"]
Control = Literal["shuffled", "control_task"]


@dataclass
class ProbeResult:
    """Test accuracy of one probe per site, with the control baseline and the majority-class rate."""

    sites: list[str]
    accuracy: list[float]
    control_accuracy: list[float]
    train_accuracy: list[float]
    chance: float
    control: str
    method: str
    n_train: int
    n_test: int
    classes: list[int]
    weights: list[Any] = field(default_factory=list, repr=False)  # per site [d + 1, n_classes] (standardised; bias last)
    test_sequences: list[int] = field(default_factory=list, repr=False)
    title: str = "linear probe accuracy by layer"

    @property
    def selectivity(self) -> list[float]:
        """``accuracy - control_accuracy`` per site."""
        return [a - c for a, c in zip(self.accuracy, self.control_accuracy, strict=True)]

    @property
    def best(self) -> str:
        """The site where the probe does best."""
        return self.sites[max(range(len(self.sites)), key=lambda i: self.accuracy[i])]

    def __repr__(self) -> str:
        rows = ", ".join(f"{s}: {a:.3f} (control {c:.3f})" for s, a, c in
                         zip(self.sites, self.accuracy, self.control_accuracy, strict=True))
        return (f"<ProbeResult {self.method}, control={self.control}, chance {self.chance:.3f}, "
                f"{self.n_train} train / {self.n_test} test: {rows}>")


def default_sites(model: Model) -> list[str]:
    """The residual stream before the first block and after every block."""
    n = model.spec.n_layers
    if n < 1:
        msg = f"{model.name} has no layers: pass sites= explicitly"
        raise InputMismatchError(msg)
    return ["blocks.0.hook_resid_pre", *(f"blocks.{i}.hook_resid_post" for i in range(n))]


def _labels(labels: Any, seqs: list[torch.Tensor], position: int | None) -> tuple[torch.Tensor, int | None]:
    """Labels as a flat LongTensor aligned with the captured rows (-1: skipped); the position read, if any."""
    import torch

    lab = torch.as_tensor(labels).long()
    if lab.ndim == 1:
        if lab.shape[0] != len(seqs):
            msg = f"{lab.shape[0]} labels for {len(seqs)} sequences"
            raise InputMismatchError(msg)
        return lab, -1 if position is None else position
    if lab.ndim == 2:
        if lab.shape[0] != len(seqs) or any(s.shape[0] != lab.shape[1] for s in seqs):
            msg = f"per-token labels {tuple(lab.shape)} do not match the token shape [{len(seqs)}, pos]"
            raise InputMismatchError(msg)
        if position is not None:
            return lab[:, position], position
        return lab.reshape(-1), None
    msg = f"labels must be [n_sequences] or [n_sequences, pos], got shape {tuple(lab.shape)}"
    raise InputMismatchError(msg)


def train_probes(model: Any, tokens: Any, labels: Any, *, sites: Sequence[str | Site] | None = None,
                 position: int | None = None, method: Method = "logistic", control: Control = "shuffled",
                 test_fraction: float = 0.25, l2: float = 1e-3, max_iter: int = 100, seed: int = 0,
                 batch_size: int = 16, progress: bool | Progress | None = True) -> ProbeResult:
    """Train one linear probe per site for ``labels``; see the module docstring."""
    import torch

    from interp_widget.models.loading import load

    model = load(model)
    if method not in ("logistic", "least_squares"):
        msg = f"unknown probe method {method!r}; use 'logistic' or 'least_squares'"
        raise ValueError(msg)
    if control not in ("shuffled", "control_task"):
        msg = f"unknown control {control!r}; use 'shuffled' or 'control_task'"
        raise ValueError(msg)
    if not 0 < test_fraction < 1:
        msg = f"test_fraction must be between 0 and 1, got {test_fraction}"
        raise ValueError(msg)
    seqs = as_sequences(tokens, model)
    y, pos = _labels(labels, seqs, position)
    checked = [model.check_site(Site.parse(s).with_(position=pos)) for s in (sites or default_sites(model))]
    feats: dict[str, list[torch.Tensor]] = {s.hook_name: [] for s in checked}
    toks: list[torch.Tensor] = []
    seq_of: list[torch.Tensor] = []
    with progress_reporter(progress, len(seqs) + len(checked), "probing") as report:
        for first, n, out in iter_activations(model, checked, seqs, batch_size=batch_size):
            for s in checked:
                feats[s.hook_name].append(out[s.hook_name].float())
            toks.append(out["tokens"].long())
            seq_of.append(out["sequence"].long())
            report(first + n)
        tok, seq = torch.cat(toks), torch.cat(seq_of)
        if y.shape[0] != tok.shape[0]:
            msg = f"{y.shape[0]} labels for {tok.shape[0]} captured tokens"
            raise InputMismatchError(msg)
        g = torch.Generator().manual_seed(seed)
        perm = torch.randperm(len(seqs), generator=g)
        n_test = max(1, round(len(seqs) * test_fraction))
        if n_test >= len(seqs):
            msg = f"need at least 2 sequences to split into train and test (got {len(seqs)})"
            raise InputMismatchError(msg)
        is_test = torch.zeros(len(seqs), dtype=torch.bool)
        is_test[perm[:n_test]] = True
        keep = y >= 0
        tr, te = keep & ~is_test[seq], keep & is_test[seq]
        classes = sorted({int(c) for c in y[keep].tolist()})
        if len(classes) < 2:
            msg = "the labels have a single class: nothing to probe"
            raise InputMismatchError(msg)
        idx = torch.full((max(classes) + 1,), -1, dtype=torch.long)
        idx[torch.tensor(classes)] = torch.arange(len(classes))
        yc = torch.where(keep, idx[y.clamp_min(0)], torch.full_like(y, -1))
        y_ctrl_tr, y_ctrl_te = _control_labels(control, yc, tok, tr, te, len(classes), g)
        acc, ctrl, tr_acc, weights = [], [], [], []
        for k, s in enumerate(checked):
            x = torch.cat(feats.pop(s.hook_name))
            w, a_tr, a_te = _fit_eval(x[tr], yc[tr], x[te], yc[te], len(classes), method, l2, max_iter)
            _, _, c_te = _fit_eval(x[tr], y_ctrl_tr, x[te], y_ctrl_te, len(classes), method, l2, max_iter)
            acc.append(a_te)
            tr_acc.append(a_tr)
            ctrl.append(c_te)
            weights.append(w)
            report(len(seqs) + k + 1)
    counts = torch.bincount(yc[te], minlength=len(classes))
    chance = float(counts.max()) / max(1, int(te.sum()))
    return ProbeResult([str(s) for s in checked], acc, ctrl, tr_acc, chance, control, method, int(tr.sum()),
                       int(te.sum()), classes, weights, sorted(perm[:n_test].tolist()))


def _control_labels(control: str, y: torch.Tensor, tok: torch.Tensor, tr: torch.Tensor, te: torch.Tensor,
                    n_classes: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    import torch

    if control == "shuffled":
        y_tr = y[tr][torch.randperm(int(tr.sum()), generator=g)]
        return y_tr, y[te]
    # control task: a random label per token id, drawn from the empirical label distribution
    freq = torch.bincount(y[tr], minlength=n_classes).float()
    vocab = int(tok.max()) + 1
    table = torch.multinomial(freq / freq.sum(), vocab, replacement=True, generator=g)
    return table[tok[tr]], table[tok[te]]


def _fit_eval(x_tr: torch.Tensor, y_tr: torch.Tensor, x_te: torch.Tensor, y_te: torch.Tensor, n_classes: int,
              method: str, l2: float, max_iter: int) -> tuple[torch.Tensor, float, float]:
    """Fit on standardised train features; return the weights and train / test accuracy."""
    import torch

    mean, std = x_tr.mean(0), x_tr.std(0).clamp_min(1e-6)
    a, b = (x_tr - mean) / std, (x_te - mean) / std
    a1 = torch.cat([a, torch.ones(a.shape[0], 1)], 1)
    b1 = torch.cat([b, torch.ones(b.shape[0], 1)], 1)
    if method == "least_squares":
        w = least_squares_probe(a1, y_tr, n_classes, l2)
    else:
        w = torch.zeros(a1.shape[1], n_classes, requires_grad=True)
        opt = torch.optim.LBFGS([w], max_iter=max_iter, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(a1 @ w, y_tr) + l2 * (w[:-1] ** 2).sum()
            loss.backward()
            return loss

        with torch.enable_grad():
            opt.step(closure)
        w = w.detach()

    def acc(x: torch.Tensor, y: torch.Tensor) -> float:
        return float(((x @ w).argmax(1) == y).float().mean()) if y.numel() else float("nan")

    return w, acc(a1, y_tr), acc(b1, y_te)


def least_squares_probe(x: torch.Tensor, y: torch.Tensor, n_classes: int, l2: float = 0.0) -> torch.Tensor:
    """Closed-form ridge regression of one-hot ``y`` on ``x`` (the last column of ``x`` is the bias):
    ``W = (X^T X + l2 I')^-1 X^T Y`` (the bias is not penalised)."""
    import torch

    onehot = torch.nn.functional.one_hot(y, n_classes).double()
    xd = x.double()
    reg = torch.eye(x.shape[1], dtype=torch.float64) * l2
    reg[-1, -1] = 0
    return torch.linalg.solve(xd.T @ xd + reg, xd.T @ onehot).float()


__all__ = ["ProbeResult", "default_sites", "least_squares_probe", "train_probes"]
