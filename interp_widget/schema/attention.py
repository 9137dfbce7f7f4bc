"""Wire models of the attention widget: its synced state, its commands and their replies.

These pydantic models are the source of truth; ``src/schema/generated.ts`` is generated
from their JSON Schema (``npm run gen:types``) and a test fails when the two drift.

Layouts: query (destination) positions are rows, key (source) positions columns, as in
TransformerLens's ``attn.hook_pattern`` ``[batch, head, query_pos, key_pos]``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from interp_widget.schema.tensor import TensorPayload

#: the head score kinds the widget shows, in display order (see interp_widget.analysis.heads)
SCORE_KINDS: tuple[str, ...] = ("previous_token", "induction", "duplicate_token")

Precision = Literal["uint8", "float16", "float32"]


class _Model(BaseModel):
    # serialisation schemas list defaulted fields as required: they are always sent
    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)


class HeadScore(_Model):
    """One kind of head score for every head of a prompt: ``values`` is float32 ``[n_layers, n_heads]`` (NaN: undefined)."""

    kind: str = Field(description="previous_token, induction or duplicate_token")
    label: str = Field(description="human-readable name, e.g. 'induction'")
    values: TensorPayload


class PromptData(_Model):
    """One prompt: its tokens, a thumbnail of every head and the head scores on it."""

    text: str = Field(description="the prompt as given (or its tokens joined)")
    tokens: list[str] = Field(description="one string per position, BOS included")
    thumbs: TensorPayload = Field(description="uint8 [n_layers, n_heads, t, t], max-pooled patterns, value = q * scale + offset")
    scores: list[HeadScore]


class PatternWindow(_Model):
    """A rectangle of one head's pattern: queries ``q0:q1`` (rows) by keys ``k0:k1`` (columns).

    ``values`` is ``[rows, cols]``; it is max-pooled to fewer rows/columns than ``q1 - q0`` /
    ``k1 - k0`` when the request set ``max_size``.
    """

    prompt: int
    layer: int
    head: int
    q0: int
    q1: int
    k0: int
    k1: int
    values: TensorPayload


class AttentionState(_Model):
    """The attention widget's synced state (one trait per field)."""

    model_name: str
    n_layers: int = Field(ge=1)
    n_heads: int = Field(ge=1)
    prompts: list[PromptData]
    prompt: int = Field(ge=0, description="selected prompt")
    layer: int = Field(ge=0, description="selected layer")
    head: int = Field(ge=0, description="selected head")
    window_size: int = Field(ge=4, description="query/key positions shown at once in the detail view")
    thumb_size: int = Field(ge=1, description="thumbnails are at most thumb_size x thumb_size")
    window: PatternWindow | None = Field(default=None, description="the selected head's first detail window, sent with the state so the first paint needs no round trip")


class GetPatternRequest(_Model):
    """Command ``get_pattern``: a window of one head's pattern."""

    prompt: int = Field(ge=0)
    layer: int = Field(ge=0)
    head: int = Field(ge=0)
    q0: int = Field(ge=0)
    q1: int = Field(ge=1)
    k0: int = Field(ge=0)
    k1: int = Field(ge=1)
    max_size: int | None = Field(default=None, ge=1, le=4096, description="max-pool the window to at most this many rows and columns")
    precision: Precision = Field(default="float16", description="uint8 is quantised to [0, 1]")

    @model_validator(mode="after")
    def _check_ranges(self) -> GetPatternRequest:
        if self.q1 <= self.q0 or self.k1 <= self.k0:
            msg = f"empty window: q {self.q0}:{self.q1}, k {self.k0}:{self.k1}"
            raise ValueError(msg)
        return self


class PatternReply(_Model):
    ok: Literal[True] = True
    window: PatternWindow


class ErrorInfo(_Model):
    type_name: str = Field(description="the Python exception class, e.g. SiteIndexError")
    message: str


class ErrorReply(_Model):
    """What every command replies when it fails (anywidget itself sends nothing when a command raises)."""

    ok: Literal[False] = False
    error: ErrorInfo


class CommandEnvelope(_Model):
    """The ``response`` of an anywidget command: the reply without its bytes, and where the buffers go back.

    ``buffer_paths[i]`` is the key path in ``reply`` of the i-th binary buffer sent with the message.
    """

    reply: PatternReply | ErrorReply
    buffer_paths: list[list[str | int]]


class StaticAttention(_Model):
    """What a static HTML page (report or notebook snapshot) embeds: the state and, per prompt,
    every head's full pattern (float16 ``[n_layers, n_heads, n, n]``) when it fits the page's budget.

    In the page every ``data`` field is base64 text instead of bytes.
    """

    kind: Literal["attention"] = "attention"
    version: Literal[1] = 1
    state: AttentionState
    patterns: list[TensorPayload | None]
