"""The circuit graph widget: a :class:`~interp_widget.analysis.circuits.CircuitGraph` as a layered graph.

>>> g = iw.circuit(model, clean, corrupted, metric)      # doctest: +SKIP
>>> g                                                     # displays as this widget  # doctest: +SKIP
>>> w = iw.circuit_widget(g, top_k=50); w                 # doctest: +SKIP

The input at the bottom, the logits at the top, one band per layer (dagre lays out each row); edges
coloured by the sign of their score and sized by ``|score|``. The threshold slider and the top-k box
prune in the browser (nothing goes to the kernel); at most ``max_drawn`` edges are drawn, the strongest.
Clicking a node lists its edges; a head's detail asks the kernel for its attention pattern on the
clean prompt (``open_head``). Shift-click selects nodes; "faithfulness of selection" asks the kernel
(``faithfulness``) to run the model with every edge ablated except the kept edges among the selected
nodes (the input and the logits always count as selected). Zoom (buttons, ctrl/cmd + wheel), drag-to-pan and
SVG / PNG export (at the graph's own size) happen in the browser.

The graph travels as four binary arrays (~9 bytes per edge: a GPT-2-small graph's 32k edges are
~290 kB). Importing this module imports no torch.
"""

from __future__ import annotations

import html
import logging
import threading
from typing import TYPE_CHECKING, Any

import anywidget
import numpy as np
import traitlets as t

from interp_widget.errors import InputMismatchError
from interp_widget.schema import GetPatternRequest, PatternReply, encode
from interp_widget.schema.circuit import (
    CircuitEnvelope,
    CircuitGraphData,
    CircuitNode,
    CircuitState,
    FaithfulnessReply,
    FaithfulnessRequest,
    StaticCircuit,
)
from interp_widget.schema.patching import HeadPatternsReply, OpenHeadRequest
from interp_widget.server.registry import track
from interp_widget.widgets._commands import reply_unknown_commands, safe_command
from interp_widget.widgets._display import widget_bundle
from interp_widget.widgets._static import STATIC_DIR, add_snapshot, b64_tree, bundle_source, json_for_script

if TYPE_CHECKING:
    from interp_widget.widgets._patterns import AttentionData

log = logging.getLogger(__name__)

BUNDLE = STATIC_DIR / "circuit.js"
_MISSING_ESM = """
export default { render({ el }) {
  el.textContent = "interp-widget: the front end is not built (interp_widget/widgets/static/circuit.js is missing). "
    + "Run `npm install && npm run build` in the source checkout, or install the wheel.";
} };
"""
COMMANDS = {"faithfulness", "open_head", "get_pattern"}
_TARGET_CODE = {"": 0, "q": 1, "k": 2, "v": 3}
_command = safe_command(envelope_model=CircuitEnvelope)


def _numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        return np.asarray(x.detach().cpu().numpy())
    return np.asarray(x)


def graph_arrays(graph: Any) -> tuple[list[CircuitNode], dict[str, np.ndarray]]:
    """The nodes and the kept edges of ``graph`` sorted by decreasing ``|score|`` (stable): ``order``
    (edge indices in the graph), ``senders`` / ``receivers`` (node indices), ``targets`` (0 whole node,
    1 q, 2 k, 3 v) and ``scores`` (float32)."""
    ix = graph.index
    nodes = [CircuitNode(name=n.name, kind=n.kind, layer=n.layer, head=n.head) for n in ix.nodes]
    if len(nodes) > 65535:
        msg = f"the graph has {len(nodes)} nodes; the view takes at most 65535"
        raise ValueError(msg)
    pos = {n.name: i for i, n in enumerate(nodes)}
    rec_node = np.array([pos[r.node] for r in ix.receivers], dtype=np.int64)
    rec_target = np.array([_TARGET_CODE[r.target] for r in ix.receivers], dtype=np.int64)
    edges = np.asarray(ix.edges, dtype=np.int64).reshape(-1, 2)
    scores = _numpy(graph.scores).astype(np.float32).reshape(-1)
    kept = _numpy(graph.kept).astype(bool).reshape(-1)
    if scores.shape[0] != edges.shape[0] or kept.shape[0] != edges.shape[0]:
        msg = f"the graph has {edges.shape[0]} edges but {scores.shape[0]} scores and {kept.shape[0]} kept flags"
        raise ValueError(msg)
    idx = np.flatnonzero(kept)
    order = idx[np.argsort(-np.abs(scores[idx]), kind="stable")]
    # senders are numbered in forward order: sender s is node s (input, heads and MLPs; logits last)
    return nodes, {
        "order": order,
        "senders": edges[order, 0].astype(np.uint16),
        "receivers": rec_node[edges[order, 1]].astype(np.uint16),
        "targets": rec_target[edges[order, 1]].astype(np.uint8),
        "scores": scores[order],
    }


