"""The neuron view: what a neuron (or a direction) responds to, and what it does to the logits.

>>> view = neuron(model, "blocks.0.mlp.hook_post:7", dataset)        # doctest: +SKIP
>>> view.top.values, view.top.str_tokens[0], view.histogram.counts   # doctest: +SKIP
>>> logit_effects(model, "blocks.0.mlp.hook_post:7").top_tokens      # doctest: +SKIP

A :class:`Unit` is one scalar read from a site's activation: a neuron (``"site:index"``), a direction
``[d]`` at a site (the dot product), or output ``index`` of any map of the site's rows (``transform``,
e.g. an SAE's ``encode``, which gives a feature's activation).

:func:`scan` makes one batched pass over a dataset for several units at the same site and keeps, per
unit, the ``k`` best examples (with the unit's activation on every token of a window around the best
token) and a histogram of the activation over every token. Memory is bounded: the kept examples are
``O(units * k * window)`` and the histogram keeps at most ``max_values`` values per unit (exact up to
that count, a uniform random sample beyond it; mean, min, max and the fraction positive stay exact).
Each batch is merged into the kept examples by a stable sort (ties go to the earlier sequence and
position), which gives exactly the brute-force full scan's answer.

:func:`logit_effects` is the unit's direct effect on the logits from the weights: the vector it writes
into the residual stream (a neuron's ``W_out`` row, a direction's image through ``W_out``, or the
direction itself at a residual site), through the final LayerNorm as TransformerLens folds it (centred,
times ``ln_final.w``; the per-token scale ``1/sigma`` is left out), then ``@ W_U``, minus its mean over
the vocabulary (a constant shift of every logit changes no probability).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from interp_widget.analysis.activation_store import Progress, as_sequences, iter_activations, progress_reporter
from interp_widget.errors import BackendError, InputMismatchError, SiteIndexError
from interp_widget.tracing.sites import Site

if TYPE_CHECKING:
    import torch

    from interp_widget.models.model import Model

#: residual-stream components: a direction there is what is written into the residual stream
_RESID = ("hook_resid_pre", "hook_resid_mid", "hook_resid_post", "hook_attn_out", "hook_mlp_out", "hook_embed",
          "hook_pos_embed")


@dataclass(frozen=True, eq=False)
class Unit:
    """One scalar per token read from ``site``: a neuron, a direction, or output ``index`` of ``transform``."""

    site: Site
    index: int | None = None
    direction: torch.Tensor | None = None
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None
    name: str | None = None

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        if self.index is not None:
            return f"{self.site.hook_name}:{self.index}"
        return f"{self.site.hook_name} direction"

    @property
    def is_neuron(self) -> bool:
        return self.index is not None and self.transform is None

    def read(self, rows: torch.Tensor) -> torch.Tensor:
        """The unit's value for activations ``[..., d]`` of its site: ``[...]``."""
        return _reader([self])(rows)[..., 0]

    def __repr__(self) -> str:
        return f"<Unit {self.label}>"


def site_width(model: Model, site: Site) -> int | None:
    """The width of the last axis of ``site``'s activation (None when the model does not say)."""
    for info in model.sites():
        if info.site.hook_name == site.hook_name:
            value = getattr(model.spec, info.shape[-1], None)
            return int(value) if isinstance(value, int) else None
    return None


def unit(model: Model, spec: str | Site | Unit, index: int | None = None, *, direction: Any = None,
         transform: Callable[[torch.Tensor], torch.Tensor] | None = None, name: str | None = None) -> Unit:
    """A checked :class:`Unit`: ``"blocks.0.mlp.hook_post:7"``, ``(site, 7)``, or ``(site, direction=v)``."""
    import torch

    if isinstance(spec, Unit):
        return spec
    head, sep, tail = spec.rpartition(":") if isinstance(spec, str) else ("", "", "")
    if sep and head and head != "module":  # "site:index" ("module:path" alone is a generic module site)
        if not tail.strip().isdigit():
            msg = f"cannot read a neuron index from {spec!r}: write 'site:index', e.g. 'blocks.0.mlp.hook_post:7'"
            raise InputMismatchError(msg)
        if index is not None and index != int(tail):
            msg = f"{spec!r} names neuron {tail} but index={index} was also given"
            raise InputMismatchError(msg)
        spec, index = head, int(tail)
    site = model.check_site(spec)
    if site.head is not None or site.position is not None:
        msg = f"a unit reads a whole site; {site} selects a head or position"
        raise InputMismatchError(msg)
    if (index is None) == (direction is None):
        msg = "give a unit either a neuron index or a direction (not both, not neither)"
        raise InputMismatchError(msg)
    width = site_width(model, site)
    if direction is not None:
        if transform is not None:
            msg = "a direction is read from the site's activation itself; it takes no transform"
            raise InputMismatchError(msg)
        direction = torch.as_tensor(direction, dtype=torch.float32).detach().cpu()
        if direction.ndim != 1 or (width is not None and direction.shape[0] != width):
            msg = (f"a direction at {site.hook_name} must have shape [{width}], "
                   f"got {tuple(direction.shape)}")
            raise InputMismatchError(msg)
        return Unit(site, None, direction, None, name)
    if transform is None and width is not None and not 0 <= int(index) < width:  # type: ignore[arg-type]
        msg = (f"neuron {index} is out of range: {site.hook_name} has {width} units (0..{width - 1})")
        raise SiteIndexError(msg)
    return Unit(site, int(index), None, transform, name)  # type: ignore[arg-type]


