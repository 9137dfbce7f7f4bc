"""Wire models of the superposition widget (toy models of superposition, one model per sparsity).

All the numbers travel at once (they are small: ``k`` models of ``n`` features): ``W^T W``, the
feature norms, each feature's superposition score and its 2-D projection, as float32 payloads.
The widget has no commands: the sparsity slider only changes the synced ``selected`` index.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from interp_widget.schema.tensor import TensorPayload


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)


class SparsityInfo(_Model):
    """One trained model: its sparsity and summary numbers."""

    sparsity: float
    n_represented: int = Field(ge=0, description="features with norm >= the threshold")
    dims_per_feature: float = Field(description="m / |W|_F^2")


class SuperpositionData(_Model):
    """Everything the view draws. ``k`` models, ``n`` features."""

    title: str
    n_features: int = Field(ge=1)
    n_hidden: int = Field(ge=1)
    feature_labels: list[str]
    represented_threshold: float = 0.5
    models: list[SparsityInfo] = Field(min_length=1)
    gram: TensorPayload = Field(description="float32 [k, n, n]: W^T W")
    norms: TensorPayload = Field(description="float32 [k, n]: |W_i|")
    superposition: TensorPayload = Field(description="float32 [k, n]: sum_{j != i} (W^_i . W_j)^2")
    projection: TensorPayload = Field(description="float32 [k, n, 2]: feature directions on two principal axes")

    @model_validator(mode="after")
    def _check(self) -> SuperpositionData:
        k, n = len(self.models), self.n_features
        want = {"gram": [k, n, n], "norms": [k, n], "superposition": [k, n], "projection": [k, n, 2]}
        for name, shape in want.items():
            p: TensorPayload = getattr(self, name)
            if p.dtype != "float32" or p.shape != shape:
                msg = f"{name} must be float32 {shape}; got {p.dtype} {p.shape}"
                raise ValueError(msg)
        if len(self.feature_labels) != n:
            msg = f"{len(self.feature_labels)} feature labels for {n} features"
            raise ValueError(msg)
        return self


class SuperpositionState(_Model):
    """The widget's synced state: the data and the sparsity shown."""

    data: SuperpositionData
    selected: int = Field(ge=0, description="index of the model (sparsity) shown")

    @model_validator(mode="after")
    def _check(self) -> SuperpositionState:
        if self.selected >= len(self.data.models):
            msg = f"selected {self.selected} is out of range: {len(self.data.models)} models (0..{len(self.data.models) - 1})"
            raise ValueError(msg)
        return self


class StaticSuperposition(_Model):
    kind: Literal["superposition"] = "superposition"
    version: Literal[1] = 1
    state: SuperpositionState