def graph_data(graph: Any, *, title: str | None = None, limit: int | None = None,
               arrays: tuple[list[CircuitNode], dict[str, np.ndarray]] | None = None) -> CircuitGraphData:
    """The :class:`CircuitGraphData` of a CircuitGraph (its kept edges; the strongest ``limit`` if given);
    ``arrays``: :func:`graph_arrays` of it, if already computed."""
    nodes, a = arrays if arrays is not None else graph_arrays(graph)
    n = len(a["order"]) if limit is None else min(limit, len(a["order"]))
    meta = dict(getattr(graph, "meta", {}) or {})
    notes = [f"{meta[k]} {k.replace('_', ' ')}" for k in ("forward_passes", "backward_passes") if k in meta]
    if "pruned" in meta:
        notes.append(f"pruned: {meta['pruned']}")
    if n < len(a["order"]):
        notes.append(f"the strongest {n} of {len(a['order'])} kept edges")
    ix = graph.index
    return CircuitGraphData(
        title=title or f"circuit · {graph.method} · {graph.metric_name}",
        method=str(graph.method), metric=str(graph.metric_name),
        clean_metric=_finite(graph.clean_metric), corrupted_metric=_finite(graph.corrupted_metric),
        n_layers=ix.n_layers, n_heads=ix.n_heads, has_mlp=bool(ix.has_mlp), nodes=nodes,
        n_edges_total=len(ix.edges),
        senders=encode(a["senders"][:n]), receivers=encode(a["receivers"][:n]),
        targets=encode(a["targets"][:n]), scores=encode(a["scores"][:n]), note="; ".join(notes),
    )


def _finite(v: Any) -> float | None:
    f = None if v is None else float(v)
    return f if f is not None and np.isfinite(f) else None