def _reader(units: Sequence[Unit]) -> Callable[[torch.Tensor], torch.Tensor]:
    """rows ``[..., d]`` -> ``[..., n_units]`` for units sharing a site and transform."""
    import torch

    first = units[0]
    for u in units[1:]:
        if u.site != first.site or u.transform is not first.transform:
            msg = f"units scanned together must share a site and transform: {first.label} vs {u.label}"
            raise InputMismatchError(msg)
    if first.direction is not None or any(u.direction is not None for u in units):
        if any(u.direction is None for u in units):
            msg = "units scanned together are all neurons or all directions"
            raise InputMismatchError(msg)
        mat = torch.stack([u.direction for u in units], dim=1)  # type: ignore[misc]  # [d, n]
        return lambda rows: rows.float() @ mat.to(rows.device)
    idx = torch.tensor([u.index for u in units])
    fn = first.transform
    if fn is None:
        return lambda rows: rows.float()[..., idx.to(rows.device)]
    return lambda rows: fn(rows).float()[..., idx.to(rows.device)]


# --- results -----------------------------------------------------------------------------------------


@dataclass
class TopExamples:
    """A unit's best ``k`` examples, best first; windows right-padded (tokens -1, acts NaN)."""

    unit: Unit
    values: torch.Tensor  # [k] activation at the focus token
    sequence: torch.Tensor  # [k] dataset sequence index
    position: torch.Tensor  # [k] focus token's position in its sequence
    start: torch.Tensor  # [k] window's first position in its sequence
    tokens: torch.Tensor  # [k, W]
    acts: torch.Tensor  # [k, W]
    str_tokens: list[list[str]]
    n_sequences: int
    n_tokens: int

    @property
    def focus(self) -> torch.Tensor:
        """Index of the focus token inside each window ``[k]``."""
        return self.position - self.start

    def __len__(self) -> int:
        return int(self.values.shape[0])

    def __repr__(self) -> str:
        rows = []
        for i in range(min(len(self), 5)):
            toks = self.str_tokens[i]
            f = int(self.focus[i])
            text = " ".join(toks[:f]) + f" [[{toks[f]}]] " + " ".join(toks[f + 1:])
            rows.append(f"  {float(self.values[i]):8.3f}  seq {int(self.sequence[i])}: {text.strip()}")
        more = f"\n  ... {len(self) - 5} more" if len(self) > 5 else ""
        return (f"<TopExamples {self.unit.label}: {len(self)} of {self.n_tokens} tokens in "
                f"{self.n_sequences} sequences>\n" + "\n".join(rows) + more)


@dataclass
class ActivationHistogram:
    """Histogram of a unit's activation over the tokens scanned."""

    unit: Unit
    counts: torch.Tensor  # [bins] int64
    edges: torch.Tensor  # [bins + 1]
    n_values: int
    n_total: int
    exact: bool
    mean: float
    min: float
    max: float
    frac_positive: float

    def __repr__(self) -> str:
        kind = "exact" if self.exact else f"sample of {self.n_values}"
        return (f"<ActivationHistogram {self.unit.label}: {self.n_total} tokens ({kind}), mean {self.mean:.3g}, "
                f"range [{self.min:.3g}, {self.max:.3g}], {100 * self.frac_positive:.1f}% > 0>")


