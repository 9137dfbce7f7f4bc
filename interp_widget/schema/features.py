"""Wire models of the feature dashboard and the steering widget: state, commands, replies.

Feature dashboard (``interp_widget/widgets/features.py``): one panel at a time, a neuron or an SAE
feature, with its top examples (per-token activations as float32 payloads), an activation histogram,
the tokens it promotes and suppresses, and links to the other side (a neuron's features, a feature's
neurons). Commands: ``select_unit`` (:class:`SelectRequest` -> :class:`PanelReply`) and ``get_activations``
(:class:`ActivationsRequest` -> :class:`ActivationsReply`: the unit's activations over the user's text).

Steering widget (``interp_widget/widgets/steering.py``): ``start_generate`` (:class:`GenerateRequest` ->
:class:`GenerateStarted`; progress comes as ``StatusMessage`` pushes and the ``status`` trait, the
result in the ``result`` trait) and ``cancel_run`` (the patching widget's :class:`CancelRequest`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from interp_widget.schema.attention import ErrorReply
from interp_widget.schema.patching import CancelReply, RunStatus
from interp_widget.schema.tensor import TensorPayload

UnitKind = Literal["neuron", "feature"]
SteerOp = Literal["add", "scale", "clamp"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)


# --- feature dashboard ----------------------------------------------------------------------------
class TopExample(_Model):
    """A dataset snippet around one of the unit's largest activations."""

    tokens: list[str]
    acts: TensorPayload = Field(description="float32 [len(tokens)]: the unit's activation at each token")
    peak: int = Field(ge=0, description="index in `tokens` of the activation this example was picked for")
    value: float = Field(description="the activation at `peak`")
    row: int = Field(ge=0, description="dataset row the snippet comes from")


class Histogram(_Model):
    """Activations over the whole dataset: ``counts[i]`` fall in ``[edges[i], edges[i + 1])``."""

    counts: TensorPayload = Field(description="int32 [bins]")
    edges: TensorPayload = Field(description="float32 [bins + 1]")
    n: int = Field(ge=0, description="activations counted (every token of the dataset)")
    n_nonpositive: int = Field(ge=0, description="how many were <= 0 (an inactive feature or ReLU neuron)")


class TokenEffect(_Model):
    token: str
    value: float


class UnitLink(_Model):
    """A unit on the other side: a neuron's feature, or a feature's neuron."""

    kind: UnitKind
    index: int = Field(ge=0)
    weight: float
    label: str = ""


class UnitPanel(_Model):
    """Everything the dashboard shows for one neuron or feature."""

    kind: UnitKind
    index: int = Field(ge=0)
    site: str
    title: str
    top: list[TopExample]
    histogram: Histogram
    promoted: list[TokenEffect]
    suppressed: list[TokenEffect]
    links: list[UnitLink]
    links_title: str
    note: str = ""


class PromptActivations(_Model):
    """One unit's activations over the user's text (and, for a neuron, its features at the peak token)."""

    kind: UnitKind
    index: int = Field(ge=0)
    text: str
    tokens: list[str]
    acts: TensorPayload = Field(description="float32 [len(tokens)]")
    links: list[UnitLink] = Field(description="a neuron: features' contributions at the peak token; a feature: []")


class FeaturesState(_Model):
    """The dashboard's synced state (one trait per field)."""

    model_name: str
    neuron_site: str
    feature_site: str
    n_neurons: int = Field(ge=0)
    n_features: int = Field(ge=0)
    kind: UnitKind
    index: int = Field(ge=0)
    prompt: str
    panel: UnitPanel | None = None
    prompt_acts: PromptActivations | None = None
    controls: bool = Field(description="False: a static page or a dashboard without a model")


class SelectRequest(_Model):
    """Command ``select_unit``: show this neuron or feature."""

    kind: UnitKind
    index: int = Field(ge=0)


class PanelReply(_Model):
    ok: Literal[True] = True
    panel: UnitPanel


class ActivationsRequest(_Model):
    """Command ``get_activations``: the unit's activations over ``text``."""

    kind: UnitKind
    index: int = Field(ge=0)
    text: str = Field(min_length=1)


class ActivationsReply(_Model):
    ok: Literal[True] = True
    acts: PromptActivations


class FeaturesEnvelope(_Model):
    """The ``response`` of a dashboard command (see ``CommandEnvelope``)."""

    reply: PanelReply | ActivationsReply | ErrorReply
    buffer_paths: list[list[str | int]]


class StaticFeatures(_Model):
    """What a static page embeds for a dashboard (``data`` fields are base64 text there)."""

    kind: Literal["features"] = "features"
    version: Literal[1] = 1
    state: FeaturesState


# --- steering --------------------------------------------------------------------------------------
class DirectionOption(_Model):
    id: str = Field(description="what GenerateRequest.direction names")
    label: str


class Generation(_Model):
    """Base and steered generations side by side (``n_samples`` rows each)."""

    prompt_tokens: list[str]
    base: list[list[str]] = Field(description="per sample: the generated tokens without steering")
    steered: list[list[str]]
    base_ids: TensorPayload = Field(description="int32 [n_samples, n_new]")
    steered_ids: TensorPayload = Field(description="int32 [n_samples, n_new]")
    base_text: list[str]
    steered_text: list[str]
    site: str
    op: SteerOp
    strength: float
    direction: str = Field(description="the direction's label")
    positions: str


class GenerateRequest(_Model):
    """Command ``start_generate``: sample from ``prompt`` with and without steering."""

    prompt: str = Field(min_length=1)
    site: str
    direction: str = Field(description="a DirectionOption id")
    op: SteerOp = "add"
    strength: float = 4.0
    positions: Literal["all", "prompt"] = "all"
    max_new_tokens: int = Field(default=12, ge=1, le=256)
    n_samples: int = Field(default=1, ge=1, le=16)
    greedy: bool = False
    seed: int = Field(default=0, ge=0)


class GenerateStarted(_Model):
    ok: Literal[True] = True
    run_id: int
    n_prompt_tokens: int


class SteeringState(_Model):
    """The steering widget's synced state (one trait per field)."""

    model_name: str
    sites: list[str]
    directions: list[DirectionOption]
    prompt: str
    site: str
    direction: str
    op: SteerOp
    strength: float
    strength_min: float
    strength_max: float
    positions: Literal["all", "prompt"]
    max_new_tokens: int
    n_samples: int
    greedy: bool
    seed: int
    controls: bool
    result: Generation | None = None
    status: RunStatus


class SteeringEnvelope(_Model):
    """The ``response`` of a steering-widget command (see ``CommandEnvelope``)."""

    reply: GenerateStarted | CancelReply | ErrorReply
    buffer_paths: list[list[str | int]]


class StaticSteering(_Model):
    kind: Literal["steering"] = "steering"
    version: Literal[1] = 1
    state: SteeringState