class CircuitWidget(anywidget.AnyWidget):
    """A circuit graph; see the module docstring. Build it with :func:`circuit_widget`.

    ``threshold`` / ``top_k`` / ``max_drawn`` set the view's pruning from Python (the view's own controls
    do not write back); :meth:`kept_edges` applies a pruning here; :attr:`last_faithfulness` is the last
    reply of the ``faithfulness`` command.
    """

    _esm = BUNDLE if BUNDLE.is_file() else _MISSING_ESM

    graph = t.Dict().tag(sync=True)
    threshold = t.Float(0.0).tag(sync=True)
    top_k = t.Int(200).tag(sync=True)
    max_drawn = t.Int(2000).tag(sync=True)
    has_context = t.Bool(False).tag(sync=True)

    def __init__(self, graph: Any, *, threshold: float = 0.0, top_k: int = 200, max_drawn: int = 2000,
                 title: str | None = None, context: dict[str, Any] | None = None, snapshot: bool = True,
                 snapshot_edges: int = 5000) -> None:
        arrays = graph_arrays(graph)
        data = graph_data(graph, title=title, arrays=arrays)
        self._graph = graph
        self._order = arrays[1]["order"]
        self._context = dict(context) if context else None
        if self._context is not None:
            missing = {"model", "clean", "corrupted", "metric"} - set(self._context)
            if missing:
                msg = f"context needs model, clean, corrupted and metric; missing: {', '.join(sorted(missing))}"
                raise ValueError(msg)
        state = CircuitState(graph=data, threshold=threshold, top_k=top_k, max_drawn=max_drawn,
                             has_context=self._model_and_prompts() is not None)
        super().__init__(graph=state.graph.model_dump(), threshold=state.threshold, top_k=state.top_k,
                         max_drawn=state.max_drawn, has_context=state.has_context)
        self._title = title
        self.snapshot = snapshot
        self.snapshot_edges = snapshot_edges
        self.last_faithfulness: dict[str, Any] | None = None
        self._attn: AttentionData | None = None
        self._attn_lock = threading.Lock()
        reply_unknown_commands(self, COMMANDS)
        track(self, "view")

    @t.validate("threshold")
    def _valid_threshold(self, proposal: dict[str, Any]) -> float:
        v = float(proposal["value"])
        if not v >= 0:
            msg = f"threshold must be >= 0 (it applies to |score|), not {v}"
            raise t.TraitError(msg)
        return v

    @t.validate("top_k", "max_drawn")
    def _valid_counts(self, proposal: dict[str, Any]) -> int:
        v = int(proposal["value"])
        name = proposal["trait"].name
        if v < (1 if name == "max_drawn" else 0):
            msg = f"{name} must be >= {1 if name == 'max_drawn' else 0} (top_k 0: no limit), not {v}"
            raise t.TraitError(msg)
        return v

    # --- Python API -------------------------------------------------------------------------------
    @property
    def circuit(self) -> Any:
        """The CircuitGraph on screen."""
        return self._graph

    def kept_edges(self, threshold: float | None = None, top_k: int | None = None) -> list[str]:
        """Names of the edges the view keeps for a pruning (default: the traits), strongest first."""
        thr = self.threshold if threshold is None else float(threshold)
        k = self.top_k if top_k is None else int(top_k)
        scores = np.abs(decode_scores(self.graph)).astype(np.float64)
        n = int(np.count_nonzero(scores >= thr))  # a prefix: scores are sorted by |score|
        n = min(n, k) if k > 0 else n
        return [self._graph.index.edge_name(int(e)) for e in self._order[:n]]

    def faithfulness_of(self, nodes: list[str], threshold: float | None = None,
                        top_k: int | None = None) -> dict[str, Any]:
        """What the view's "faithfulness of selection" computes for ``nodes`` and a pruning."""
        names = set(nodes) | {"input", "logits"}
        kept = self.kept_edges(threshold, top_k)
        edges = [e for e in kept if _ends(e)[0] in names and _ends(e)[1] in names]
        return self._measure(edges, sorted(names))

    # --- commands -----------------------------------------------------------------------------------
    @_command
    def faithfulness(self, msg: dict[str, Any], buffers: list[bytes]) -> FaithfulnessReply:
        """Faithfulness of the sub-circuit the view sends (edge positions among the selected nodes)."""
        del buffers
        req = FaithfulnessRequest.model_validate(msg)
        known = {n["name"] for n in self.graph["nodes"]}
        bad = [n for n in req.nodes if n not in known]
        if bad:
            msg_ = f"no node {bad[0]!r} in this graph"
            raise InputMismatchError(msg_)
        n_shipped = len(self._order)
        names = set(req.nodes)
        edges = []
        for p in req.edges:
            if not 0 <= p < n_shipped:
                msg_ = f"edge position {p} is out of range: the view has {n_shipped} edges (0..{n_shipped - 1})"
                raise InputMismatchError(msg_)
            name = self._graph.index.edge_name(int(self._order[p]))
            s, r = _ends(name)
            if s not in names or r not in names:
                msg_ = f"edge {name} does not join two selected nodes"
                raise InputMismatchError(msg_)
            edges.append(name)
        out = self._measure(edges, req.nodes)
        return FaithfulnessReply.model_validate(out)

    @_command
    def open_head(self, msg: dict[str, Any], buffers: list[bytes]) -> HeadPatternsReply:
        """A head's attention pattern on the (first) clean prompt the graph was discovered on."""
        del buffers
        req = OpenHeadRequest.model_validate(msg)
        data = self._attention_data()
        data.check_index(layer=req.layer, head=req.head)
        size = min(len(data.tokens[0]), req.window_size)
        return HeadPatternsReply(model_name=data.model_name, n_layers=data.n_layers, n_heads=data.n_heads,
                                 layer=req.layer, head=req.head, names=["clean"], prompts=[data.prompt_data(0, 32)],
                                 windows=[data.window(0, req.layer, req.head, 0, size, 0, size)])

    @_command
    def get_pattern(self, msg: dict[str, Any], buffers: list[bytes]) -> PatternReply:
        del buffers
        req = GetPatternRequest.model_validate(msg)
        data = self._attention_data()
        return PatternReply(window=data.window(req.prompt, req.layer, req.head, req.q0, req.q1, req.k0, req.k1,
                                               max_size=req.max_size, precision=req.precision))

    # --- the kernel side ----------------------------------------------------------------------------
    def _model_and_prompts(self) -> tuple[Any, Any] | None:
        ctx = getattr(self._graph, "context", None)
        if ctx is not None:
            return ctx.model, ctx.clean
        if self._context is not None:
            return self._context["model"], self._context["clean"]
        return None

    def _measure(self, edges: list[str], nodes: list[str]) -> dict[str, Any]:
        if getattr(self._graph, "context", None) is not None:
            res = self._graph.faithfulness(edges)
            ablation = str(self._graph.context.ablation)
        elif self._context is not None:
            from interp_widget.analysis.circuits import faithfulness

            c = self._context
            ablation = str(c.get("ablation", "resample"))
            res = faithfulness(c["model"], c["clean"], c["corrupted"], c["metric"], edges, ablation=ablation)  # type: ignore[arg-type]
        else:
            msg = ("this graph has no model context (model, prompts, metric): make it with iw.circuit(...), or pass "
                   "context={'model': ..., 'clean': ..., 'corrupted': ..., 'metric': ...} to circuit_widget")
            raise InputMismatchError(msg)
        frac = res.get("fraction")
        out = {"fraction": float(frac) if frac is not None and np.isfinite(frac) else None,
               "circuit_metric": float(res["circuit_metric"]), "clean_metric": float(res["clean_metric"]),
               "empty_metric": float(res["empty_metric"]), "n_edges": int(res.get("n_edges", len(edges))),
               "nodes": list(nodes), "ablation": ablation}
        self.last_faithfulness = {**out, "edges": list(edges)}
        return out

    def _attention_data(self) -> AttentionData:
        with self._attn_lock:
            if self._attn is not None:
                return self._attn
        mp = self._model_and_prompts()
        if mp is None:
            msg = "this graph has no model context: attention patterns need the model and the clean prompt"
            raise InputMismatchError(msg)
        model, clean = mp
        from interp_widget.widgets._patterns import collect

        first = clean if isinstance(clean, str) else clean[0]
        data = collect(model, [first])
        with self._attn_lock:
            self._attn = data
        return data

    # --- state, snapshot ------------------------------------------------------------------------------
    def state_model(self) -> CircuitState:
        return CircuitState.model_validate({name: getattr(self, name) for name in CircuitState.model_fields})

    def snapshot_html(self) -> str:
        """A self-contained HTML rendering (the strongest ``snapshot_edges`` edges; no kernel, no network)."""
        state = self.state_model()
        if len(self._order) > self.snapshot_edges:
            state = state.model_copy(update={"graph": graph_data(self._graph, title=self._title,
                                                                  limit=self.snapshot_edges)})
        return snapshot_html(state)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return add_snapshot(super()._repr_mimebundle_(**kwargs), self.snapshot, self.snapshot_html)

    def __repr__(self) -> str:
        g = self.graph
        return (f"<CircuitWidget {g.get('title', '')!r}: {len(g.get('nodes', []))} nodes, "
                f"{len(self._order)} edges; threshold {self.threshold:g}, top_k {self.top_k}>")


