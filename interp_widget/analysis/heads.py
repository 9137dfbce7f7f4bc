"""Head scores: previous-token, induction and duplicate-token scores for every attention head.

Definitions (the detection patterns of TransformerLens's ``transformer_lens.head_detector``):
for a prompt ``t[0..n-1]`` and a query position ``q``, the *detection set* ``D(q)`` is

* ``previous_token``: ``{q-1}`` (for ``q >= 1``);
* ``duplicate_token``: ``{k < q : t[k] == t[q]}`` (earlier copies of the current token);
* ``induction``: ``{1 <= k <= q : t[k-1] == t[q], k-1 < q}`` (the token after an earlier copy).

A head's score on one prompt is the attention it puts on the detection sets, summed over the
queries and divided by

* ``normalization="defined"`` (default): the number of queries whose ``D(q)`` is non-empty, so the
  score is the mean attention on ``D(q)`` where it is defined (1.0 = all attention on the targets);
  a prompt with no such query has score NaN for that kind;
* ``normalization="all"``: the total attention mass (the number of queries), which is exactly
  TransformerLens's ``detect_head(..., error_measure="mul")``.

The two differ by the factor ``|defined queries| / n``. :func:`head_scores` averages the per-prompt
scores over seeded prompts ``[BOS] + R + R`` with ``R`` random tokens (NaN prompts are skipped).
This module imports no widget code; :class:`HeadScores` is a plain result object.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from interp_widget.errors import ContextLengthError

if TYPE_CHECKING:
    import torch

    from interp_widget.models.model import Model

KINDS: tuple[str, ...] = ("previous_token", "induction", "duplicate_token")
Normalization = Literal["defined", "all"]


def detection_masks(tokens: torch.Tensor, kinds: Sequence[str] = KINDS) -> dict[str, torch.Tensor]:
    """Boolean masks ``[..., q, k]`` of the detection sets of ``tokens`` ``[..., pos]`` (see module doc)."""
    import torch

    _check_kinds(kinds)
    n = tokens.shape[-1]
    causal_strict = torch.ones(n, n, dtype=torch.bool).tril(-1)  # k < q
    same = tokens.unsqueeze(-1) == tokens.unsqueeze(-2)  # [..., q, k]: t[q] == t[k]
    dup = same & causal_strict
    out: dict[str, torch.Tensor] = {}
    for kind in kinds:
        if kind == "previous_token":
            m = torch.zeros(n, n, dtype=torch.bool)
            idx = torch.arange(1, n)
            m[idx, idx - 1] = True
            out[kind] = m.expand(*tokens.shape[:-1], n, n)
        elif kind == "duplicate_token":
            out[kind] = dup
        else:  # induction: D(q) = {k : dup[q, k-1]}, k >= 1
            ind = torch.zeros_like(dup)
            ind[..., :, 1:] = dup[..., :, :-1]
            out[kind] = ind
    return out


def scores_from_patterns(
    patterns: torch.Tensor,
    tokens: torch.Tensor,
    kinds: Sequence[str] = KINDS,
    *,
    normalization: Normalization = "defined",
) -> dict[str, torch.Tensor]:
    """Score every head on one prompt (or a batch) from its attention patterns.

    ``patterns``: ``[layers, heads, q, k]`` with ``tokens`` ``[pos]``, or ``[batch, layers, heads, q, k]``
    with ``tokens`` ``[batch, pos]``. Returns ``{kind: [layers, heads]}`` (``[batch, layers, heads]``
    for a batch), float32. See the module docstring for the definitions.
    """
    import torch

    if normalization not in ("defined", "all"):
        msg = f"normalization must be 'defined' or 'all', not {normalization!r}"
        raise ValueError(msg)
    batched = patterns.dim() == 5
    if patterns.dim() not in (4, 5) or tokens.dim() != (2 if batched else 1):
        msg = (f"expected patterns [layers, heads, q, k] with tokens [pos] (or a batch of both); "
               f"got patterns {tuple(patterns.shape)} and tokens {tuple(tokens.shape)}")
        raise ValueError(msg)
    n = tokens.shape[-1]
    if patterns.shape[-1] != n or patterns.shape[-2] != n or (batched and patterns.shape[0] != tokens.shape[0]):
        msg = f"patterns {tuple(patterns.shape)} do not match tokens {tuple(tokens.shape)}"
        raise ValueError(msg)
    p = patterns.detach().float()
    toks = tokens.detach().cpu().to(p.device)
    if not batched:
        p, toks = p.unsqueeze(0), toks.unsqueeze(0)
    out: dict[str, torch.Tensor] = {}
    for kind, mask in detection_masks(toks, kinds).items():
        m = mask.to(p.dtype)  # [b, q, k]
        hit = torch.einsum("blhqk,bqk->blh", p, m)
        if normalization == "all":
            denom = p.sum(dim=(-2, -1))  # TL: divided by the pattern's total mass
        else:
            denom = mask.any(dim=-1).sum(dim=-1).to(p.dtype)[:, None, None].expand_as(hit)
        score = torch.where(denom > 0, hit / denom.clamp_min(1e-30), torch.full_like(hit, float("nan")))
        out[kind] = score if batched else score[0]
    return out


@dataclass
class HeadScores:
    """Per-head scores: ``scores[kind]`` is a ``[n_layers, n_heads]`` float tensor."""

    scores: dict[str, torch.Tensor]
    n_layers: int
    n_heads: int
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def kinds(self) -> list[str]:
        return list(self.scores)

    @property
    def labels(self) -> list[str]:
        """Head labels in row-major (layer, head) order: ``["L0H0", "L0H1", ...]``."""
        return [f"L{layer}H{head}" for layer in range(self.n_layers) for head in range(self.n_heads)]

    def __getitem__(self, kind: str) -> torch.Tensor:
        self._check(kind)
        return self.scores[kind]

    def top(self, kind: str, k: int = 3) -> list[tuple[str, float]]:
        """The ``k`` best heads for ``kind`` as ``[(label, score), ...]``, best first (NaN last)."""
        self._check(kind)
        flat = self.scores[kind].flatten().tolist()
        order = sorted(range(len(flat)), key=lambda i: (flat[i] != flat[i], -flat[i] if flat[i] == flat[i] else 0.0))
        labels = self.labels
        return [(labels[i], float(flat[i])) for i in order[:k]]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: kinds, labels, ``scores[kind]`` as nested lists ``[layer][head]`` (NaN -> None), meta."""
        def clean(v: float) -> float | None:
            return None if v != v else round(float(v), 6)
        return {
            "kinds": self.kinds,
            "labels": self.labels,
            "n_layers": self.n_layers,
            "n_heads": self.n_heads,
            "scores": {k: [[clean(v) for v in row] for row in t.tolist()] for k, t in self.scores.items()},
            "meta": dict(self.meta),
        }

    def _check(self, kind: str) -> None:
        if kind not in self.scores:
            msg = f"no {kind!r} scores; these scores have kinds {self.kinds}"
            raise KeyError(msg)

    def __repr__(self) -> str:
        max_heads = 16
        lines = [f"HeadScores({self.meta.get('model', '')!r}: {self.n_layers} layers x {self.n_heads} heads, "
                 f"kinds={self.kinds})"]
        shown = min(self.n_heads, max_heads)
        for kind, t in self.scores.items():
            lines.append(f"{kind}:")
            lines.append("      " + "".join(f"{'H' + str(h):>6}" for h in range(shown))
                         + (" ..." if self.n_heads > shown else ""))
            rows = t.tolist()
            layer_ids = list(range(self.n_layers))
            if self.n_layers > max_heads:
                layer_ids = [*layer_ids[:8], -1, *layer_ids[-7:]]
            for layer in layer_ids:
                if layer < 0:
                    lines.append("   ...")
                    continue
                cells = "".join(f"{v:6.2f}" if v == v else "   nan" for v in rows[layer][:shown])
                lines.append(f"{'L' + str(layer):>5} {cells}")
            best = ", ".join(f"{lab} {s:.2f}" for lab, s in self.top(kind, 3))
            lines.append(f"  top: {best}")
        return "\n".join(lines)