@dataclass
class LogitEffects:
    """Direct effect on the logits of +1 of the unit (weights only; see the module docstring)."""

    unit: Unit
    effect: torch.Tensor  # [d_vocab]
    top_ids: torch.Tensor
    top_values: torch.Tensor
    top_tokens: list[str]
    bottom_ids: torch.Tensor
    bottom_values: torch.Tensor
    bottom_tokens: list[str]

    def __repr__(self) -> str:
        up = ", ".join(f"{t!r} {v:+.2f}" for t, v in zip(self.top_tokens, self.top_values.tolist(), strict=True))
        down = ", ".join(f"{t!r} {v:+.2f}" for t, v in zip(self.bottom_tokens, self.bottom_values.tolist(),
                                                              strict=True))
        return f"<LogitEffects {self.unit.label}\n  promotes:   {up}\n  suppresses: {down}>"


@dataclass
class NeuronView:
    """Everything the neuron view shows: top examples, histogram, logit effects (None without a linear path)."""

    unit: Unit
    top: TopExamples
    histogram: ActivationHistogram
    logits: LogitEffects | None

    def __repr__(self) -> str:
        parts = [f"<NeuronView {self.unit.label}>", repr(self.top), repr(self.histogram)]
        if self.logits is not None:
            parts.append(repr(self.logits))
        return "\n".join(parts)


# --- scanning ------------------------------------------------------------------------------------------


class _Kept:
    """The best ``k`` candidates per unit so far, merged batch by batch (stable: earlier wins ties)."""

    def __init__(self, n: int, k: int, w: int) -> None:
        import torch

        self.k = k
        self.values = torch.empty(n, 0)
        self.seq = torch.empty(n, 0, dtype=torch.long)
        self.pos = torch.empty(n, 0, dtype=torch.long)
        self.start = torch.empty(n, 0, dtype=torch.long)
        self.tokens = torch.empty(n, 0, w, dtype=torch.long)
        self.acts = torch.empty(n, 0, w)

    def merge(self, values: torch.Tensor, seq: torch.Tensor, pos: torch.Tensor, start: torch.Tensor,
              tokens: torch.Tensor, acts: torch.Tensor) -> None:
        import torch

        cat = [torch.cat(p, dim=1) for p in ((self.values, values), (self.seq, seq), (self.pos, pos),
                                             (self.start, start), (self.tokens, tokens), (self.acts, acts))]
        order = torch.sort(cat[0], dim=1, descending=True, stable=True).indices[:, : self.k]
        self.values, self.seq, self.pos, self.start = (torch.gather(c, 1, order) for c in cat[:4])
        big = order[..., None].expand(-1, -1, cat[4].shape[2])
        self.tokens, self.acts = torch.gather(cat[4], 1, big), torch.gather(cat[5], 1, big)


class _Stats:
    """Exact running mean/min/max/positive count plus a bounded uniform sample of values, per unit."""

    def __init__(self, n: int, max_values: int, seed: int) -> None:
        import torch

        self.max_values = max_values
        self.g = torch.Generator().manual_seed(seed)
        self.sample = torch.empty(0, n)
        self.keys = torch.empty(0)
        self.total = 0
        self.sum = torch.zeros(n, dtype=torch.float64)
        self.min = torch.full((n,), float("inf"))
        self.max = torch.full((n,), float("-inf"))
        self.pos = torch.zeros(n, dtype=torch.long)

    def add(self, vals: torch.Tensor) -> None:  # [m, n]
        import torch

        self.total += vals.shape[0]
        self.sum += vals.double().sum(0)
        self.min = torch.minimum(self.min, vals.min(0).values)
        self.max = torch.maximum(self.max, vals.max(0).values)
        self.pos += (vals > 0).sum(0)
        keys = torch.cat([self.keys, torch.rand(vals.shape[0], generator=self.g)])
        sample = torch.cat([self.sample, vals])
        if keys.shape[0] > self.max_values:
            top = torch.topk(keys, self.max_values).indices
            keys, sample = keys[top], sample[top]
        self.keys, self.sample = keys, sample

    def histogram(self, u: Unit, j: int, bins: int) -> ActivationHistogram:
        import torch

        vals = self.sample[:, j].contiguous()
        lo, hi = float(self.min[j]), float(self.max[j])
        if self.total == 0:
            lo, hi = 0.0, 1.0
        elif hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        edges = torch.linspace(lo, hi, bins + 1)
        idx = torch.bucketize(vals, edges[1:-1], right=True)
        counts = torch.bincount(idx, minlength=bins)
        return ActivationHistogram(u, counts, edges, int(vals.shape[0]), self.total, vals.shape[0] == self.total,
                                   float(self.sum[j] / max(1, self.total)), float(self.min[j]), float(self.max[j]),
                                   float(self.pos[j]) / max(1, self.total))


