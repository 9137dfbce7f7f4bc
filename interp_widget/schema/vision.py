"""Wire models of the vision widgets: the image grid (layer overview, feature visualisations,
dataset examples) and the tuning-curve widget.

Images travel as ``uint8`` RGB payloads ``[n, h, w, 3]`` (binary buffers, never JSON lists).

Image grid commands: ``get_group`` (:class:`GetGroupRequest` -> :class:`GroupReply`: one layer's
thumbnails, fetched when the layer is selected) and ``get_image`` (:class:`GetImageRequest` ->
:class:`ImageReply`: one image at full size, when a thumbnail is clicked).

Tuning commands: ``open_stimulus`` (:class:`OpenStimulusRequest` -> :class:`StimulusReply`: the
activations of the units' layers on that stimulus, reduced to one value per channel / unit).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from interp_widget.schema.attention import ErrorReply
from interp_widget.schema.tensor import TensorPayload

GridKind = Literal["layer_grid", "feature_vis", "dataset_examples"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)


def _check_rgb(p: TensorPayload, what: str, n: int | None = None) -> None:
    if p.dtype != "uint8" or len(p.shape) != 4 or p.shape[3] != 3:
        msg = f"{what} must be uint8 RGB images [n, h, w, 3]; got {p.dtype} of shape {p.shape}"
        raise ValueError(msg)
    if n is not None and p.shape[0] != n:
        msg = f"{what} holds {p.shape[0]} images for {n} labels"
        raise ValueError(msg)


# --- image grid -----------------------------------------------------------------------------------
class ImageGroup(_Model):
    """One page of the grid: a conv layer's channels, or the images of a feature-vis / dataset result."""

    name: str = Field(description="layer module path, or the unit / objective")
    labels: list[str] = Field(description="one label per image, e.g. 'ch 5'")
    values: list[float] | None = Field(default=None, description="a number per image (dataset examples: activation)")
    thumb: list[int] = Field(description="[h, w] of the thumbnails")
    full: list[int] = Field(description="[h, w] of the images at full size")


class GroupImages(_Model):
    group: int = Field(ge=0)
    images: TensorPayload = Field(description="uint8 [n, h, w, 3] thumbnails")

    @model_validator(mode="after")
    def _check(self) -> GroupImages:
        _check_rgb(self.images, "group images")
        return self


class VisionGridState(_Model):
    """The image-grid widget's synced state; ``images`` holds the selected group's thumbnails (the
    others come with ``get_group``)."""

    kind: GridKind
    title: str
    note: str = ""
    groups: list[ImageGroup] = Field(min_length=1)
    group: int = Field(ge=0, description="the group (layer) shown")
    selected: int = Field(ge=-1, description="the enlarged image's index in the group (-1: none)")
    images: GroupImages | None = None


class GetGroupRequest(_Model):
    """Command ``get_group``: the thumbnails of group ``group``."""

    group: int = Field(ge=0)


class GroupReply(_Model):
    ok: Literal[True] = True
    group: int
    images: TensorPayload

    @model_validator(mode="after")
    def _check(self) -> GroupReply:
        _check_rgb(self.images, "group images")
        return self


class GetImageRequest(_Model):
    """Command ``get_image``: image ``index`` of group ``group`` at full size."""

    group: int = Field(ge=0)
    index: int = Field(ge=0)


class ImageReply(_Model):
    ok: Literal[True] = True
    group: int
    index: int
    label: str
    image: TensorPayload = Field(description="uint8 [1, h, w, 3]")

    @model_validator(mode="after")
    def _check(self) -> ImageReply:
        _check_rgb(self.image, "image", 1)
        return self


class VisionGridEnvelope(_Model):
    """The ``response`` of an image-grid command (see ``CommandEnvelope``)."""

    reply: GroupReply | ImageReply | ErrorReply
    buffer_paths: list[list[str | int]]


class StaticVisionGrid(_Model):
    """A static page's image grid: ``groups[i]`` the thumbnails of group ``i`` (None: left out to keep the
    page small); ``data`` fields are base64 text there."""

    kind: Literal["vision_grid"] = "vision_grid"
    version: Literal[1] = 1
    state: VisionGridState
    groups: list[TensorPayload | None]


# --- tuning curves --------------------------------------------------------------------------------
class TuningState(_Model):
    """The tuning widget's synced state."""

    title: str
    param: str = Field(description="the swept parameter, e.g. 'orientation'")
    unit_of_param: str = Field(description="e.g. 'degrees' ('' for none)")
    values: TensorPayload = Field(description="float32 [n_values]: the parameter of each stimulus")
    units: list[str] = Field(min_length=1)
    activations: TensorPayload = Field(description="float32 [n_units, n_values]")
    stimuli: TensorPayload | None = Field(default=None, description="uint8 [n_values, h, w, 3] (image stimuli)")
    prompts: list[str] = Field(default_factory=list, description="text stimuli: one prompt per value")
    visible: list[bool] = Field(description="per unit: drawn or hidden (the legend's toggles)")
    selected: int = Field(ge=-1, description="the clicked stimulus (-1: none)")
    has_detail: bool = Field(description="False: clicking a point cannot open activations")
    note: str = ""

    @model_validator(mode="after")
    def _check(self) -> TuningState:
        n_units, n_values = len(self.units), (self.values.shape or [0])[0]
        if len(self.values.shape) != 1 or list(self.activations.shape) != [n_units, n_values]:
            msg = (f"tuning curves need values [n_values] and activations [n_units, n_values]; got "
                   f"{self.values.shape} and {self.activations.shape} for {n_units} units")
            raise ValueError(msg)
        if len(self.visible) != n_units:
            msg = f"visible needs one flag per unit ({n_units}), got {len(self.visible)}"
            raise ValueError(msg)
        if self.stimuli is not None:
            _check_rgb(self.stimuli, "stimuli", n_values)
        if self.prompts and len(self.prompts) != n_values:
            msg = f"{len(self.prompts)} prompts for {n_values} parameter values"
            raise ValueError(msg)
        return self


class OpenStimulusRequest(_Model):
    """Command ``open_stimulus``: the activations on stimulus ``index``; ``top_k`` strongest per layer."""

    index: int = Field(ge=0)
    top_k: int = Field(default=12, ge=1, le=64)


class LayerDetail(_Model):
    """One layer's activations on the stimulus, one value per channel (spatial max) or unit."""

    layer: str
    shape: list[int] = Field(description="the activation's shape as the analysis returned it")
    reduce: str = Field(description="how a value per channel was obtained, e.g. 'max over 8x8 positions'")
    values: TensorPayload | None = Field(description="float32 [n_channels] (None: too many to send; see `top`)")
    top: list[int] = Field(description="the strongest channels, strongest first")
    top_values: list[float]
    marked: list[int] = Field(description="channels of this layer that are plotted units")


class StimulusReply(_Model):
    ok: Literal[True] = True
    index: int
    value: float = Field(description="the parameter value of the stimulus")
    label: str = Field(description="the prompt (text stimuli) or the value with its unit")
    units: list[float] = Field(description="each plotted unit's activation on this stimulus")
    layers: list[LayerDetail]


class TuningEnvelope(_Model):
    """The ``response`` of a tuning-widget command."""

    reply: StimulusReply | ErrorReply
    buffer_paths: list[list[str | int]]


class StaticTuning(_Model):
    """A static page's tuning widget (``data`` fields are base64 text there)."""

    kind: Literal["tuning"] = "tuning"
    version: Literal[1] = 1
    state: TuningState
