"""Kernel-side attention data: every head's pattern for each prompt, kept as float16, and
the slices the views ask for (thumbnails, windows).

No torch at import; :func:`collect` imports it when it runs a model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from interp_widget.errors import ContextLengthError, SiteIndexError
from interp_widget.schema import (
    SCORE_KINDS,
    HeadScore,
    PatternWindow,
    PromptData,
    TensorPayload,
    encode,
)

if TYPE_CHECKING:
    from interp_widget.models.model import Model

SCORE_LABELS: dict[str, str] = {
    "previous_token": "previous token",
    "induction": "induction",
    "duplicate_token": "duplicate token",
}


def pool_edges(n: int, size: int) -> np.ndarray:
    """Start index of each max-pooling block: block i is ``[i*n//m, (i+1)*n//m)`` with ``m = min(n, size)``.

    The same formula as ``poolEdges`` in ``src/attention/math.ts``.
    """
    m = min(n, size)
    return (np.arange(m, dtype=np.int64) * n) // m


def maxpool2d(arr: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Max-pool the last two axes of ``arr`` to at most ``rows x cols`` (blocks from :func:`pool_edges`)."""
    if arr.shape[-2] > rows:
        arr = np.maximum.reduceat(arr, pool_edges(arr.shape[-2], rows), axis=-2)
    if arr.shape[-1] > cols:
        arr = np.maximum.reduceat(arr, pool_edges(arr.shape[-1], cols), axis=-1)
    return arr


@dataclass
class AttentionData:
    """Patterns of every head for one or more prompts, with tokens and head scores.

    ``patterns[p]`` is float16 ``[n_layers, n_heads, n, n]`` (query rows, key columns);
    ``scores[p][kind]`` is float32 ``[n_layers, n_heads]``.
    """

    model_name: str
    texts: list[str]
    tokens: list[list[str]]
    patterns: list[np.ndarray]
    scores: list[dict[str, np.ndarray]] = field(default_factory=list)
    _thumbs: dict[tuple[int, int], TensorPayload] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.patterns:
            msg = "no prompts: give at least one text or token sequence"
            raise ValueError(msg)
        if not (len(self.texts) == len(self.tokens) == len(self.patterns)):
            msg = f"{len(self.texts)} texts, {len(self.tokens)} token lists and {len(self.patterns)} pattern arrays"
            raise ValueError(msg)
        shape = self.patterns[0].shape[:2]
        for i, (toks, pat) in enumerate(zip(self.tokens, self.patterns, strict=True)):
            n = len(toks)
            if pat.ndim != 4 or pat.shape[:2] != shape or pat.shape[2:] != (n, n):
                msg = (f"prompt {i}: patterns must be [n_layers, n_heads, n, n] = [{shape[0]}, {shape[1]}, {n}, {n}] "
                       f"for its {n} tokens; got {list(pat.shape)}")
                raise ValueError(msg)
        if not self.scores:
            self.scores = [{} for _ in self.patterns]

    @property
    def n_layers(self) -> int:
        return int(self.patterns[0].shape[0])

    @property
    def n_heads(self) -> int:
        return int(self.patterns[0].shape[1])

    @property
    def nbytes(self) -> int:
        return sum(p.nbytes for p in self.patterns)

    # --- checks ------------------------------------------------------------
    def check_index(self, *, prompt: int | None = None, layer: int | None = None, head: int | None = None) -> None:
        """Raise :class:`SiteIndexError` naming the valid range."""
        who = self.model_name or "the model"
        checks = (("prompt", prompt, len(self.patterns), f"the widget has {len(self.patterns)} prompts"),
                  ("layer", layer, self.n_layers, f"{who} has {self.n_layers} layers"),
                  ("head", head, self.n_heads, f"{who} has {self.n_heads} heads per layer"))
        for name, value, count, what in checks:
            if value is not None and not 0 <= value < count:
                msg = f"{name} {value} is out of range: {what} (0..{count - 1})"
                raise SiteIndexError(msg)

    # --- what the views are sent ----------------------------------------------
    def thumbnails(self, prompt: int, size: int) -> TensorPayload:
        """uint8 ``[n_layers, n_heads, t, t]`` (``t = min(n, size)``), max-pooled, quantised on [0, 1]."""
        self.check_index(prompt=prompt)
        key = (prompt, size)
        if key not in self._thumbs:
            pooled = maxpool2d(self.patterns[prompt], size, size)
            self._thumbs[key] = encode(pooled, quantize="uint8", lo=0.0, hi=1.0)
        return self._thumbs[key]

    def prompt_data(self, prompt: int, thumb_size: int) -> PromptData:
        scores = [
            HeadScore(kind=kind, label=SCORE_LABELS.get(kind, kind.replace("_", " ")),
                      values=encode(np.asarray(vals, dtype=np.float32)))
            for kind, vals in sorted(self.scores[prompt].items(),
                                     key=lambda kv: SCORE_KINDS.index(kv[0]) if kv[0] in SCORE_KINDS else 99)
        ]
        return PromptData(text=self.texts[prompt], tokens=self.tokens[prompt],
                          thumbs=self.thumbnails(prompt, thumb_size), scores=scores)

    def window(
        self, prompt: int, layer: int, head: int, q0: int, q1: int, k0: int, k1: int,
        *, max_size: int | None = None, precision: str = "float16",
    ) -> PatternWindow:
        """Queries ``q0:q1`` x keys ``k0:k1`` of one head (clipped to the prompt), optionally max-pooled."""
        self.check_index(prompt=prompt, layer=layer, head=head)
        n = len(self.tokens[prompt])
        if not (0 <= q0 < n and 0 <= k0 < n):
            msg = f"window start (q0={q0}, k0={k0}) is out of range: prompt {prompt} has {n} tokens (0..{n - 1})"
            raise SiteIndexError(msg)
        q1, k1 = min(q1, n), min(k1, n)
        block = self.patterns[prompt][layer, head, q0:q1, k0:k1]
        if max_size is not None:
            block = maxpool2d(block, max_size, max_size)
        if precision == "uint8":
            values = encode(block, quantize="uint8", lo=0.0, hi=1.0)
        elif precision == "float32":
            values = encode(block.astype(np.float32))
        elif precision == "float16":
            values = encode(block.astype(np.float16))
        else:
            msg = f"precision must be uint8, float16 or float32, not {precision!r}"
            raise ValueError(msg)
        return PatternWindow(prompt=prompt, layer=layer, head=head, q0=q0, q1=q1, k0=k0, k1=k1, values=values)


def scores_for(patterns: np.ndarray, token_ids: Sequence[int]) -> dict[str, np.ndarray]:
    """Head scores of one prompt from its float16 patterns, one layer at a time (bounded memory)."""
    import torch

    from interp_widget.analysis.heads import scores_from_patterns

    ids = torch.as_tensor(list(token_ids), dtype=torch.long)
    per_layer: list[dict[str, torch.Tensor]] = [
        scores_from_patterns(torch.from_numpy(patterns[layer:layer + 1].astype(np.float32)), ids, SCORE_KINDS)
        for layer in range(patterns.shape[0])
    ]
    return {kind: torch.cat([d[kind] for d in per_layer]).numpy().astype(np.float32) for kind in SCORE_KINDS}


def ids_from_strings(tokens: Sequence[str]) -> list[int]:
    """Token ids standing in for unknown ones: equal strings get equal ids (what the scores compare)."""
    table: dict[str, int] = {}
    return [table.setdefault(t, len(table)) for t in tokens]


def from_arrays(
    patterns: Any,
    tokens: Sequence[str] | Sequence[Sequence[str]],
    *,
    model_name: str = "",
    token_ids: Sequence[int] | Sequence[Sequence[int]] | None = None,
    scores: bool = True,
) -> AttentionData:
    """Attention data from precomputed patterns: ``[n_layers, n_heads, n, n]`` with ``n`` string tokens,
    or a list of those (several prompts). Scores are computed unless ``scores=False``."""
    pats = list(patterns) if isinstance(patterns, (list, tuple)) else [patterns]
    toks: list[list[str]] = [list(tokens)] if tokens and isinstance(tokens[0], str) else [list(t) for t in tokens]  # type: ignore[arg-type]
    arrays = [np.asarray(_to_numpy(p), dtype=np.float16) for p in pats]
    if token_ids is None:
        ids = [ids_from_strings(t) for t in toks]
    else:
        ids = [list(token_ids)] if isinstance(token_ids[0], int) else [list(t) for t in token_ids]  # type: ignore[arg-type]
    data = AttentionData(model_name=model_name, texts=["".join(t) for t in toks], tokens=toks, patterns=arrays)
    if scores:
        data.scores = [scores_for(p, i) for p, i in zip(arrays, ids, strict=True)]
    return data


def _to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor (float16 / bfloat16 / on a device)
        return np.asarray(x.detach().float().cpu().numpy())
    return np.asarray(x)


def _prompt_tokens(model: Model, item: Any) -> tuple[str, Any]:
    """(display text, LongTensor [1, n]) for one prompt given as text or token ids."""
    import torch

    n_ctx = model.spec.n_ctx
    if isinstance(item, str):
        return item, model.to_tokens(item)  # raises ContextLengthError past n_ctx
    ids = torch.as_tensor(_to_numpy(item) if not isinstance(item, (list, tuple)) else item, dtype=torch.long)
    if ids.dim() == 2 and ids.shape[0] == 1:
        ids = ids[0]
    if ids.dim() != 1 or ids.numel() == 0:
        msg = f"token ids must be a non-empty 1-D sequence (or [1, n]); got shape {list(ids.shape)}"
        raise ValueError(msg)
    if ids.numel() > n_ctx:
        msg = f"the prompt has {ids.numel()} tokens but {model.name} has a context of {n_ctx} tokens"
        raise ContextLengthError(msg)
    return "", ids[None]


def collect(model: Model, prompts: Sequence[Any]) -> AttentionData:
    """Run ``model`` once per prompt, capturing every layer's ``attn.hook_pattern``; keep float16 copies."""
    import torch

    hooks = [f"blocks.{layer}.attn.hook_pattern" for layer in range(model.spec.n_layers)]
    texts: list[str] = []
    tokens: list[list[str]] = []
    patterns: list[np.ndarray] = []
    scores: list[dict[str, np.ndarray]] = []
    for item in prompts:
        text, ids = _prompt_tokens(model, item)
        with torch.no_grad():
            res = model.run(ids, capture=hooks)
        pat = np.stack([res.cache[h][0].to(torch.float16).cpu().numpy() for h in hooks])  # [L, H, n, n]
        del res
        strs = [str(t) for t in model.to_str_tokens(ids[0])]
        texts.append(text or "".join(strs))
        tokens.append(strs)
        patterns.append(pat)
        scores.append(scores_for(pat, ids[0].tolist()))
    return AttentionData(model_name=model.name, texts=texts, tokens=tokens, patterns=patterns, scores=scores)
