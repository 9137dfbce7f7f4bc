"""Wire models of the circuit-graph widget: the graph as the view draws it, its commands and replies.

A :class:`CircuitGraphData` is a :class:`~interp_widget.analysis.circuits.CircuitGraph` flattened for
the browser: the node list (input, heads, MLPs, logits) and the graph's kept edges as four binary
arrays (sender node, receiver node, receiver input, score), sorted by decreasing ``|score|``. A
GPT-2-small-shaped graph has ~32k edges: ~290 kB of buffers, no JSON number lists.

Commands: ``faithfulness`` (:class:`FaithfulnessRequest` -> :class:`FaithfulnessReply`), ``open_head``
(the patching widget's :class:`OpenHeadRequest` -> :class:`HeadPatternsReply`) and the attention
view's ``get_pattern``. Pruning (threshold, top-k) happens in the browser and sends nothing.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from interp_widget.schema.attention import ErrorReply, PatternReply
from interp_widget.schema.patching import HeadPatternsReply
from interp_widget.schema.tensor import TensorPayload

NodeKind = Literal["input", "head", "mlp", "logits"]
#: receiver input of an edge, by its code in ``CircuitGraphData.targets``
TARGETS: tuple[str, ...] = ("", "q", "k", "v")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)


class CircuitNode(_Model):
    name: str = Field(description="'input', 'L1H2', 'MLP0' or 'logits'")
    kind: NodeKind
    layer: int = Field(description="-1 for the input, n_layers for the logits")
    head: int | None = None


class CircuitGraphData(_Model):
    """A scored edge graph as the circuit view draws it.

    Edge ``i`` goes from ``nodes[senders[i]]`` to input ``TARGETS[targets[i]]`` (``""``: the whole node,
    else a head's ``q`` / ``k`` / ``v``) of ``nodes[receivers[i]]`` with score ``scores[i]``; edges are
    sorted by decreasing ``|score|``, so the top-k edges are a prefix.
    """

    title: str
    method: str = Field(description="eap, eap-ig, acdc, or what made the graph")
    metric: str
    clean_metric: float | None = None
    corrupted_metric: float | None = None
    n_layers: int = Field(ge=0)
    n_heads: int = Field(ge=0)
    has_mlp: bool
    nodes: list[CircuitNode]
    n_edges_total: int = Field(ge=0, description="edges of the model's full graph (kept or not)")
    senders: TensorPayload = Field(description="uint16 [E]: sender node index")
    receivers: TensorPayload = Field(description="uint16 [E]: receiver node index")
    targets: TensorPayload = Field(description="uint8 [E]: 0 whole node, 1 q, 2 k, 3 v")
    scores: TensorPayload = Field(description="float32 [E]")
    note: str = Field(default="", description="one line of context (forward passes, pruning, ...)")


class CircuitState(_Model):
    """The circuit widget's synced state. ``threshold`` / ``top_k`` are the initial pruning (Python may
    change them); moving the controls in the browser prunes there and does not write them back."""

    graph: CircuitGraphData
    threshold: float = Field(ge=0, description="draw edges with |score| >= threshold")
    top_k: int = Field(ge=0, description="... and among those only the top_k by |score| (0: no limit)")
    max_drawn: int = Field(ge=1, description="the most edges drawn at once (the strongest first)")
    has_context: bool = Field(description="the kernel can run the model: faithfulness and attention patterns")


class FaithfulnessRequest(_Model):
    """Command ``faithfulness``: the sub-circuit made of ``edges`` (positions in the shipped edge arrays),
    which the view takes among ``nodes`` (every edge must join two of them)."""

    nodes: list[str] = Field(min_length=1)
    edges: list[int] = Field(description="positions in CircuitGraphData's edge arrays")


class FaithfulnessReply(_Model):
    ok: Literal[True] = True
    fraction: float | None = Field(description="(circuit - empty) / (clean - empty); None when undefined")
    circuit_metric: float
    clean_metric: float
    empty_metric: float
    n_edges: int
    nodes: list[str]
    ablation: str


class CircuitEnvelope(_Model):
    """The ``response`` of a circuit-widget command (see ``CommandEnvelope``)."""

    reply: FaithfulnessReply | HeadPatternsReply | PatternReply | ErrorReply
    buffer_paths: list[list[str | int]]


class StaticCircuit(_Model):
    """What a static page (notebook snapshot, HTML export) embeds for a circuit graph; ``data`` fields
    are base64 text there."""

    kind: Literal["circuit"] = "circuit"
    version: Literal[1] = 1
    state: CircuitState
