"""The batched sweep engine shared by patching, ablation, path patching and attribution.

A sweep is a list of :class:`PatchRun` (each a few interventions on the same ``B`` prompts). The
engine stacks runs along the batch axis (run ``j`` owns rows ``j*B .. j*B+B-1``, its interventions
carry those ``rows``), in chunks sized to a memory budget, and evaluates the metric once per chunk.

Runs are grouped by the lowest layer they touch. When the backend can start a forward pass at a
layer from a given residual stream (``backend.supports_start_at_layer``, see
:func:`run_backend`), a chunk whose runs all start at layer ``L`` starts there from the base run's
cached ``blocks.L.hook_resid_pre``: the unchanged layers below are not recomputed.

This module also names the standard sweeps (:data:`KINDS`): which hook, and which axes.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from interp_widget.errors import BackendError, InputMismatchError, SiteIndexError, UnknownSiteError
from interp_widget.tracing.base import Intervention, RunResult
from interp_widget.tracing.sites import Site

if TYPE_CHECKING:
    import torch

    from interp_widget.analysis.metrics import Metric
    from interp_widget.models.model import Model

Progress = Callable[[int, int], Any]
TokensLike = Any  # torch.Tensor | str | Sequence[str]

#: default memory budget of one chunk of a sweep (logits and activations of its rows)
DEFAULT_MAX_BYTES = 192 * 2**20


@dataclass(frozen=True)
class SweepKind:
    """A standard sweep: one hook component and the axes of its grid (``layer`` first)."""

    name: str
    component: str
    axes: tuple[str, ...]  # from "layer", "pos", "head", "dest_pos"
    doc: str = ""


def _k(name: str, comp: str, axes: tuple[str, ...], doc: str) -> tuple[str, SweepKind]:
    return name, SweepKind(name, comp, axes, doc)


KINDS: dict[str, SweepKind] = dict([
    _k("resid_pre", "hook_resid_pre", ("layer", "pos"), "residual stream before each block, by position"),
    _k("resid_mid", "hook_resid_mid", ("layer", "pos"), "residual stream between attention and MLP, by position"),
    _k("resid_post", "hook_resid_post", ("layer", "pos"), "residual stream after each block, by position"),
    _k("attn_out", "hook_attn_out", ("layer", "pos"), "attention layer output, by position"),
    _k("mlp_out", "hook_mlp_out", ("layer", "pos"), "MLP output, by position"),
    _k("resid_pre_all_pos", "hook_resid_pre", ("layer",), "residual stream before each block, all positions"),
    _k("attn_out_all_pos", "hook_attn_out", ("layer",), "attention layer output, all positions"),
    _k("mlp_out_all_pos", "hook_mlp_out", ("layer",), "MLP output, all positions"),
    _k("heads", "attn.hook_z", ("layer", "head"), "each head's output (z), all positions"),
    _k("heads_by_pos", "attn.hook_z", ("layer", "pos", "head"), "each head's output (z) at each position"),
    _k("q", "attn.hook_q", ("layer", "head"), "each head's queries, all positions"),
    _k("k", "attn.hook_k", ("layer", "head"), "each head's keys, all positions"),
    _k("v", "attn.hook_v", ("layer", "head"), "each head's values, all positions"),
    _k("q_by_pos", "attn.hook_q", ("layer", "pos", "head"), "each head's query at each position"),
    _k("k_by_pos", "attn.hook_k", ("layer", "pos", "head"), "each head's key at each position"),
    _k("v_by_pos", "attn.hook_v", ("layer", "pos", "head"), "each head's value at each position"),
    _k("pattern", "attn.hook_pattern", ("layer", "head"), "each head's attention pattern"),
    _k("pattern_by_pos", "attn.hook_pattern", ("layer", "head", "dest_pos"), "each head's pattern row per query"),
])
ALIASES: dict[str, str] = {"z": "heads", "z_by_pos": "heads_by_pos", "resid": "resid_pre", "attn": "attn_out",
                           "mlp": "mlp_out", "head": "heads", "heads_all_pos": "heads"}


def sweep_kind(name: str) -> SweepKind:
    key = ALIASES.get(name, name)
    if key not in KINDS:
        msg = f"unknown sweep {name!r}; known: {', '.join(KINDS)} (or pass a list of sites)"
        raise UnknownSiteError(msg)
    return KINDS[key]


@dataclass
class Grid:
    """The sites of a sweep in C order over ``axes``, with labels."""

    axes: tuple[str, ...]
    labels: dict[str, list[str]]
    sites: list[Site]
    name: str

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(self.labels[a]) for a in self.axes)


def pos_labels(model: Model, tokens: torch.Tensor) -> list[str]:
    try:
        toks = model.to_str_tokens(tokens[0])
    except Exception:  # a tokenizer-less model: positions only
        return [str(i) for i in range(tokens.shape[-1])]
    return [f"{i}:{t}" for i, t in enumerate(toks)]


def build_grid(model: Model, sites: str | Sequence[Site | str], tokens: torch.Tensor,
               layers: Sequence[int] | None = None) -> Grid:
    """Expand a sweep name (``"heads"``, ``"resid_pre"``, ...) or an explicit site list into a :class:`Grid`."""
    spec = model.spec
    if not isinstance(sites, str):
        checked = [model.check_site(s) for s in sites]
        if not checked:
            msg = "an empty list of sites"
            raise InputMismatchError(msg)
        return Grid(("site",), {"site": [str(s) for s in checked]}, checked, "sites")
    kind = sweep_kind(sites)
    if kind.component in ("hook_mlp_out", "hook_resid_mid") and spec.d_mlp is None:
        msg = f"{model.name} is attention-only: it has no MLPs, so no {kind.name!r} sweep"
        raise UnknownSiteError(msg)
    model.check_site(Site(kind.component, 0))
    lay = list(range(spec.n_layers)) if layers is None else [int(x) for x in layers]
    for x in lay:
        model.check_site(Site(kind.component, x))
    n_pos = tokens.shape[-1]
    ranges = {"layer": lay, "pos": list(range(n_pos)), "dest_pos": list(range(n_pos)),
              "head": list(range(spec.n_heads))}
    plabels = pos_labels(model, tokens) if {"pos", "dest_pos"} & set(kind.axes) else []
    labels = {"layer": [str(x) for x in lay], "pos": plabels, "dest_pos": plabels,
              "head": [str(h) for h in range(spec.n_heads)]}
    out = []
    for combo in itertools.product(*(ranges[a] for a in kind.axes)):
        d = dict(zip(kind.axes, combo, strict=True))
        pos = d.get("pos", d.get("dest_pos"))
        out.append(Site(kind.component, d["layer"], d.get("head"), pos))
    return Grid(kind.axes, {a: labels[a] for a in kind.axes}, out, kind.name)


def select(t: torch.Tensor, site: Site) -> torch.Tensor:
    """The part of a whole activation ``t`` (batch first) that ``site``'s head / position select."""
    idx: list[Any] = [slice(None)] * t.ndim
    if site.position is not None:
        n = t.shape[site.pos_axis]
        if not -n <= site.position < n:
            msg = f"position {site.position} is out of range for {n} tokens ({site})"
            raise SiteIndexError(msg)
        idx[site.pos_axis] = site.position
    if site.head is not None:
        idx[site.head_axis] = site.head  # type: ignore[index]
    return t[tuple(idx)]


