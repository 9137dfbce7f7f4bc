"""The JSON Schema of every wire model, in one document (the input of ``npm run gen:types``)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from interp_widget.schema.attention import (
    AttentionState,
    CommandEnvelope,
    ErrorReply,
    GetPatternRequest,
    PatternReply,
    StaticAttention,
)
from interp_widget.schema.circuit import CircuitEnvelope, CircuitState, FaithfulnessRequest, StaticCircuit
from interp_widget.schema.features import (
    ActivationsRequest,
    FeaturesEnvelope,
    FeaturesState,
    GenerateRequest,
    SelectRequest,
    StaticFeatures,
    StaticSteering,
    SteeringEnvelope,
    SteeringState,
)
from interp_widget.schema.patching import (
    CancelRequest,
    OpenHeadRequest,
    PatchingEnvelope,
    PatchingState,
    RunRequest,
    StaticHeatmap,
    StatusMessage,
)
from interp_widget.schema.superposition import StaticSuperposition, SuperpositionState
from interp_widget.schema.tensor import TensorPayload
from interp_widget.schema.vision import (
    GetGroupRequest,
    GetImageRequest,
    OpenStimulusRequest,
    StaticTuning,
    StaticVisionGrid,
    TuningEnvelope,
    TuningState,
    VisionGridEnvelope,
    VisionGridState,
)

#: the models whose TypeScript types are generated (their dependencies come along)
EXPORTED: tuple[type[BaseModel], ...] = (
    TensorPayload,
    AttentionState,
    GetPatternRequest,
    PatternReply,
    ErrorReply,
    CommandEnvelope,
    StaticAttention,
    # the patching widget and the result heatmap (interp_widget/schema/patching.py)
    PatchingState,
    RunRequest,
    CancelRequest,
    OpenHeadRequest,
    PatchingEnvelope,
    StatusMessage,
    StaticHeatmap,
    # the circuit graph widget (interp_widget/schema/circuit.py)
    CircuitState,
    FaithfulnessRequest,
    CircuitEnvelope,
    StaticCircuit,
    # the vision widgets: image grid and tuning curves (interp_widget/schema/vision.py)
    VisionGridState,
    GetGroupRequest,
    GetImageRequest,
    VisionGridEnvelope,
    StaticVisionGrid,
    TuningState,
    OpenStimulusRequest,
    TuningEnvelope,
    StaticTuning,
    # the feature dashboard and the steering widget (interp_widget/schema/features.py)
    FeaturesState,
    SelectRequest,
    ActivationsRequest,
    FeaturesEnvelope,
    StaticFeatures,
    SteeringState,
    GenerateRequest,
    SteeringEnvelope,
    StaticSteering,
    # the superposition widget (interp_widget/schema/superposition.py)
    SuperpositionState,
    StaticSuperposition,
)

#: the models the browser sends to the kernel
RECEIVED: tuple[type[BaseModel], ...] = (GetPatternRequest, RunRequest, CancelRequest, OpenHeadRequest,
                                         FaithfulnessRequest,
                                         GetGroupRequest, GetImageRequest, OpenStimulusRequest,
                                         SelectRequest, ActivationsRequest, GenerateRequest)


def wire_schema() -> dict[str, Any]:
    """One schema whose ``$defs`` hold every exported model (serialisation mode: what is sent)."""
    # what Python sends is described in serialisation mode (defaults are always present);
    # requests, which the browser sends, in validation mode (defaults may be left out)
    modes: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        (m, "validation" if m in RECEIVED else "serialization") for m in EXPORTED
    ]
    _, top = models_json_schema(modes, ref_template="#/$defs/{model}")
    defs = {name: strip_titles(d, keep=True) for name, d in top.get("$defs", {}).items()}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "InterpWidgetWire",
        "description": "Generated from the pydantic models in interp_widget/schema; do not edit.",
        "type": "object",
        "properties": {m.__name__: {"$ref": f"#/$defs/{m.__name__}"} for m in EXPORTED},
        "additionalProperties": False,
        "$defs": dict(sorted(defs.items())),
    }


def strip_titles(node: Any, *, keep: bool = False) -> Any:
    """Drop pydantic's per-field titles (they would become one TypeScript alias per field),
    and the siblings of ``$ref`` (they would make a copy of the referenced type)."""
    if isinstance(node, dict):
        if "$ref" in node:
            return {"$ref": node["$ref"]}
        return {k: strip_titles(v) for k, v in node.items() if keep or k != "title" or not isinstance(v, str)}
    if isinstance(node, list):
        return [strip_titles(v) for v in node]
    return node


def dumps() -> str:
    return json.dumps(wire_schema(), indent=2, sort_keys=False) + "\n"