def _ends(edge_name: str) -> tuple[str, str]:
    """(sender, receiver node) of ``"L0H1->L1H2.k"``."""
    s, r = edge_name.split("->")
    return s, r.split(".")[0]


def decode_scores(graph: dict[str, Any]) -> np.ndarray:
    from interp_widget.schema import decode

    return decode(graph["scores"])


# --- static form ----------------------------------------------------------------------------------------
def fallback_svg(state: CircuitState, *, max_edges: int = 150) -> str:
    """A script-free SVG: nodes on a grid (a row per layer, input at the bottom), the strongest edges."""
    from interp_widget.schema import decode

    g = state.graph
    cell, row = 48, 56
    n_rows = g.n_layers + 2
    width = (g.n_heads + 1) * cell + 70
    height = n_rows * row + 10

    def pos(i: int) -> tuple[float, float]:
        n = g.nodes[i]
        band = 0 if n.kind == "input" else g.n_layers + 1 if n.kind == "logits" else n.layer + 1
        col = (g.n_heads + 1) / 2 - 0.5 if n.kind in ("input", "logits") else g.n_heads if n.kind == "mlp" else n.head or 0
        return 70 + col * cell + cell / 2, height - 10 - (band + 0.5) * row

    snd, rcv, sc = (decode(g.senders), decode(g.receivers), decode(g.scores))
    k = min(len(sc), max_edges)
    top = float(np.abs(sc[:k]).max()) if k else 1.0
    parts = []
    for e in range(k - 1, -1, -1):
        (x1, y1), (x2, y2) = pos(int(snd[e])), pos(int(rcv[e]))
        w = 0.5 + 3.5 * abs(float(sc[e])) / (top or 1.0)
        parts.append(f'<line x1="{x1:.0f}" y1="{y1:.0f}" x2="{x2:.0f}" y2="{y2:.0f}" '
                     f'stroke="{"#2166ac" if sc[e] >= 0 else "#b2182b"}" stroke-width="{w:.1f}" stroke-opacity="0.6"/>')
    for i, n in enumerate(g.nodes):
        x, y = pos(i)
        parts.append(f'<rect x="{x - 21:.0f}" y="{y - 9:.0f}" width="42" height="18" fill="#fff" stroke="#888"/>'
                     f'<text x="{x:.0f}" y="{y + 4:.0f}" font-size="9" text-anchor="middle">{html.escape(n.name)}</text>')
    caption = html.escape(f"{g.title}: {len(g.nodes)} nodes, the strongest {k} of {len(sc)} edges "
                          "(blue: positive score, red: negative)")
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
            f'role="img" aria-label="{caption}">{"".join(parts)}</svg><div class="iw-fallback-caption">{caption}</div>')