def start_layer(sites: Sequence[Site]) -> int:
    """The lowest layer any of ``sites`` is in (0 for sites outside the blocks)."""
    return min((s.layer if s.layer is not None else 0) for s in sites) if sites else 0


# --- inputs -------------------------------------------------------------------


def as_tokens(model: Model, x: TokensLike) -> torch.Tensor:
    import torch

    if isinstance(x, torch.Tensor):
        return x if x.ndim == 2 else x.reshape(1, -1)
    if isinstance(x, str) or (isinstance(x, Sequence) and x and isinstance(x[0], str)):
        return model.to_tokens(x)
    return torch.as_tensor(x).reshape(1, -1) if torch.as_tensor(x).ndim < 2 else torch.as_tensor(x)


def pair_tokens(model: Model, clean: TokensLike, corrupted: TokensLike) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokenize a clean / corrupted pair and check that their shapes match."""
    c, k = as_tokens(model, clean), as_tokens(model, corrupted)
    if c.shape[-1] != k.shape[-1]:
        msg = (f"clean and corrupted inputs must have the same number of tokens: clean has {c.shape[-1]} "
               f"tokens, corrupted has {k.shape[-1]}; patching swaps activations position by position")
        raise InputMismatchError(msg)
    if c.shape[0] != k.shape[0]:
        msg = f"clean has {c.shape[0]} prompts but corrupted has {k.shape[0]}: give one corrupted prompt per clean one"
        raise InputMismatchError(msg)
    return c, k


# --- running ------------------------------------------------------------------


def supports_start(model: Model) -> bool:
    return bool(getattr(model.backend, "supports_start_at_layer", False))


def supports_logit_positions(model: Model) -> bool:
    return bool(getattr(model.backend, "supports_logit_positions", False))


def supports_stop(model: Model) -> bool:
    return bool(getattr(model.backend, "supports_stop_after_capture", False))


def supports_prefix(model: Model) -> bool:
    return bool(getattr(model.backend, "supports_prefix_kv", False)) and model.spec.causal


def shared_prefix(model: Model, base: torch.Tensor, source: torch.Tensor) -> int:
    """How many leading positions every base prompt shares with its source prompt (at most ``pos - 1``).

    In a causal model every activation at those positions is the same in both runs, so a sweep can take
    their keys and values from the base run and compute only the positions after them."""
    if not supports_prefix(model) or base.shape != source.shape:
        return 0
    differs = (base != source).any(0)
    first = int(differs.nonzero()[0, 0]) if bool(differs.any()) else base.shape[1]
    return max(0, min(first, base.shape[1] - 1))


def run_backend(model: Model, tokens: torch.Tensor, *, capture: Sequence[Site] = (),
                interventions: Sequence[Intervention] = (), grads: Sequence[Site] = (),
                metric: Callable[[torch.Tensor], torch.Tensor] | None = None,
                start_at_layer: int | None = None, resid: torch.Tensor | None = None,
                logit_positions: Sequence[int] | None = None, stop_after_capture: bool = False,
                prefix_kv: Sequence[tuple[torch.Tensor, torch.Tensor]] | None = None) -> RunResult:
    """``model.backend.run`` with already-checked sites; ``start_at_layer`` / ``resid`` only when supported.

    Backend extensions (optional; a backend announces them with ``supports_start_at_layer`` /
    ``supports_logit_positions``): ``run(..., start_at_layer=L, resid=r)`` runs blocks ``L..`` on the
    residual stream ``r`` (``[batch, pos, d_model]``, the value of ``blocks.L.hook_resid_pre``) instead
    of the embeddings of ``tokens`` (sites below layer ``L`` are then not available);
    ``run(..., logit_positions=[p])`` returns logits ``[batch, 1, d_vocab]`` of position ``p`` only;
    ``run(..., stop_after_capture=True)`` ends the pass once every capture is taken (``supports_stop_after_capture``).
    ``run(..., start_at_layer=L, resid=r, prefix_kv=[(k, v) per layer])`` runs only the positions after a
    shared prefix whose keys and values are given (``supports_prefix_kv``; sites then see suffix positions).
    Without them the same call runs the whole model (callers that narrow the logits must check
    :func:`supports_logit_positions` first).
    """
    kw: dict[str, Any] = {}
    if start_at_layer is not None and resid is not None and supports_start(model):
        kw = {"start_at_layer": start_at_layer, "resid": resid}
    if prefix_kv is not None:
        if "start_at_layer" not in kw or not supports_prefix(model):
            msg = f"{type(model.backend).__name__} cannot run from a cached prefix"
            raise BackendError(msg)
        kw["prefix_kv"] = prefix_kv
    if logit_positions is not None and supports_logit_positions(model):
        kw["logit_positions"] = list(logit_positions)
    if stop_after_capture and supports_stop(model):
        kw["stop_after_capture"] = True
    return model.backend.run(tokens, capture=list(capture), interventions=list(interventions), grads=list(grads),
                             metric=metric, **kw)


@dataclass
class PatchRun:
    """One run of a sweep: interventions ``(site, op, value)`` on all of the run's ``B`` rows."""

    sets: list[tuple[Site, str, Any]]
    start: int = -1  # lowest layer touched; -1: from the sites

    def __post_init__(self) -> None:
        if self.start < 0:
            self.start = start_layer([s for s, _, _ in self.sets])


