"""The computational graph of a transformer, split into edges (Syed et al. 2023; Conmy et al. 2023).

Nodes: the input embeddings (token + position, ``"input"``), every attention head (``"L1H2"``), every
MLP (``"MLP0"``) and the logits. A head reads the residual stream three times, so it has three input
*targets*: ``"L1H2.q"``, ``"L1H2.k"``, ``"L1H2.v"``; an MLP has one (``"MLP0"``) and the logits one.

Every receiver input is the sum of the outputs of the nodes upstream of it (the residual stream
decomposition: embeddings + every earlier head's ``hook_result`` + every earlier MLP's output, plus
constant biases), so an edge is one (sender, receiver input) pair and one term of that sum.

Senders are numbered in forward order (input, layer 0's heads, layer 0's MLP, layer 1's heads, ...), so
the senders upstream of any receiver are a prefix of that order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from interp_widget.analysis.metrics import Metric
    from interp_widget.models.model import Model
    from interp_widget.tracing.base import ModelSpec


@dataclass(frozen=True)
class Node:
    """A node of the graph: ``kind`` is ``"input"``, ``"head"``, ``"mlp"`` or ``"logits"``."""

    name: str
    kind: str
    layer: int  # -1 for the input, n_layers for the logits
    head: int | None = None


@dataclass(frozen=True)
class Receiver:
    """One input of a node: a head's q/k/v (``target``), an MLP's input or the logits (``target`` "")."""

    node: str
    target: str
    layer: int
    head: int | None
    n_upstream: int  # senders 0..n_upstream-1 feed it

    @property
    def name(self) -> str:
        return f"{self.node}.{self.target}" if self.target else self.node


@dataclass
class EdgeIndex:
    """Every node, receiver and edge of a model of a given shape, in a fixed order."""

    n_layers: int
    n_heads: int
    has_mlp: bool
    senders: list[Node] = field(default_factory=list)
    receivers: list[Receiver] = field(default_factory=list)
    #: edge e = (sender index, receiver index)
    edges: list[tuple[int, int]] = field(default_factory=list)

    @classmethod
    def build(cls, n_layers: int, n_heads: int, has_mlp: bool) -> EdgeIndex:
        ix = cls(n_layers, n_heads, has_mlp)
        ix.senders.append(Node("input", "input", -1))
        for layer in range(n_layers):
            for t in ("q", "k", "v"):
                for h in range(n_heads):
                    ix.receivers.append(Receiver(f"L{layer}H{h}", t, layer, h, len(ix.senders)))
            ix.senders.extend(Node(f"L{layer}H{h}", "head", layer, h) for h in range(n_heads))
            if has_mlp:
                ix.receivers.append(Receiver(f"MLP{layer}", "", layer, None, len(ix.senders)))
                ix.senders.append(Node(f"MLP{layer}", "mlp", layer))
        ix.receivers.append(Receiver("logits", "", n_layers, None, len(ix.senders)))
        ix.edges = [(s, r) for r, rec in enumerate(ix.receivers) for s in range(rec.n_upstream)]
        return ix

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> EdgeIndex:
        return cls.build(spec.n_layers, spec.n_heads, spec.d_mlp is not None)

    @property
    def nodes(self) -> list[Node]:
        return [*self.senders, Node("logits", "logits", self.n_layers)]

    def edge_name(self, e: int) -> str:
        s, r = self.edges[e]
        return f"{self.senders[s].name}->{self.receivers[r].name}"

    def find(self, name: str) -> int:
        """The index of an edge named ``"L0H0->L1H2.k"``."""
        if not hasattr(self, "_by_name"):
            self._by_name = {self.edge_name(e): e for e in range(len(self.edges))}
        if name not in self._by_name:
            msg = (f"no edge {name!r} in this graph: edges are 'SENDER->RECEIVER' with senders input, LxHy, MLPx "
                   f"and receivers LxHy.q/.k/.v, MLPx, logits (a receiver must be downstream of its sender)")
            raise KeyError(msg)
        return self._by_name[name]


@dataclass
class CircuitContext:
    """What a graph was discovered on, so that sub-circuits can be tested later without restating it.

    ``metric`` is already bound (token strings resolved); ``ablation`` is the ablation used for
    faithfulness (``"resample"`` or ``"mean"``). The captured activations are cached on first use."""

    model: Model
    clean: torch.Tensor
    corrupted: torch.Tensor
    metric: Metric
    ablation: str = "resample"
    max_bytes: int = 256 * 2**20
    _setup: Any = field(default=None, repr=False, compare=False)


@dataclass
class CircuitGraph:
    """A scored edge graph: the result of :func:`~interp_widget.analysis.circuits.circuit`.

    ``scores[e]``: the estimated (EAP, EAP-IG) or measured (ACDC) drop of the metric when edge ``e``'s
    sender contribution to its receiver is replaced by its corrupted value (positive: the edge supports
    the clean behaviour). ``kept[e]``: whether the edge is in the circuit.
    ``effects[e]``: for ACDC, the measured metric change when the edge is removed from the final circuit
    (NaN where not measured).
    """

    index: EdgeIndex
    scores: torch.Tensor
    kept: torch.Tensor
    method: str
    metric_name: str
    clean_metric: float
    corrupted_metric: float
    effects: torch.Tensor | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    #: the model, prompts, metric and ablation it was discovered on (None for a graph built by hand)
    context: CircuitContext | None = field(default=None, repr=False, compare=False)

    # --- views ---------------------------------------------------------------------
    @property
    def n_edges(self) -> int:
        return len(self.index.edges)

    @property
    def edges(self) -> list[dict[str, Any]]:
        """The kept edges, strongest first: ``{"sender", "receiver", "target", "score"}``."""
        ix = self.index
        out = []
        for e in self.kept.nonzero().flatten().tolist():
            s, r = ix.edges[e]
            rec = ix.receivers[r]
            out.append({"name": ix.edge_name(e), "sender": ix.senders[s].name, "receiver": rec.node,
                        "target": rec.target, "score": float(self.scores[e])})
        return sorted(out, key=lambda d: -abs(d["score"]))

    def edge_names(self) -> list[str]:
        return [d["name"] for d in self.edges]

    def score(self, name: str) -> float:
        return float(self.scores[self.index.find(name)])

    def __contains__(self, name: str) -> bool:
        return bool(self.kept[self.index.find(name)])

    def ranking(self) -> torch.Tensor:
        """Edge indices by decreasing ``|score|``."""
        return self.scores.abs().argsort(descending=True, stable=True)

    # --- pruning ---------------------------------------------------------------------
    def _with(self, kept: torch.Tensor, how: str) -> CircuitGraph:
        return CircuitGraph(self.index, self.scores, kept & self.kept, self.method, self.metric_name,
                            self.clean_metric, self.corrupted_metric, self.effects, {**self.meta, "pruned": how},
                            self.context)

    def top(self, k: int) -> CircuitGraph:
        """The ``k`` kept edges with the largest ``|score|``."""
        import torch

        if k < 0:
            msg = f"top(k) needs k >= 0, not {k}"
            raise ValueError(msg)
        masked = torch.where(self.kept, self.scores.abs(), torch.full_like(self.scores, -1.0))
        order = masked.argsort(descending=True, stable=True)[: min(k, int(self.kept.sum()))]
        kept = torch.zeros_like(self.kept)
        kept[order] = True
        return self._with(kept, f"top {k}")

    def prune(self, threshold: float) -> CircuitGraph:
        """The kept edges with ``|score| >= threshold``."""
        return self._with(self.scores.abs() >= threshold, f"|score| >= {threshold}")

    # --- testing a sub-circuit ---------------------------------------------------------
    def faithfulness(self, edges: Sequence[str] | None = None) -> dict[str, float]:
        """Faithfulness of ``edges`` (edge names; default: this graph's kept edges) on the prompts, metric
        and ablation the graph was discovered with; the same dict as
        :func:`~interp_widget.analysis.circuits.faithfulness`."""
        if self.context is None:
            msg = ("this CircuitGraph has no context (model, prompts, metric): it was not made by circuit(). "
                   "Call interp_widget.analysis.circuits.faithfulness(model, clean, corrupted, metric, edges)")
            raise ValueError(msg)
        from interp_widget.analysis.circuits import faithfulness_in_context

        return faithfulness_in_context(self.context, self if edges is None else edges)

    # --- export ---------------------------------------------------------------------
    def nodes_in_circuit(self) -> list[str]:
        ix = self.index
        used: set[str] = set()
        for e in self.kept.nonzero().flatten().tolist():
            s, r = ix.edges[e]
            used.add(ix.senders[s].name)
            used.add(ix.receivers[r].node)
        return [n.name for n in ix.nodes if n.name in used]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form: every node and every edge (with ``kept``), plus the run's metrics."""
        ix = self.index
        nodes = [{"name": n.name, "kind": n.kind, "layer": n.layer, "head": n.head} for n in ix.nodes]
        edges = []
        for e, (s, r) in enumerate(ix.edges):
            rec = ix.receivers[r]
            d: dict[str, Any] = {"sender": ix.senders[s].name, "receiver": rec.node, "target": rec.target,
                                 "score": float(self.scores[e]), "kept": bool(self.kept[e])}
            if self.effects is not None and not bool(self.effects[e].isnan()):
                d["effect"] = float(self.effects[e])
            edges.append(d)
        return {"method": self.method, "metric": self.metric_name, "clean_metric": self.clean_metric,
                "corrupted_metric": self.corrupted_metric, "n_layers": ix.n_layers, "n_heads": ix.n_heads,
                "nodes": nodes, "edges": edges, "meta": dict(self.meta)}

    def __repr__(self) -> str:
        metric = self.metric_name if len(self.metric_name) <= 48 else self.metric_name[:45] + "..."
        return (f"<CircuitGraph {self.method}: {int(self.kept.sum())} of {self.n_edges} edges kept, "
                f"{len(self.nodes_in_circuit())} nodes; {metric} clean {self.clean_metric:.4g}, "
                f"corrupted {self.corrupted_metric:.4g}>")
