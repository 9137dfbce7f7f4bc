"""Messages between the side panel and the kernel, over the comm target ``interp-widget-panel``.

The panel sends a *request* (``{"id": ..., "type": ...}``) and always gets exactly one *reply*
with the same ``id``: the typed answer (``ok: true``) or an :class:`PanelError` (``ok: false``) that
names the problem. The kernel also *pushes* :class:`EntriesPush` (``id: null``) when what it holds
changes. Every message travels as ``{"message": ..., "buffer_paths": [...]}``: binary payloads
(:class:`~interp_widget.schema.TensorPayload` data) are cut out into the comm message's buffers
(:func:`interp_widget.schema.pack`), ``buffer_paths[i]`` being the key path of buffer ``i``.

These pydantic models are the source of truth; the panel's TypeScript types are generated from
their JSON Schema (:func:`wire_schema`). No torch import here.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from interp_widget.schema import ErrorInfo, StaticAttention

#: the comm target the package registers in a kernel (and the panel registers in the browser)
TARGET = "interp-widget-panel"
#: bumped when a message changes shape incompatibly
PROTOCOL = 1

EntryKind = Literal["model", "trace", "result", "view"]
EntryId = Annotated[str, Field(pattern=r"^(model|trace|result|view)-[0-9]{1,9}$", description="e.g. 'model-1'")]
RequestId = Annotated[str, Field(min_length=1, max_length=128)]


class _Msg(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)


# --- requests (panel -> kernel) ---------------------------------------------------------------
class ListRequest(_Msg):
    """Everything the kernel holds: replied with :class:`EntriesReply`."""

    id: RequestId
    type: Literal["list"]


class DescribeRequest(_Msg):
    """One entry in detail (a model's architecture and sites, a result's axes, ...)."""

    id: RequestId
    type: Literal["describe"]
    entry: EntryId


class RenderRequest(_Msg):
    """What the panel needs to show an entry's view.

    ``live``: an ipywidget's model id (a model entry gets a new attention widget, owned by the panel);
    ``static``: a self-contained snapshot (attention views), for a front end without a widget manager.
    ``text``: the prompt of a model's attention view (default: a seeded repeated random sequence).
    """

    id: RequestId
    type: Literal["render"]
    entry: EntryId
    mode: Literal["live", "static"] = "live"
    text: str | None = Field(default=None, min_length=1, max_length=20_000)
    layer: int = Field(default=0, ge=0)
    head: int = Field(default=0, ge=0)


class SnippetTarget(_Msg):
    """What to write code for: a head (``layer`` + ``head``), a neuron (``layer`` + ``neuron``), a site
    (``site``, optionally with ``head``/``position``), or a result's node (``index``: one index per axis)."""

    layer: int | None = Field(default=None, ge=0)
    head: int | None = Field(default=None, ge=0)
    neuron: int | None = Field(default=None, ge=0)
    position: int | None = Field(default=None, ge=0)
    prompt: int | None = Field(default=None, ge=0)
    site: str | None = Field(default=None, min_length=1, max_length=200)
    score: str | None = Field(default=None, min_length=1, max_length=64, description="a head-scores kind")
    index: dict[str, Annotated[int, Field(ge=0)]] | None = None
    text: str | None = Field(default=None, min_length=1, max_length=20_000)
    view: str | None = Field(default=None, min_length=1, max_length=128,
                             description="model id of the view the panel shows: its selected layer/head fill in missing ones")


class SnippetRequest(_Msg):
    """Code that reproduces / inspects the selection in a new cell."""

    id: RequestId
    type: Literal["snippet"]
    entry: EntryId
    target: SnippetTarget = Field(default_factory=SnippetTarget)


class ReleaseRequest(_Msg):
    """Close widgets the kernel made for the panel (see :class:`WidgetView` ``owned``)."""

    id: RequestId
    type: Literal["release"]
    model_ids: list[Annotated[str, Field(min_length=1, max_length=128)]] = Field(max_length=1000)


Request = Annotated[
    ListRequest | DescribeRequest | RenderRequest | SnippetRequest | ReleaseRequest,
    Field(discriminator="type"),
]
REQUEST_TYPES: tuple[str, ...] = ("list", "describe", "render", "snippet", "release")


# --- entries ----------------------------------------------------------------------------------
class EntrySummary(_Msg):
    """One line of the panel's list."""

    id: EntryId
    kind: EntryKind
    type_name: str = Field(description="the Python class, e.g. Model, AttentionWidget, SweepResult")
    label: str = Field(description="what the panel shows first, e.g. the model's name")
    detail: str = Field(description="one line: shape, architecture, selection")
    names: list[str] = Field(description="variables in the user's namespace bound to it")
    model_name: str | None = Field(default=None, description="the model it belongs to, when known")
    seq: int = Field(description="registration order")


class EntriesReply(_Msg):
    id: str
    ok: Literal[True] = True
    type: Literal["entries"] = "entries"
    protocol: int = PROTOCOL
    package_version: str
    version: int = Field(description="the registry's change counter")
    entries: list[EntrySummary]


class EntriesPush(_Msg):
    """Sent unasked when the kernel's entries change (after a cell, or as objects are created)."""

    id: None = None
    ok: Literal[True] = True
    type: Literal["update"] = "update"
    protocol: int = PROTOCOL
    package_version: str
    version: int
    entries: list[EntrySummary]