@dataclass
class SweepOutput:
    values: torch.Tensor  # [n_runs] metric per run
    captures: dict[str, torch.Tensor] = field(default_factory=dict)  # hook -> [n_runs * B, ...]
    forward_passes: int = 0
    rows: int = 0
    prefix: int = 0  # positions taken from the base run's cache instead of computed


def bytes_per_row(model: Model, n_pos: int, n_logit_pos: int | None = None) -> int:
    """Rough peak memory of one batch row of a forward pass (float32): logits plus a block's activations."""
    s = model.spec
    logit_pos = n_pos if n_logit_pos is None else n_logit_pos
    per_pos = 6 * s.d_model + 3 * s.n_heads * n_pos + 2 * (s.d_mlp or 0)
    return 4 * (n_pos * per_pos + logit_pos * s.d_vocab)


#: the fixed cost of one more forward pass (Python, hooks, small kernels), in multiply-adds: a chunk
#: shares its pass with the next start layer when recomputing that layer costs less than this
PASS_OVERHEAD_MACS = 2.5e8


def layer_macs(model: Model, n_pos: int) -> float:
    """Multiply-adds of one block for one token (projections, MLP, attention over ``n_pos`` keys)."""
    s = model.spec
    return float(4 * s.d_model * s.d_model + 2 * s.d_model * (s.d_mlp or 0) + 2 * n_pos * s.n_heads * s.d_head)