def scan(model: Model, units: Sequence[Unit | str] | Unit | str, dataset: Any, *, k: int = 16,
         window: tuple[int, int] = (12, 4), per_sequence: bool = True, bins: int = 40, batch_size: int = 32,
         max_values: int = 2**20, seed: int = 0,
         progress: bool | Progress | None = True) -> list[tuple[TopExamples, ActivationHistogram]]:
    """One batched pass over ``dataset``: per unit, its top ``k`` examples and its activation histogram.

    ``dataset``: a ``[n, pos]`` token tensor, a list of strings or of 1-D token tensors. With
    ``per_sequence`` (default) a sequence gives at most one example (its best token); otherwise every
    token is a candidate. ``window=(before, after)``: tokens kept around the focus token.
    ``progress``: True (a tqdm bar), a callable ``progress(done_sequences, total)`` (raise to cancel), None.
    """
    import torch

    us = [unit(model, u) for u in ([units] if isinstance(units, (str, Unit)) else units)]
    if not us:
        msg = "scan needs at least one unit"
        raise InputMismatchError(msg)
    if k < 1 or bins < 1 or batch_size < 1 or max_values < 1 or min(window) < 0:
        msg = f"k, bins, batch_size, max_values must be >= 1 and window >= 0 (got {k}, {bins}, {batch_size}, " \
              f"{max_values}, {window})"
        raise ValueError(msg)
    read = _reader(us)
    site = us[0].site
    seqs = as_sequences(dataset, model)
    before, after = window
    w = before + 1 + after
    n = len(us)
    kept, stats = _Kept(n, k, w), _Stats(n, max_values, seed)
    n_tokens = 0
    with progress_reporter(progress, len(seqs), f"scanning {site.hook_name}") as report:
        report(0)
        for first, count, out in iter_activations(model, [site], seqs, batch_size=batch_size):
            p = seqs[first].shape[0]
            with torch.no_grad():
                vals = read(out[site.hook_name]).reshape(count, p, n).cpu()
            toks = out["tokens"].long().reshape(count, p)
            n_tokens += count * p
            stats.add(vals.reshape(-1, n))
            _merge_batch(kept, vals, toks, first, before, w, per_sequence)
            report(first + count)
    vocab = _token_strings(model, kept.tokens)
    results = []
    for j, u in enumerate(us):
        strs = [[vocab[t] for t in row if t >= 0] for row in kept.tokens[j].tolist()]
        top = TopExamples(u, kept.values[j], kept.seq[j], kept.pos[j], kept.start[j], kept.tokens[j], kept.acts[j],
                          strs, len(seqs), n_tokens)
        results.append((top, stats.histogram(u, j, bins)))
    return results


def _merge_batch(kept: _Kept, vals: torch.Tensor, toks: torch.Tensor, first: int, before: int, w: int,
                 per_sequence: bool) -> None:
    """Add one batch (``vals [b, p, n]``, ``toks [b, p]``) of sequences ``first..`` to ``kept``."""
    import torch

    b, p, n = vals.shape
    if per_sequence:
        # the first maximal position of each sequence (stable sort: earliest wins ties)
        pos = torch.sort(vals, dim=1, descending=True, stable=True).indices[:, 0]  # [b, n]
        cand = torch.gather(vals, 1, pos[:, None]).squeeze(1).T  # [n, b]
        seq_local = torch.arange(b)[None].expand(n, b)
        pos = pos.T
    else:
        cand = vals.reshape(b * p, n).T  # [n, b*p] in (sequence, position) order
        seq_local = torch.arange(b).repeat_interleave(p)[None].expand(n, -1)
        pos = torch.arange(p).repeat(b)[None].expand(n, -1)
    order = torch.sort(cand, dim=1, descending=True, stable=True).indices[:, : kept.k]
    values = torch.gather(cand, 1, order)
    seq_local, pos = torch.gather(seq_local, 1, order), torch.gather(pos, 1, order)
    start = (pos - before).clamp(min=0)  # a window clipped at the sequence start keeps its width
    idx = start[..., None] + torch.arange(w)  # [n, c, w] positions of the window
    valid = idx < p
    safe = idx.clamp(0, p - 1)
    tokens = torch.where(valid, toks[seq_local[..., None], safe], torch.tensor(-1))
    unit_idx = torch.arange(n)[:, None, None].expand_as(safe)
    acts = torch.where(valid, vals[seq_local[..., None], safe, unit_idx], torch.tensor(float("nan")))
    kept.merge(values, seq_local + first, pos, start, tokens, acts)


