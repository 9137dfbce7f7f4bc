"""Metrics for causal experiments: functions of the logits giving one value per batch row.

A :class:`Metric` maps logits ``[rows, pos, d_vocab]`` to a vector ``[rows]``. Batched sweeps stack
many patched runs of the same ``B`` prompts along the batch axis (run ``j`` owns rows
``j*B .. j*B+B-1``); :meth:`Metric.per_run` turns the per-row values into one value per run (the
mean over its prompts), and :meth:`Metric.scalar` sums those for a backward pass, so each run's
gradient is its own.

Provided: :func:`logit_diff`, :func:`probability` (and log-probability), :func:`kl_divergence`,
:func:`loss`, and :func:`as_metric` for any user callable ``logits -> scalar or [rows]``.
Answers given as strings (``" Mary"``) are resolved with the model's tokenizer by :meth:`Metric.bind`;
per-prompt answers (a list with one entry per prompt) are supported everywhere.

>>> m = logit_diff(" Mary", " John")          # doctest: +SKIP
>>> m.bind(model)(logits)                      # doctest: +SKIP
tensor([3.12, 2.71])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from interp_widget.errors import InputMismatchError

if TYPE_CHECKING:
    import torch

    from interp_widget.models.model import Model

Token = int | str
Answer = Token | Sequence[Token]


class Metric:
    """A function of logits giving one value per batch row. Subclasses implement :meth:`__call__`."""

    name: str = "metric"
    #: ``"clean"`` when the metric needs the clean run's logits (:func:`kl_divergence` without a reference)
    needs_reference: bool = False

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def bind(self, model: Model | None = None, *, tokens: torch.Tensor | None = None,
             reference_logits: torch.Tensor | None = None) -> Metric:
        """Resolve token strings with ``model``'s tokenizer, the run's ``tokens`` (for :func:`loss`)
        and a reference run's logits (for :func:`kl_divergence`). Returns a new metric (or self)."""
        return self

    def narrow(self, n_pos: int) -> tuple[list[int], Metric] | None:
        """The logit positions this metric reads, and the same metric on logits of only those positions.

        Lets a sweep skip unembedding the other positions. ``None``: it reads every position."""
        return None

    def per_run(self, logits: torch.Tensor, n_prompts: int) -> torch.Tensor:
        """One value per run: logits ``[n_runs * n_prompts, ...]`` -> ``[n_runs]`` (mean over prompts)."""
        rows = logits.shape[0]
        if rows % n_prompts:
            msg = f"{rows} rows cannot be split into runs of {n_prompts} prompts"
            raise InputMismatchError(msg)
        v = self(logits)
        if v.shape != (rows,):
            msg = f"metric {self.name} gave shape {tuple(v.shape)} for {rows} rows; expected ({rows},)"
            raise InputMismatchError(msg)
        return v.reshape(rows // n_prompts, n_prompts).mean(1)

    def scalar(self, logits: torch.Tensor, n_prompts: int) -> torch.Tensor:
        """Sum over runs of :meth:`per_run`: what gradients are taken of."""
        return self.per_run(logits, n_prompts).sum()

    def __repr__(self) -> str:
        return f"<Metric {self.name}>"


def _tile(values: torch.Tensor, rows: int) -> torch.Tensor:
    """Per-prompt values ``[B]`` (or ``[B, ...]``) tiled to ``rows`` rows (row r gets prompt r % B)."""
    import torch

    b = values.shape[0]
    if b == 1 or b == rows:
        return values.expand(rows, *values.shape[1:]) if b == 1 else values
    if rows % b:
        msg = f"per-prompt metric values for {b} prompts do not fit a batch of {rows} rows"
        raise InputMismatchError(msg)
    return values[torch.arange(rows, device=values.device) % b]


def token_id(model: Model | None, tok: Token) -> int:
    """A single token id for ``tok`` (an id, or a string that must be exactly one token)."""
    if isinstance(tok, bool):
        msg = f"a token is an int id or a string, not {tok!r}"
        raise TypeError(msg)
    if isinstance(tok, int):
        if model is not None and not 0 <= tok < model.spec.d_vocab:
            msg = f"token id {tok} is out of range: the vocabulary has {model.spec.d_vocab} tokens"
            raise InputMismatchError(msg)
        return tok
    if not isinstance(tok, str):
        msg = f"a token is an int id or a string, not {type(tok).__name__}"
        raise TypeError(msg)
    if model is None:
        msg = f"answer {tok!r} is a string: bind the metric to a model (metric.bind(model)) to tokenize it"
        raise InputMismatchError(msg)
    ids = model.to_tokens(tok, prepend_bos=False)[0].tolist()
    if len(ids) != 1:
        msg = (f"answer {tok!r} is {len(ids)} tokens ({ids}) for {model.name}'s tokenizer; "
               "a metric answer must be exactly one token")
        raise InputMismatchError(msg)
    return int(ids[0])


def _ids(model: Model | None, ans: Answer) -> list[int]:
    if isinstance(ans, (str, int)):
        return [token_id(model, ans)]
    out = [token_id(model, a) for a in ans]
    if not out:
        msg = "an empty list of answers"
        raise InputMismatchError(msg)
    return out


def _fmt(ans: Answer) -> str:
    if isinstance(ans, (list, tuple)) and len(ans) == 1:
        ans = ans[0]
    return repr(ans)


def _resolved(ans: Answer) -> bool:
    return isinstance(ans, int) or (not isinstance(ans, str) and all(isinstance(a, int) for a in ans))


def _one_position(m: Any, position: int, n_pos: int) -> tuple[list[int], Metric] | None:
    if not -n_pos <= position < n_pos:
        return None  # let the full metric raise its error
    return [position % n_pos], replace(m, position=0)


def _at(logits: torch.Tensor, position: int) -> torch.Tensor:
    n = logits.shape[1]
    if not -n <= position < n:
        msg = f"metric position {position} is out of range for {n} tokens"
        raise InputMismatchError(msg)
    return logits[:, position]


@dataclass(repr=False)
class LogitDiff(Metric):
    """``logit[answer] - logit[wrong]`` at ``position`` (one answer pair, or one pair per prompt)."""

    answer: Answer
    wrong: Answer
    position: int = -1
    label: str = ""  # the name, fixed before string answers become ids

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.label or f"logit_diff({_fmt(self.answer)} - {_fmt(self.wrong)})"

    def bind(self, model: Model | None = None, *, tokens: torch.Tensor | None = None,
             reference_logits: torch.Tensor | None = None) -> Metric:
        return replace(self, answer=_ids(model, self.answer), wrong=_ids(model, self.wrong))

    def narrow(self, n_pos: int) -> tuple[list[int], Metric] | None:
        return _one_position(self, self.position, n_pos)

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        import torch

        if not (_resolved(self.answer) and _resolved(self.wrong)):
            return self.bind(None)(logits)
        last = _at(logits, self.position)
        rows = last.shape[0]
        a = _tile(torch.tensor(_ids(None, self.answer), device=last.device), rows)
        w = _tile(torch.tensor(_ids(None, self.wrong), device=last.device), rows)
        r = torch.arange(rows, device=last.device)
        return last[r, a] - last[r, w]


@dataclass(repr=False)
class Probability(Metric):
    """Softmax probability (or log-probability) of ``token`` at ``position``."""

    token: Answer
    position: int = -1
    log: bool = False
    label: str = ""

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.label or f"{'logprob' if self.log else 'prob'}({_fmt(self.token)})"

    def bind(self, model: Model | None = None, *, tokens: torch.Tensor | None = None,
             reference_logits: torch.Tensor | None = None) -> Metric:
        return replace(self, token=_ids(model, self.token))

    def narrow(self, n_pos: int) -> tuple[list[int], Metric] | None:
        return _one_position(self, self.position, n_pos)

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        import torch

        if not _resolved(self.token):
            return self.bind(None)(logits)
        lp = _at(logits, self.position).float().log_softmax(-1)
        rows = lp.shape[0]
        t = _tile(torch.tensor(_ids(None, self.token), device=lp.device), rows)
        v = lp[torch.arange(rows, device=lp.device), t]
        return v if self.log else v.exp()


@dataclass(repr=False)
class KLDivergence(Metric):
    """``KL(reference || run)`` of the next-token distributions at ``position`` (all positions: mean).

    Without ``reference`` it is bound to the clean run's logits by the sweeps (0 = as clean)."""

    reference: torch.Tensor | None = None
    position: int | None = -1

    name = "kl_divergence"

    @property
    def needs_reference(self) -> bool:  # type: ignore[override]
        return self.reference is None

    def bind(self, model: Model | None = None, *, tokens: torch.Tensor | None = None,
             reference_logits: torch.Tensor | None = None) -> Metric:
        if self.reference is None and reference_logits is not None:
            return replace(self, reference=reference_logits.detach())
        return self

    def narrow(self, n_pos: int) -> tuple[list[int], Metric] | None:
        if self.position is None or self.reference is None or not -n_pos <= self.position < n_pos:
            return None
        p = self.position % n_pos
        return [p], replace(self, reference=self.reference[:, p:p + 1], position=0)

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        if self.reference is None:
            msg = "kl_divergence needs reference logits: pass reference= or use it in a sweep (clean run)"
            raise InputMismatchError(msg)
        ref = self.reference
        if ref.shape[1:] != logits.shape[1:]:
            msg = f"kl_divergence: reference logits have shape {tuple(ref.shape)}, run logits {tuple(logits.shape)}"
            raise InputMismatchError(msg)
        if self.position is not None:
            ref, logits = _at(ref, self.position)[:, None], _at(logits, self.position)[:, None]
        p = _tile(ref.float().log_softmax(-1), logits.shape[0])
        q = logits.float().log_softmax(-1)
        return (p.exp() * (p - q)).sum(-1).mean(-1)


@dataclass(repr=False)
class Loss(Metric):
    """Next-token cross-entropy, averaged over the predicting ``positions`` (default: all but the last).

    ``positions`` index the predicting positions ``0..n-2`` (position ``i`` predicts token ``i+1``; ``-1`` is
    position ``n-2``): an int, a slice or a list.
    ``targets`` default to the run's own tokens (bound by the sweeps)."""

    positions: int | slice | Sequence[int] | None = None
    targets: torch.Tensor | None = None

    name = "loss"

    def bind(self, model: Model | None = None, *, tokens: torch.Tensor | None = None,
             reference_logits: torch.Tensor | None = None) -> Metric:
        if self.targets is None and tokens is not None:
            return replace(self, targets=tokens)
        return self

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        import torch

        if self.targets is None:
            msg = "loss needs the tokens it predicts: pass targets= or use it in a sweep"
            raise InputMismatchError(msg)
        tgt = self.targets
        if tgt.shape[-1] != logits.shape[1]:
            msg = f"loss: targets have {tgt.shape[-1]} tokens but the logits {logits.shape[1]}"
            raise InputMismatchError(msg)
        n = logits.shape[1]
        idx = torch.arange(n - 1)
        if self.positions is not None:
            try:
                idx = idx[self.positions]  # type: ignore[index]
            except IndexError:
                idx = idx[:0]
        idx = idx.reshape(-1)
        if idx.numel() == 0:
            msg = (f"loss positions {self.positions!r} select nothing: the positions that predict a next token "
                   f"are 0..{n - 2} for {n} tokens")
            raise InputMismatchError(msg)
        lp = logits[:, idx].float().log_softmax(-1)
        nxt = _tile(tgt.reshape(-1, n), logits.shape[0])[:, idx + 1].to(lp.device)
        return -lp.gather(-1, nxt[..., None])[..., 0].mean(-1)


@dataclass(repr=False)
class CallableMetric(Metric):
    """A user function of the logits: per-row (``[rows]``) or one scalar per batch.

    A function that returns a scalar for a multi-row batch is evaluated once per run (on that run's
    ``n_prompts`` rows), as TransformerLens's patching utilities do; a per-row function is evaluated
    once per chunk."""

    fn: Callable[[torch.Tensor], Any]
    label: str = ""

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.label or getattr(self.fn, "__name__", "metric")

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        import torch

        v = torch.as_tensor(self.fn(logits))
        rows = logits.shape[0]
        if v.shape == (rows,):
            return v
        if v.numel() == 1 and rows == 1:
            return v.reshape(1)
        if v.numel() == 1:  # a batch-reducing function: evaluate row by row
            return torch.stack([torch.as_tensor(self.fn(logits[i:i + 1])).reshape(()) for i in range(rows)])
        msg = f"metric {self.name} returned shape {tuple(v.shape)} for {rows} rows: return a scalar or ({rows},)"
        raise InputMismatchError(msg)

    def per_run(self, logits: torch.Tensor, n_prompts: int) -> torch.Tensor:
        import torch

        rows = logits.shape[0]
        v = torch.as_tensor(self.fn(logits))
        if v.shape == (rows,):
            return v.reshape(rows // n_prompts, n_prompts).mean(1)
        out = []
        for j in range(rows // n_prompts):
            r = torch.as_tensor(self.fn(logits[j * n_prompts:(j + 1) * n_prompts]))
            if r.numel() == n_prompts and n_prompts > 1:
                r = r.reshape(-1).mean()
            elif r.numel() != 1:
                msg = f"metric {self.name} returned shape {tuple(r.shape)} for one run of {n_prompts} prompts"
                raise InputMismatchError(msg)
            out.append(r.reshape(()))
        return torch.stack(out)


def logit_diff(answer: Answer, wrong: Answer, *, position: int = -1) -> LogitDiff:
    """Logit of ``answer`` minus logit of ``wrong`` at ``position`` (per prompt: pass lists)."""
    m = LogitDiff(answer, wrong, position)
    return replace(m, label=m.name)


def probability(token: Answer, *, position: int = -1, log: bool = False) -> Probability:
    """Probability of ``token`` at ``position`` (``log=True``: log-probability)."""
    m = Probability(token, position, log)
    return replace(m, label=m.name)


def kl_divergence(reference: torch.Tensor | None = None, *, position: int | None = -1) -> KLDivergence:
    """KL divergence from ``reference`` (default: the clean run) to the run, at ``position``."""
    return KLDivergence(reference, position)


def loss(positions: int | slice | Sequence[int] | None = None, *, targets: torch.Tensor | None = None) -> Loss:
    """Next-token loss over ``positions`` (of the predicting positions ``0..n-2``; default all of them)."""
    return Loss(positions, targets)


def as_metric(metric: Metric | Callable[[torch.Tensor], Any] | str) -> Metric:
    """A :class:`Metric` from a Metric, a callable ``logits -> scalar or [rows]``, or ``"loss"`` / ``"kl"``."""
    if isinstance(metric, Metric):
        return metric
    if isinstance(metric, str):
        named: dict[str, Callable[[], Metric]] = {"loss": Loss, "kl": KLDivergence, "kl_divergence": KLDivergence}
        if metric not in named:
            msg = f"unknown metric name {metric!r}; known: {', '.join(named)} (or pass a callable)"
            raise ValueError(msg)
        return named[metric]()
    if callable(metric):
        return CallableMetric(metric)
    msg = f"a metric is a Metric, a callable logits -> value, or a name; not {type(metric).__name__}"
    raise TypeError(msg)


def bind_metric(metric: Metric | Callable[[torch.Tensor], Any] | str, model: Model, *,
                tokens: torch.Tensor | None = None, reference_logits: torch.Tensor | None = None) -> Metric:
    """:func:`as_metric` then :meth:`Metric.bind`."""
    return as_metric(metric).bind(model, tokens=tokens, reference_logits=reference_logits)