def plan_chunks(starts: Sequence[int], rows_per_run: int, cap_rows: int, n_pos: int = 1,
                token_layer_macs: float = 0.0) -> list[list[int]]:
    """Group run indices into chunks of at most ``cap_rows`` rows, each of one start layer where it pays.

    Runs are taken from the highest start layer down. At a change of start layer the open chunk takes
    the next runs too (and starts at their lower layer) only if recomputing the layers in between for
    its rows costs less than a pass of its own (:data:`PASS_OVERHEAD_MACS`).
    """
    per = max(1, cap_rows // rows_per_run)
    order = sorted(range(len(starts)), key=lambda i: (-starts[i], i))
    chunks: list[list[int]] = []
    cur: list[int] = []
    for i in order:
        close = len(cur) >= per
        if cur and not close and starts[i] != starts[cur[-1]]:
            extra = len(cur) * rows_per_run * n_pos * (starts[cur[-1]] - starts[i]) * token_layer_macs
            close = extra > PASS_OVERHEAD_MACS
        if close:
            chunks.append(cur)
            cur = []
        cur.append(i)
    if cur:
        chunks.append(cur)
    return chunks


def _shift(site: Site, value: Any, p: int, n_pos: int) -> tuple[Site, Any]:
    """An intervention of a full-length run, for a run of the positions after a prefix of ``p``."""
    import torch

    if site.position is not None:
        return site.with_(head=site.head, position=(site.position % n_pos) - p), value
    if not isinstance(value, torch.Tensor):
        return site, value
    axis = site.pos_axis - (1 if site.head is not None and (site.head_axis or 0) < site.pos_axis else 0)
    if value.ndim > axis and value.shape[axis] == n_pos:
        value = value.narrow(axis, p, n_pos - p)
    return site, value


def _prefix_ok(model: Model, prefix: int, n_pos: int, runs: Sequence[PatchRun], capture: Sequence[Site],
               base_cache: dict[str, torch.Tensor] | None, positions: list[int] | None, metric: Any) -> bool:
    """Whether a sweep can run only the positions after a shared prefix (see :func:`shared_prefix`)."""
    if prefix <= 0 or base_cache is None or not supports_prefix(model) or not supports_start(model):
        return False
    if metric is not None and (positions is None or min(positions) < prefix):
        return False  # the metric reads a prefix position (or every position)
    n = model.spec.n_layers
    need = [f"blocks.{x}.{c}" for x in range(n) for c in ("attn.hook_k", "attn.hook_v", "hook_resid_pre")]
    need += [s.hook_name for s in capture]
    if any(name not in base_cache for name in need):
        return False
    return all(site.position is None or site.position % n_pos >= prefix for r in runs for site, _, _ in r.sets)


def run_sweep(
    model: Model,
    tokens: torch.Tensor,
    runs: Sequence[PatchRun],
    metric: Metric | None,
    *,
    base_resid: dict[int, torch.Tensor] | None = None,
    base_cache: dict[str, torch.Tensor] | None = None,
    prefix: int = 0,
    capture: Sequence[Site] = (),
    max_batch: int | None = None,
    max_bytes: int | None = None,
    progress: Progress | None = None,
) -> SweepOutput:
    """Run every ``PatchRun`` on ``tokens`` (``[B, pos]``), batched; return the metric per run.

    ``base_resid[L]`` is the unpatched run's ``blocks.L.hook_resid_pre`` (``[B, pos, d_model]``): with
    it, and a backend that supports it, chunks start at their lowest patched layer. With ``prefix=P``
    (see :func:`shared_prefix`) and the base run's activations in ``base_cache`` (every layer's
    ``hook_k``, ``hook_v``, ``hook_resid_pre``), only positions ``P..`` are computed, the prefix's keys
    and values coming from the base run; this needs a metric that reads one position after the prefix,
    and is skipped otherwise. ``capture``d activations come back whole, stacked in run order.
    ``progress(done_runs, total_runs)`` is called after each chunk; an exception it raises (or a
    KeyboardInterrupt) stops the sweep.
    """
    import torch

    b, n_pos = tokens.shape
    n = len(runs)
    narrowed = metric.narrow(n_pos) if metric is not None and supports_logit_positions(model) else None
    positions, run_metric = narrowed if narrowed is not None else (None, metric)
    if base_resid is None and base_cache is not None and supports_start(model):
        base_resid = {x: base_cache[f"blocks.{x}.hook_resid_pre"] for x in range(model.spec.n_layers)
                      if f"blocks.{x}.hook_resid_pre" in base_cache}
    p = prefix if _prefix_ok(model, prefix, n_pos, runs, capture, base_cache, positions, metric) else 0
    if p and positions is not None:
        positions = [x - p for x in positions]
    budget = max_bytes if max_bytes is not None else DEFAULT_MAX_BYTES
    per_row = bytes_per_row(model, n_pos - p, None if positions is None else len(positions))
    cap = max(b, budget // max(1, per_row))
    if max_batch is not None:
        if max_batch < 1:
            msg = f"max_batch must be at least 1, got {max_batch}"
            raise ValueError(msg)
        cap = min(cap, max(b, max_batch))
    can_start = bool(base_resid) and supports_start(model)
    starts = [r.start if can_start else 0 for r in runs]
    chunks = plan_chunks(starts, b, cap, n_pos - p, layer_macs(model, n_pos))
    values = torch.full((n,), float("nan"))
    caps: dict[str, list[tuple[list[int], torch.Tensor]]] = {s.hook_name: [] for s in capture}
    done = 0
    passes = 0
    if progress is not None:
        progress(0, n)
    for chunk in chunks:
        k = len(chunk)
        ivs = []
        for j, ri in enumerate(chunk):
            rows = slice(j * b, (j + 1) * b)
            for site, op, value in runs[ri].sets:
                if p:
                    site, value = _shift(site, value, p, n_pos)
                ivs.append(Intervention(site, op, value, rows))  # type: ignore[arg-type]
        start = min(starts[i] for i in chunk)
        big = tokens[:, p:].repeat(k, 1)
        resid = None
        kv = None
        if can_start and base_resid and (start > 0 or p):
            resid = base_resid[start][:, p:].repeat(k, 1, 1)
        if p and base_cache is not None:
            kv = [(base_cache[f"blocks.{x}.attn.hook_k"][:, :p].repeat(k, 1, 1, 1),
                   base_cache[f"blocks.{x}.attn.hook_v"][:, :p].repeat(k, 1, 1, 1)) for x in range(model.spec.n_layers)]
        with torch.no_grad():
            res = run_backend(model, big, capture=capture, interventions=ivs,
                              start_at_layer=start if resid is not None else None, resid=resid,
                              logit_positions=positions, prefix_kv=kv)
        passes += 1
        if run_metric is not None:
            if res.logits is None:
                msg = f"{type(model.backend).__name__} returned no logits; a metric needs them"
                raise InputMismatchError(msg)
            values[torch.tensor(chunk)] = run_metric.per_run(res.logits, b).detach().float().cpu()
        for s in capture:
            t = res.cache[s.hook_name]
            if p and base_cache is not None:
                head = base_cache[s.hook_name].narrow(s.pos_axis, 0, p).repeat(k, *([1] * (t.ndim - 1)))
                t = torch.cat([head, t], dim=s.pos_axis)
            caps[s.hook_name].append((chunk, t))
        done += k
        if progress is not None:
            progress(done, n)
    out: dict[str, torch.Tensor] = {}
    for name, parts in caps.items():
        first = parts[0][1]
        full = first.new_empty((n * b, *first.shape[1:]))
        for chunk, t in parts:
            idx = torch.tensor([ri * b + i for ri in chunk for i in range(b)])
            full[idx] = t
        out[name] = full
    return SweepOutput(values, out, passes, n * b, prefix=p)


@dataclass
class PairRuns:
    """The unpatched base and source runs of a patching experiment (activations of the hooks asked for)."""

    base_tokens: torch.Tensor
    source_tokens: torch.Tensor
    base_cache: dict[str, torch.Tensor]
    source_cache: dict[str, torch.Tensor]
    base_logits: torch.Tensor
    source_logits: torch.Tensor
    base_metric: float = float("nan")
    source_metric: float = float("nan")

    def score(self, metric: Metric) -> None:
        """Evaluate the (bound) metric on the base and source runs."""
        b = self.base_tokens.shape[0]
        self.base_metric = float(metric.per_run(self.base_logits, b)[0])
        self.source_metric = float(metric.per_run(self.source_logits, b)[0])

    def base_resid(self, model: Model) -> dict[int, torch.Tensor] | None:
        if not supports_start(model):
            return None
        return {layer: self.base_cache[f"blocks.{layer}.hook_resid_pre"] for layer in range(model.spec.n_layers)}


def run_pair(model: Model, base: torch.Tensor, source: torch.Tensor, hooks: Sequence[Site]) -> PairRuns:
    """One forward pass over base and source stacked (``2B`` rows), capturing ``hooks`` (and every
    layer's ``hook_resid_pre`` when the backend can start at a layer)."""
    import torch

    b = base.shape[0]
    cap = {s.hook_name: Site(s.component, s.layer) for s in hooks}
    if supports_start(model):
        for layer in range(model.spec.n_layers):
            cap.setdefault(f"blocks.{layer}.hook_resid_pre", Site("hook_resid_pre", layer))
    if supports_prefix(model) and bool((base[:, :1] == source[:, :1]).all()):
        for layer in range(model.spec.n_layers):
            for comp in ("attn.hook_k", "attn.hook_v"):
                cap.setdefault(f"blocks.{layer}.{comp}", Site(comp, layer))
    with torch.no_grad():
        res = run_backend(model, torch.cat([base, source]), capture=list(cap.values()))
    if res.logits is None:
        msg = f"{type(model.backend).__name__} returned no logits; a metric needs them"
        raise InputMismatchError(msg)
    return PairRuns(base, source, {k: v[:b] for k, v in res.cache.items()},
                    {k: v[b:] for k, v in res.cache.items()}, res.logits[:b], res.logits[b:])