def repeated_random_tokens(
    n_prompts: int, seq_len: int, vocab: Sequence[int], *, bos: int | None, seed: int = 0,
) -> torch.Tensor:
    """``[n_prompts, (1 if bos) + 2 * seq_len]``: ``[BOS] + R + R``, ``R`` drawn uniformly from ``vocab``.

    Seeded with its own ``torch.Generator`` (the global RNG is untouched).
    """
    import torch

    g = torch.Generator().manual_seed(seed)
    ids = torch.as_tensor(list(vocab), dtype=torch.long)
    rand = ids[torch.randint(0, len(ids), (n_prompts, seq_len), generator=g)]
    parts = [rand, rand]
    if bos is not None:
        parts.insert(0, torch.full((n_prompts, 1), bos, dtype=torch.long))
    return torch.cat(parts, dim=1)


def _vocab_and_bos(model: Model) -> tuple[list[int], int | None]:
    """Ordinary token ids (special tokens excluded) and the id that starts a prompt, if any."""
    tok = model.tokenizer
    special: set[int] = set()
    bos: int | None = None
    if tok is not None:
        special = {int(i) for i in getattr(tok, "all_special_ids", []) or []}
        for attr in ("bos_token_id", "cls_token_id"):
            val = getattr(tok, attr, None)
            if val is not None:
                bos = int(val)
                break
    vocab = [i for i in range(model.spec.d_vocab) if i not in special]
    return vocab, bos