# --- describe ---------------------------------------------------------------------------------
class SiteSummary(_Msg):
    hook_name: str = Field(description="TransformerLens hook name, e.g. blocks.0.attn.hook_pattern")
    component: str
    layer: int | None
    shape: list[str] = Field(description="symbolic shape, e.g. ['batch', 'head', 'query_pos', 'key_pos']")


class ModelDetails(_Msg):
    kind: Literal["model"] = "model"
    name: str
    architecture: str
    backend: str
    n_layers: int
    n_heads: int
    d_model: int
    d_head: int
    d_mlp: int | None
    n_ctx: int
    d_vocab: int
    causal: bool
    has_tokenizer: bool
    sites: list[SiteSummary]


class ViewDetails(_Msg):
    kind: Literal["view"] = "view"
    widget_class: str
    model_id: str = Field(description="the ipywidget's model (comm) id")
    model_name: str | None
    selection: dict[str, int] = Field(description="e.g. {'prompt': 0, 'layer': 1, 'head': 2}")
    n_layers: int | None
    n_heads: int | None
    prompts: list[str] = Field(description="the prompts' texts")


class ResultDetails(_Msg):
    kind: Literal["result"] = "result"
    result_class: str
    result_kind: str | None = Field(description="e.g. activation_patching, head_scores")
    axes: list[str]
    shape: list[int]
    labels: dict[str, list[str]]
    metric: str | None
    score_kinds: list[str] = Field(description="head-score kinds (head scores only)")
    summary: str = Field(description="the result's repr, shortened")


class CapturedTensor(_Msg):
    hook_name: str
    shape: list[int]
    dtype: str


class TraceDetails(_Msg):
    kind: Literal["trace"] = "trace"
    captured: list[CapturedTensor]
    grads: list[CapturedTensor]
    logits_shape: list[int] | None
    metric: float | None


Details = Annotated[ModelDetails | ViewDetails | ResultDetails | TraceDetails, Field(discriminator="kind")]


class DescribeReply(_Msg):
    id: str
    ok: Literal[True] = True
    type: Literal["describe"] = "describe"
    entry: EntrySummary
    details: Details


# --- render -----------------------------------------------------------------------------------
class WidgetView(_Msg):
    """A live ipywidget: render ``application/vnd.jupyter.widget-view+json`` with this model id."""

    kind: Literal["widget"] = "widget"
    model_id: str
    owned: bool = Field(description="made for the panel: release it when it is no longer shown")


class StaticView(_Msg):
    """A snapshot of an attention view (patterns as binary buffers), rendered with src/attention's views."""

    kind: Literal["static"] = "static"
    document: StaticAttention


class MimeView(_Msg):
    """What the object shows inline (its IPython display data), for objects that are not widgets."""

    kind: Literal["mime"] = "mime"
    data: dict[str, Any]
    metadata: dict[str, Any]


View = Annotated[WidgetView | StaticView | MimeView, Field(discriminator="kind")]


class RenderReply(_Msg):
    id: str
    ok: Literal[True] = True
    type: Literal["render"] = "render"
    entry: str
    view: View


# --- snippet / release / errors ------------------------------------------------------------------
class SnippetReply(_Msg):
    id: str
    ok: Literal[True] = True
    type: Literal["snippet"] = "snippet"
    entry: str
    code: str = Field(description="Python code for a new cell")
    description: str


class ReleaseReply(_Msg):
    id: str
    ok: Literal[True] = True
    type: Literal["release"] = "release"
    released: list[str]


class PanelError(_Msg):
    """The reply to a request that failed: malformed, unknown type, unknown entry, or an error while answering."""

    id: str | None = Field(description="the request's id, or null when it could not be read")
    ok: Literal[False] = False
    type: Literal["error"] = "error"
    error: ErrorInfo


Reply = EntriesReply | DescribeReply | RenderReply | SnippetReply | ReleaseReply | PanelError


class PanelEnvelope(_Msg):
    """What each comm message's data is: a reply or a push, without its bytes, and where the buffers go."""

    message: Annotated[
        EntriesReply | EntriesPush | DescribeReply | RenderReply | SnippetReply | ReleaseReply | PanelError,
        Field(discriminator="type"),
    ]
    buffer_paths: list[list[str | int]]


class PanelRequests(_Msg):
    """Holder of the request union, for the JSON Schema (the panel sends ``Request``)."""

    request: Request


def wire_schema() -> dict[str, Any]:
    """JSON Schema of the panel protocol: what the kernel sends (serialisation mode) and what it accepts."""
    from interp_widget.schema.jsonschema import strip_titles  # the same clean-up as the widgets' schema

    modes: list[tuple[type[BaseModel], JsonSchemaMode]] = [(PanelEnvelope, "serialization"), (PanelRequests, "validation")]
    _, top = models_json_schema(modes, ref_template="#/$defs/{model}")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "InterpWidgetPanel",
        "description": "Generated from interp_widget/server/messages.py; do not edit.",
        "type": "object",
        "properties": {"PanelEnvelope": {"$ref": "#/$defs/PanelEnvelope"},
                       "PanelRequests": {"$ref": "#/$defs/PanelRequests"}},
        "additionalProperties": False,
        "$defs": {name: strip_titles(d, keep=True) for name, d in sorted(top.get("$defs", {}).items())},
    }