def snapshot_html(state: CircuitState) -> str:
    """Self-contained HTML of a circuit widget's state (the inlined bundle draws it; no network)."""
    doc = StaticCircuit(state=state)
    src = bundle_source(BUNDLE)
    return (
        '<div class="iw-static" data-iw-static="circuit">'
        f'<div class="iw-fallback">{fallback_svg(state)}</div>'
        f'<script type="application/json" class="iw-static-data">{json_for_script(b64_tree(doc.model_dump()))}</script>'
        "</div>"
        f'<script type="module">{src}</script>'
    )


# --- display ----------------------------------------------------------------------------------------------
def circuit_widget(graph: Any, *, threshold: float = 0.0, top_k: int = 200, max_drawn: int = 2000,
                   title: str | None = None, context: dict[str, Any] | None = None,
                   snapshot: bool = True) -> CircuitWidget:
    """The circuit graph widget for ``graph`` (a :class:`~interp_widget.analysis.circuits.CircuitGraph`).

    ``threshold`` / ``top_k``: the initial pruning (edges with ``|score| >= threshold``, then the
    ``top_k`` strongest; 0: all); ``max_drawn``: the most edges drawn at once. ``context``: for a graph
    not made by :func:`~interp_widget.circuit`, ``{"model", "clean", "corrupted", "metric"}`` (and
    optionally ``"ablation"``) so that the faithfulness and attention-pattern commands can run.
    """
    if not (hasattr(graph, "index") and hasattr(graph, "scores") and hasattr(graph, "kept")):
        msg = f"circuit_widget needs a CircuitGraph (from iw.circuit), not a {type(graph).__name__}"
        raise TypeError(msg)
    return CircuitWidget(graph, threshold=threshold, top_k=top_k, max_drawn=max_drawn, title=title,
                         context=context, snapshot=snapshot)


def circuit_mimebundle(result: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """What a CircuitGraph displays as: the live widget, a static snapshot, and its repr as text."""
    return widget_bundle(circuit_widget(result), result)