def head_scores(
    model: Model,
    kind: str | Sequence[str] | None = None,
    *,
    seq_len: int = 40,
    n_prompts: int = 32,
    seed: int = 0,
    batch_size: int = 32,
    normalization: Normalization = "defined",
) -> HeadScores:
    """Score every head of ``model`` on seeded prompts ``[BOS] + R + R`` (``R``: ``seq_len`` random tokens).

    Patterns are captured with ``model.run(..., capture=[blocks.L.attn.hook_pattern])``, so any
    backend works. Random tokens exclude the tokenizer's special tokens; BOS is the tokenizer's
    ``bos_token_id`` (or ``cls_token_id``), none if it has neither. ``kind``: one of
    ``previous_token``, ``induction``, ``duplicate_token``, a list of them, or None for all.
    Raises :class:`ContextLengthError` if the prompt does not fit the model's context.
    """
    import torch

    kinds = list(KINDS) if kind is None else [kind] if isinstance(kind, str) else list(kind)
    _check_kinds(kinds)
    if seq_len < 1 or n_prompts < 1:
        msg = f"seq_len and n_prompts must be positive; got seq_len={seq_len}, n_prompts={n_prompts}"
        raise ValueError(msg)
    spec = model.spec
    vocab, bos = _vocab_and_bos(model)
    length = 2 * seq_len + (bos is not None)
    if length > spec.n_ctx:
        msg = (f"head_scores prompts have {length} tokens ([BOS] + 2 x seq_len={seq_len}) but {model.name} "
               f"has a context of {spec.n_ctx}; use seq_len <= {(spec.n_ctx - (bos is not None)) // 2}")
        raise ContextLengthError(msg)
    tokens = repeated_random_tokens(n_prompts, seq_len, vocab, bos=bos, seed=seed)
    hooks = [f"blocks.{layer}.attn.hook_pattern" for layer in range(spec.n_layers)]
    per_prompt: dict[str, list[torch.Tensor]] = {k: [] for k in kinds}
    for start in range(0, n_prompts, batch_size):
        batch = tokens[start:start + batch_size]
        res = model.run(batch, capture=hooks)
        patterns = torch.stack([res.cache[h] for h in hooks], dim=1)  # [b, layers, heads, q, k]
        for k, v in scores_from_patterns(patterns, batch, kinds, normalization=normalization).items():
            per_prompt[k].append(v)
    scores = {k: torch.cat(v).nanmean(dim=0) for k, v in per_prompt.items()}
    meta = {"model": model.name, "seq_len": seq_len, "n_prompts": n_prompts, "seed": seed,
            "bos": bos, "normalization": normalization}
    return HeadScores(scores=scores, n_layers=spec.n_layers, n_heads=spec.n_heads, meta=meta)


def _check_kinds(kinds: Sequence[str]) -> None:
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        msg = f"unknown head score kind(s) {bad}; known: {list(KINDS)}"
        raise ValueError(msg)