def _token_strings(model: Model, tokens: torch.Tensor) -> dict[int, str]:
    import torch

    ids = sorted({int(t) for t in tokens.unique().tolist() if t >= 0})
    if not ids:
        return {}
    strs = model.to_str_tokens(torch.tensor(ids))
    return dict(zip(ids, strs, strict=True))


def top_examples(model: Model, spec: Unit | str, dataset: Any, *, k: int = 16, **kw: Any) -> TopExamples:
    """The ``k`` best examples of one unit over ``dataset``; see :func:`scan`."""
    return scan(model, [spec], dataset, k=k, **kw)[0][0]


def activation_histogram(model: Model, spec: Unit | str, dataset: Any, *, bins: int = 40,
                         **kw: Any) -> ActivationHistogram:
    """The histogram of one unit's activation over every token of ``dataset``; see :func:`scan`."""
    return scan(model, [spec], dataset, bins=bins, **kw)[0][1]


# --- logit effects ---------------------------------------------------------------------------------------


def written_vector(model: Model, u: Unit) -> torch.Tensor:
    """What +1 of the unit writes into the residual stream ``[d_model]`` (TransformerLens models)."""
    import torch

    ht = _hooked(model)
    comp, layer = u.site.component, u.site.layer
    if u.transform is not None:
        msg = f"{u.label} is read through a transform; it has no single written direction"
        raise InputMismatchError(msg)
    if comp == "mlp.hook_post":
        w_out = ht.blocks[layer].mlp.W_out.detach().float()  # [d_mlp, d_model]
        return w_out[u.index] if u.index is not None else u.direction @ w_out  # type: ignore[operator]
    if comp in _RESID:
        if u.index is not None:
            return torch.nn.functional.one_hot(torch.tensor(u.index), ht.cfg.d_model).float()
        return u.direction  # type: ignore[return-value]
    msg = (f"{u.site.hook_name} has no linear path to the logits; logit effects are defined for "
           f"mlp.hook_post neurons and residual-stream directions")
    raise InputMismatchError(msg)


def _hooked(model: Model) -> Any:
    from transformer_lens import HookedTransformer

    raw = getattr(model, "raw", None)
    if not isinstance(raw, HookedTransformer) and not hasattr(raw, "W_U"):
        msg = f"logit effects read the weights of a TransformerLens model; {model.name} is a {type(raw).__name__}"
        raise BackendError(msg)
    return raw


def logit_effects(model: Model, spec: Unit | str, *, k: int = 10) -> LogitEffects:
    """The unit's direct effect on every logit, and the ``k`` most promoted and suppressed tokens."""
    import torch

    u = unit(model, spec)
    ht = _hooked(model)
    vec = written_vector(model, u).to(ht.W_U.device)
    norm = ht.cfg.normalization_type
    if norm in ("LN", "LNPre"):
        vec = vec - vec.mean()
    if norm in ("LN", "RMS"):
        vec = vec * ht.ln_final.w.detach().float()
    with torch.no_grad():
        effect = (vec @ ht.W_U.detach().float()).cpu()
    effect = effect - effect.mean()
    k = min(k, effect.shape[0])
    top = torch.topk(effect, k)
    bottom = torch.topk(-effect, k)
    strs = _token_strings(model, torch.cat([top.indices, bottom.indices]))
    return LogitEffects(u, effect, top.indices, top.values, [strs[int(i)] for i in top.indices],
                        bottom.indices, -bottom.values, [strs[int(i)] for i in bottom.indices])


def neuron(model: Model, spec: Unit | str, dataset: Any, *, k: int = 16, logits_k: int = 10,
           **kw: Any) -> NeuronView:
    """The neuron view of one unit: top examples and histogram over ``dataset`` (:func:`scan`), logit effects."""
    u = unit(model, spec)
    top, hist = scan(model, [u], dataset, k=k, **kw)[0]
    effects = None
    if u.transform is None and (u.site.component == "mlp.hook_post" or u.site.component in _RESID):
        try:
            effects = logit_effects(model, u, k=logits_k)
        except BackendError:
            effects = None
    return NeuronView(u, top, hist, effects)


__all__ = ["ActivationHistogram", "LogitEffects", "NeuronView", "TopExamples", "Unit", "activation_histogram",
           "logit_effects", "neuron", "scan", "site_width", "top_examples", "unit", "written_vector"]
