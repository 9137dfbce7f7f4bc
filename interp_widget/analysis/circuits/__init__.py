"""Circuit discovery: an edge graph scored by EAP / EAP-IG, pruned exactly (ACDC-style), and its faithfulness.

>>> g = circuit(model, clean, corrupted, metric, method="eap-ig")   # doctest: +SKIP
>>> g.top(20).edges                                                  # doctest: +SKIP
>>> faithfulness_curve(model, clean, corrupted, metric, g)           # doctest: +SKIP

Backends: TransformerLens ``HookedTransformer`` (the per-head q/k/v inputs come from its split-input
hook points) and Hugging Face GPT-2 through nnsight (``c_attn`` recomputed per head and target); see
:mod:`._adapters`. Other models raise :class:`~interp_widget.errors.BackendError`.

A graph from :func:`circuit` carries its :class:`CircuitContext` (model, prompts, bound metric, ablation):
``graph.top(8).faithfulness()`` or ``graph.faithfulness(["L0H0->L1H1.k", ...])`` test a sub-circuit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from interp_widget.analysis.activation_store import Progress, progress_reporter
from interp_widget.analysis.circuits import acdc as _acdc
from interp_widget.analysis.circuits import faithfulness as _faith
from interp_widget.analysis.circuits._engine import EdgeRunner
from interp_widget.analysis.circuits.eap import eap_scores
from interp_widget.analysis.circuits.faithfulness import FaithfulnessCurve
from interp_widget.analysis.circuits.graph import CircuitContext, CircuitGraph, EdgeIndex, Node, Receiver
from interp_widget.analysis.metrics import Metric, bind_metric
from interp_widget.analysis.sweeps import TokensLike, pair_tokens

if TYPE_CHECKING:
    import torch

    from interp_widget.models.model import Model

__all__ = ["CircuitContext", "CircuitGraph", "EdgeIndex", "EdgeRunner", "FaithfulnessCurve", "Node", "Receiver", "circuit",
           "edge_patch", "faithfulness", "faithfulness_curve", "faithfulness_in_context"]

Method = Literal["eap", "eap-ig", "acdc"]
MetricLike = Metric | Callable[["torch.Tensor"], Any] | str


class _Setup:
    def __init__(self, model: Model, clean: TokensLike, corrupted: TokensLike, metric: MetricLike,
                 max_bytes: int) -> None:
        self.runner = EdgeRunner(model, max_bytes=max_bytes)
        self.clean, self.corrupted = pair_tokens(model, clean, corrupted)
        clean_logits, self.clean_acts = self.runner.capture(self.clean)
        corr_logits, self.corr_acts = self.runner.capture(self.corrupted)
        self.metric = bind_metric(metric, model, tokens=self.clean, reference_logits=clean_logits)
        b = self.clean.shape[0]
        self.clean_metric = float(self.metric.per_run(clean_logits, b)[0])
        self.corrupted_metric = float(self.metric.per_run(corr_logits, b)[0])

    def ref(self, ablation: str) -> torch.Tensor:
        return _faith.reference(self.clean_acts, self.corr_acts, ablation)


def circuit(model: Model, clean: TokensLike, corrupted: TokensLike, metric: MetricLike, method: Method = "eap",
            *, ig_steps: int = 5, threshold: float | None = None, seed: Literal["eap", "eap-ig"] = "eap-ig",
            max_candidates: int | None = None, ablation: _faith.Ablation = "resample", chunk: int = 64,
            max_bytes: int = 256 * 2**20, progress: bool | Progress | None = None) -> CircuitGraph:
    """Score every edge of ``model``'s graph for the clean-vs-corrupted behaviour measured by ``metric``.

    ``method``: ``"eap"`` (one forward and backward), ``"eap-ig"`` (``ig_steps`` interpolation points) or
    ``"acdc"`` (exact pruning by edge patching, seeded from ``seed`` attribution scores: keeps the
    ``max_candidates`` best edges (default: all) and drops each one whose removal changes the metric by
    at most ``threshold``, default 1% of ``|M(clean) - M(corrupted)|``). EAP graphs keep every edge:
    prune them with :meth:`CircuitGraph.top` / :meth:`CircuitGraph.prune`.

    ``progress``: ``True`` (a tqdm bar), a callable ``progress(done, total)`` (raise from it to stop), or
    ``None``. Units: the attribution pass is 1; exact pruning adds one per candidate edge and one for the
    final verification. A kernel interrupt (KeyboardInterrupt) stops it too; hooks are always removed.
    """
    if method not in ("eap", "eap-ig", "acdc"):
        msg = f"method must be 'eap', 'eap-ig' or 'acdc', not {method!r}"
        raise ValueError(msg)
    import torch

    t0 = time.perf_counter()
    st = _Setup(model, clean, corrupted, metric, max_bytes)
    run = st.runner
    how = seed if method == "acdc" else method
    n_cand = run.n_edges if max_candidates is None else min(run.n_edges, int(max_candidates))
    total = 1 + (n_cand + 1 if method == "acdc" else 0)
    with progress_reporter(progress, total, f"circuit ({method})") as report:
        report(0)
        scores = eap_scores(run, st.clean, st.metric, st.clean_acts, st.corr_acts,
                            ig_steps=ig_steps if how == "eap-ig" else None)
        report(1)
        meta: dict[str, Any] = {"n_prompts": int(st.clean.shape[0]), "n_pos": int(st.clean.shape[1])}
        kept = torch.ones(run.n_edges, dtype=torch.bool)
        effects = None
        if method == "acdc":
            gap = abs(st.clean_metric - st.corrupted_metric)
            thr = 0.01 * gap if threshold is None else float(threshold)
            kept, effects, stats = _acdc.prune(run, st.clean, st.metric, st.ref(ablation), scores, thr,
                                               max_candidates=n_cand, chunk=chunk, report=lambda d: report(1 + d))
    if method == "acdc":
        meta.update({"threshold": thr, "seed": seed, "max_candidates": n_cand, "ablation": ablation,
                     "rounds": stats.rounds, "edges_measured": stats.measured})
    if method == "eap-ig" or (method == "acdc" and seed == "eap-ig"):
        meta["ig_steps"] = ig_steps
    c = run.counts
    meta.update({"forward_passes": c.forward_passes, "backward_passes": c.backward_passes, "calls": c.calls,
                 "seconds": time.perf_counter() - t0})
    ctx = CircuitContext(model, st.clean, st.corrupted, st.metric, ablation, max_bytes, _setup=st)
    return CircuitGraph(run.ix, scores, kept, method, st.metric.name, st.clean_metric, st.corrupted_metric,
                        effects, meta, ctx)


def _kept_mask(graph_or_edges: CircuitGraph | Sequence[str], index: EdgeIndex) -> torch.Tensor:
    import torch

    if isinstance(graph_or_edges, CircuitGraph):
        return graph_or_edges.kept.clone()
    kept = torch.zeros(len(index.edges), dtype=torch.bool)
    for name in graph_or_edges:
        kept[index.find(name)] = True
    return kept


def faithfulness(model: Model, clean: TokensLike, corrupted: TokensLike, metric: MetricLike,
                 circuit: CircuitGraph | Sequence[str], *, ablation: _faith.Ablation = "resample",
                 max_bytes: int = 256 * 2**20) -> dict[str, float]:
    """Run with every edge outside ``circuit`` (a graph's kept edges, or edge names) ablated.

    Returns ``{"fraction", "circuit_metric", "clean_metric", "empty_metric", "n_edges"}``."""
    return _faithfulness(_Setup(model, clean, corrupted, metric, max_bytes), circuit, ablation)


def faithfulness_in_context(ctx: CircuitContext, circuit: CircuitGraph | Sequence[str]) -> dict[str, float]:
    """:func:`faithfulness` on the model, prompts, metric and ablation of ``ctx`` (its captures are cached)."""
    if ctx._setup is None:
        ctx._setup = _Setup(ctx.model, ctx.clean, ctx.corrupted, ctx.metric, ctx.max_bytes)
    return _faithfulness(ctx._setup, circuit, ctx.ablation)


def _faithfulness(st: _Setup, circuit: CircuitGraph | Sequence[str], ablation: str) -> dict[str, float]:
    kept = _kept_mask(circuit, st.runner.ix)
    vals, c, emp = _faith.measure(st.runner, st.clean, st.metric, st.ref(ablation), kept[None])
    v = float(vals[0])
    return {"fraction": _faith.fraction(v, c, emp), "circuit_metric": v, "clean_metric": c, "empty_metric": emp,
            "n_edges": int(kept.sum())}


def faithfulness_curve(model: Model, clean: TokensLike, corrupted: TokensLike, metric: MetricLike,
                       graph: CircuitGraph, n_edges: Sequence[int] | None = None, *,
                       ablation: _faith.Ablation = "resample", max_bytes: int = 256 * 2**20,
                       progress: bool | Progress | None = None) -> FaithfulnessCurve:
    """Faithfulness of the top-``n`` edges of ``graph`` (by ``|score|``) for each ``n`` in ``n_edges``.

    ``progress`` as in :func:`circuit`; units: ablated runs (one per point, plus the clean and empty runs)."""
    st = _Setup(model, clean, corrupted, metric, max_bytes)
    pts = _faith.default_points(st.runner.n_edges) if n_edges is None else [int(n) for n in n_edges]
    with progress_reporter(progress, len(pts) + 2, "faithfulness curve") as report:
        return _faith.curve(st.runner, st.clean, st.metric, st.ref(ablation), graph.scores, pts, ablation, report)


def edge_patch(model: Model, clean: TokensLike, corrupted: TokensLike, metric: MetricLike,
               edges: Sequence[str] | None = None, *, max_bytes: int = 256 * 2**20,
               progress: bool | Progress | None = None) -> dict[str, float]:
    """Exact edge patching: ``M(clean) - M(clean with one edge's sender contribution corrupted)`` per edge
    (default: every edge), all edges batched. The brute-force reference for EAP scores.

    ``progress`` as in :func:`circuit`; units: edges patched."""
    import torch

    st = _Setup(model, clean, corrupted, metric, max_bytes)
    ix = st.runner.ix
    ids = list(range(len(ix.edges))) if edges is None else [ix.find(n) for n in edges]
    masks = torch.zeros(len(ids), len(ix.edges), dtype=torch.bool)
    for i, e in enumerate(ids):
        masks[i, e] = True
    with progress_reporter(progress, len(ids), "edge patching") as report:
        vals = st.runner.ablated_metric(st.clean, st.metric, st.ref("resample"), masks, report)
    return {ix.edge_name(e): st.clean_metric - float(v) for e, v in zip(ids, vals, strict=True)}
