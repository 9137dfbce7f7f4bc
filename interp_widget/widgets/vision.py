"""The vision widgets: an image grid (layer overview, feature visualisations, dataset examples) and
the tuning-curve widget (the joint tuning view).

>>> import interp_widget as iw
>>> iw.feature_grid(iw.layer_overview(model))            # doctest: +SKIP
>>> iw.tuning_widget(iw.tuning(model, units, "orientation", values))   # doctest: +SKIP

The grid shows one layer at a time: the selected layer's thumbnails travel with the state (uint8 RGB
buffers), other layers are fetched by the ``get_group`` command when selected, and a click opens the
image at full size (``get_image``). The tuning widget draws each unit's activation against the swept
parameter (Observable Plot); hovering a point shows its stimulus, clicking it opens the activations of
the units' layers on that stimulus (``open_stimulus``, computed by ``TuningCurves.detail``).
Every command replies, errors included. Displaying a result object shows these widgets.

Importing this module imports no torch.
"""

from __future__ import annotations

import base64
import html
import logging
import re
from collections.abc import Mapping
from typing import Any

import anywidget
import numpy as np
import traitlets as t

from interp_widget.errors import InputMismatchError, SiteIndexError
from interp_widget.schema import encode
from interp_widget.schema.vision import (
    GetGroupRequest,
    GetImageRequest,
    GroupReply,
    ImageGroup,
    ImageReply,
    LayerDetail,
    OpenStimulusRequest,
    StaticTuning,
    StaticVisionGrid,
    StimulusReply,
    TuningEnvelope,
    TuningState,
    VisionGridEnvelope,
    VisionGridState,
)
from interp_widget.server.registry import track
from interp_widget.widgets._commands import message_command, reply_unknown_commands
from interp_widget.widgets._display import widget_bundle
from interp_widget.widgets._static import (
    STATIC_DIR,
    add_snapshot,
    b64_tree,
    bundle_source,
    json_for_script,
    png_bytes,
)
from interp_widget.widgets.heatmap import _numpy

log = logging.getLogger(__name__)

GRID_BUNDLE = STATIC_DIR / "vision_grid.js"
TUNING_BUNDLE = STATIC_DIR / "tuning.js"
#: (module, class) of the results shown by these widgets
GRID_RESULTS = ("LayerGrid", "FeatureVisResult", "DatasetExamples")
MAX_SENT_CHANNELS = 4096


def _missing(name: str) -> str:
    return ("export default { render({ el }) { el.textContent = 'interp-widget: the front end is not built "
            f"(interp_widget/widgets/static/{name}.js is missing). Run `npm install && npm run build` in the "
            "source checkout, or install the wheel.'; } };")


#: an anywidget command decorator whose replies (errors included) are checked against an envelope
command_for = message_command


# --- images -----------------------------------------------------------------------------------------
def to_rgb(images: Any) -> np.ndarray:
    """``[n, 3, H, W]`` (or ``[n, 1, H, W]``, ``[n, H, W]``) floats in [0, 1] -> uint8 ``[n, H, W, 3]``."""
    a = _numpy(images)
    if a.ndim == 3:
        a = a[:, None]
    if a.ndim != 4 or a.shape[1] not in (1, 3):
        msg = f"images must be [n, 3, H, W] (or [n, 1, H, W]) in [0, 1]; got shape {list(a.shape)}"
        raise InputMismatchError(msg)
    if a.shape[1] == 1:
        a = a.repeat(3, axis=1)
    a = np.nan_to_num(np.clip(a, 0.0, 1.0), nan=0.0)
    return np.ascontiguousarray((a.transpose(0, 2, 3, 1) * 255.0).round().astype(np.uint8))


def shrink(rgb: np.ndarray, max_side: int) -> np.ndarray:
    """Downsample uint8 ``[n, H, W, 3]`` so the longer side is at most ``max_side`` (box filter)."""
    _, h, w, _ = rgb.shape
    f = -(-max(h, w) // max_side)  # ceil
    if f <= 1:
        return rgb
    h2, w2 = h // f, w // f
    boxes = rgb[:, : h2 * f, : w2 * f].reshape(rgb.shape[0], h2, f, w2, f, 3).astype(np.float32)
    return np.ascontiguousarray(boxes.mean(axis=(2, 4)).round().astype(np.uint8))


def mosaic(rgb: np.ndarray, *, cols: int = 16, gap: int = 2) -> np.ndarray:
    """Tile uint8 ``[n, h, w, 3]`` into one image (for the script-free fallback)."""
    n, h, w, _ = rgb.shape
    cols = max(1, min(cols, n))
    rows = -(-n // cols)
    out = np.full((rows * (h + gap) + gap, cols * (w + gap) + gap, 3), 200, np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        out[gap + r * (h + gap): gap + r * (h + gap) + h, gap + c * (w + gap): gap + c * (w + gap) + w] = rgb[i]
    return out


def _png_img(rgb: np.ndarray, alt: str) -> str:
    data = base64.b64encode(png_bytes(np.ascontiguousarray(rgb))).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _embed(kind: str, doc: dict[str, Any], fallback: str, bundle: Any) -> str:
    return (f'<div class="iw-static" data-iw-static="{kind}"><div class="iw-fallback">{fallback}</div>'
            f'<script type="application/json" class="iw-static-data">{json_for_script(b64_tree(doc))}</script>'
            f'</div><script type="module">{bundle_source(bundle)}</script>')


class _Snapshot:
    """Adds the static snapshot (``text/html`` + the extension's marker) to a widget's mime bundle."""

    snapshot: bool

    def snapshot_html(self) -> str:
        raise NotImplementedError

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return add_snapshot(super()._repr_mimebundle_(**kwargs), self.snapshot, self.snapshot_html)  # type: ignore[misc]


# --- image grid ---------------------------------------------------------------------------------------
def grid_groups(result: Any) -> tuple[str, str, str, list[ImageGroup], list[np.ndarray]]:
    """(kind, title, note, groups, full-size uint8 images per group) of a vision result."""
    name = type(result).__name__
    if name == "LayerGrid":
        groups, full = [], []
        for layer in result.layers:
            rgb = to_rgb(result.images[layer])
            chans = list(result.channels[layer])
            if len(chans) != rgb.shape[0]:
                msg = f"layer {layer}: {rgb.shape[0]} images but {len(chans)} channel indices"
                raise InputMismatchError(msg)
            groups.append(ImageGroup(name=layer, labels=[f"ch {c}" for c in chans], thumb=[0, 0],
                                     full=list(rgb.shape[1:3])))
            full.append(rgb)
        note = f"feature visualisation of each channel · seed {result.seed}"
        return "layer_grid", "layer overview", note, groups, full
    if name == "FeatureVisResult":
        rgb = to_rgb(result.images)
        losses = _numpy(result.losses)
        values = [float(v) for v in losses[:, -1]] if losses.ndim == 2 and losses.shape[1] else None
        group = ImageGroup(name="feature visualisation", labels=list(result.labels), values=values, thumb=[0, 0],
                           full=list(rgb.shape[1:3]))
        steps = losses.shape[1] if losses.ndim == 2 else 0
        return "feature_vis", "feature visualisation", f"{steps} steps · seed {result.seed}", [group], [rgb]
    if name == "DatasetExamples":
        rgb = to_rgb(result.images)
        acts = _numpy(result.activations).reshape(-1)
        idx = _numpy(result.indices).reshape(-1).astype(np.int64)
        group = ImageGroup(name=result.unit, labels=[f"#{int(i)}" for i in idx], values=[float(a) for a in acts],
                           thumb=[0, 0], full=list(rgb.shape[1:3]))
        crops = "crops around the strongest position" if result.boxes is not None else "whole images"
        return "dataset_examples", f"top dataset examples of {result.unit}", crops, [group], [rgb]
    msg = f"cannot show a {name} as an image grid (expected one of {', '.join(GRID_RESULTS)})"
    raise TypeError(msg)


class VisionGridWidget(_Snapshot, anywidget.AnyWidget):
    """A grid of images with a layer selector; see the module docstring. ``group`` (the layer shown)
    and ``selected`` (the enlarged image, -1 for none) are kept in sync with the view."""

    _esm = GRID_BUNDLE if GRID_BUNDLE.is_file() else _missing("vision_grid")

    kind = t.Unicode("layer_grid").tag(sync=True)
    title = t.Unicode("").tag(sync=True)
    note = t.Unicode("").tag(sync=True)
    groups = t.List(t.Dict()).tag(sync=True)
    group = t.Int(0).tag(sync=True)
    selected = t.Int(-1).tag(sync=True)
    images = t.Dict(allow_none=True, default_value=None).tag(sync=True)

    def __init__(self, result: Any, *, group: int | str = 0, thumb: int = 64, snapshot: bool = True,
                 snapshot_budget: int = 1_500_000) -> None:
        kind, title, note, groups, full = grid_groups(result)
        self._result = result
        self._full = full
        self._thumbs = [shrink(f, thumb) for f in full]
        self.snapshot, self.snapshot_budget = snapshot, snapshot_budget
        for g, th in zip(groups, self._thumbs, strict=True):
            g.thumb = list(th.shape[1:3])
        names = [g.name for g in groups]
        index = names.index(group) if isinstance(group, str) and group in names else group
        if not isinstance(index, int):
            msg = f"unknown layer {group!r}; layers: {', '.join(names)}"
            raise SiteIndexError(msg)
        super().__init__(kind=kind, title=title, note=note, groups=[g.model_dump() for g in groups])
        with self.hold_sync():
            self.group = index
            self.images = {"group": index, "images": encode(self._thumbs[index]).to_wire()}
        reply_unknown_commands(self, {"get_group", "get_image"})
        track(self, "view")

    @property
    def result(self) -> Any:
        return self._result

    @t.validate("group")
    def _valid_group(self, proposal: dict[str, Any]) -> int:
        return self._check_group(proposal["value"])

    @t.validate("selected")
    def _valid_selected(self, proposal: dict[str, Any]) -> int:
        v = int(proposal["value"])
        if v != -1:
            self._check_index(self.group, v)
        return v

    def _check_group(self, g: int) -> int:
        n = len(self._full)
        if not 0 <= g < n:
            names = ", ".join(x["name"] for x in self.groups) if self.groups else ""
            msg = f"layer {g} is out of range: {n} layers (0..{n - 1}): {names}"
            raise SiteIndexError(msg)
        return int(g)

    def _check_index(self, g: int, i: int) -> None:
        n = self._full[g].shape[0]
        if not 0 <= i < n:
            msg = f"image {i} is out of range: {self.groups[g]['name']} has {n} images (0..{n - 1})"
            raise SiteIndexError(msg)

    @command_for(VisionGridEnvelope)
    def get_group(self, msg: dict[str, Any]) -> GroupReply:
        """The thumbnails of one group (layer), fetched when the view selects it."""
        req = GetGroupRequest.model_validate(msg)
        g = self._check_group(req.group)
        return GroupReply(group=g, images=encode(self._thumbs[g]))

    @command_for(VisionGridEnvelope)
    def get_image(self, msg: dict[str, Any]) -> ImageReply:
        """One image at full size (the enlarged view)."""
        req = GetImageRequest.model_validate(msg)
        g = self._check_group(req.group)
        self._check_index(g, req.index)
        return ImageReply(group=g, index=req.index, label=self.groups[g]["labels"][req.index],
                          image=encode(self._full[g][req.index: req.index + 1]))

    def state_model(self) -> VisionGridState:
        return VisionGridState.model_validate({k: getattr(self, k) for k in VisionGridState.model_fields})

    def snapshot_html(self) -> str:
        """Self-contained HTML of the grid (thumbnails of every layer that fits ``snapshot_budget``)."""
        used = 0
        order = [self.group] + [i for i in range(len(self._thumbs)) if i != self.group]
        chosen = set()
        for i in order:
            if used + self._thumbs[i].nbytes <= self.snapshot_budget or i == self.group:
                chosen.add(i)
                used += self._thumbs[i].nbytes
        embedded = [encode(th) if i in chosen else None for i, th in enumerate(self._thumbs)]
        state = self.state_model().model_copy(update={"images": None})
        doc = StaticVisionGrid(state=state, groups=embedded).model_dump()
        g = self.groups[self.group]
        caption = html.escape(f"{self.title}: {g['name']} ({len(g['labels'])} images)")
        fallback = _png_img(mosaic(self._thumbs[self.group]), caption) + f"<div>{caption}</div>"
        return _embed("vision_grid", doc, fallback, GRID_BUNDLE)

    def __repr__(self) -> str:
        g = self.groups[self.group]
        return f"<VisionGridWidget {self.title!r}: {len(self.groups)} group(s); showing {g['name']!r}>"


# --- tuning curves ------------------------------------------------------------------------------------
def reduce_activation(x: Any) -> tuple[np.ndarray, str]:
    """One value per channel / unit: ``[C, H, W]`` (or ``[1, C, H, W]``) -> spatial max; ``[pos, d]`` ->
    max over positions; ``[d]`` as is."""
    a = _numpy(x)
    if a.ndim == 4 and a.shape[0] == 1:
        a = a[0]
    if a.ndim == 3:
        return a.reshape(a.shape[0], -1).max(axis=1), f"max over {a.shape[1]}x{a.shape[2]} positions"
    if a.ndim == 2:
        return (a[0], "values") if a.shape[0] == 1 else (a.max(axis=0), f"max over {a.shape[0]} positions")
    if a.ndim <= 1:
        return a.reshape(-1), "values"
    msg = f"cannot show an activation of shape {list(a.shape)}: expected [C, H, W], [1, C, H, W], [pos, d] or [d]"
    raise InputMismatchError(msg)


_UNIT = re.compile(r"^(?P<layer>.+?):(?P<ch>\d+)(?:@.*)?$")


def unit_channel(unit: str) -> tuple[str, int] | None:
    """``"conv2:5"`` (or ``"conv2:5@3,4"``) -> ``("conv2", 5)``; None for other names."""
    m = _UNIT.match(unit)
    return (m["layer"], int(m["ch"])) if m else None


class TuningWidget(_Snapshot, anywidget.AnyWidget):
    """Tuning curves of several units; see the module docstring. ``visible`` (the legend's toggles)
    and ``selected`` (the clicked stimulus, -1 for none) are kept in sync with the view."""

    _esm = TUNING_BUNDLE if TUNING_BUNDLE.is_file() else _missing("tuning")

    title = t.Unicode("").tag(sync=True)
    param = t.Unicode("").tag(sync=True)
    unit_of_param = t.Unicode("").tag(sync=True)
    values = t.Dict().tag(sync=True)
    units = t.List(t.Unicode()).tag(sync=True)
    activations = t.Dict().tag(sync=True)
    stimuli = t.Dict(allow_none=True, default_value=None).tag(sync=True)
    prompts = t.List(t.Unicode()).tag(sync=True)
    visible = t.List(t.Bool()).tag(sync=True)
    selected = t.Int(-1).tag(sync=True)
    has_detail = t.Bool(False).tag(sync=True)
    note = t.Unicode("").tag(sync=True)

    def __init__(self, result: Any, *, thumb: int = 48, title: str | None = None, snapshot: bool = True) -> None:
        acts = _numpy(result.activations)
        vals = _numpy(result.values).reshape(-1)
        units = [str(u) for u in result.units]
        if acts.shape != (len(units), vals.shape[0]):
            msg = (f"activations of shape {list(acts.shape)} do not match {len(units)} units x "
                   f"{vals.shape[0]} parameter values")
            raise InputMismatchError(msg)
        stim, prompts, stimuli = result.stimuli, [], None
        if isinstance(stim, (list, tuple)):
            prompts = [str(s) for s in stim]
        elif stim is not None:
            rgb = shrink(to_rgb(stim), thumb)
            stimuli = encode(rgb).to_wire()
        self._result = result
        self.snapshot = snapshot
        meta = getattr(result, "meta", {}) or {}
        note = str(meta.get("note", "")) if isinstance(meta, dict) else ""
        super().__init__(
            title=title or f"tuning: {result.param}", param=result.param, unit_of_param=result.unit_of_param,
            values=encode(vals.astype(np.float32)).to_wire(), units=units,
            activations=encode(acts.astype(np.float32)).to_wire(), stimuli=stimuli, prompts=prompts,
            visible=[True] * len(units), has_detail=result.detail is not None, note=note,
        )
        self.state_model()  # shapes agree (prompts / stimuli per value)
        reply_unknown_commands(self, {"open_stimulus"})
        track(self, "view")

    @property
    def result(self) -> Any:
        return self._result

    @t.validate("selected")
    def _valid_selected(self, proposal: dict[str, Any]) -> int:
        v = int(proposal["value"])
        n = int(self.values["shape"][0]) if self.values else 0
        if v != -1 and not 0 <= v < n:
            msg = f"stimulus {v} is out of range: {n} stimuli (0..{n - 1})"
            raise SiteIndexError(msg)
        return v

    @t.validate("visible")
    def _valid_visible(self, proposal: dict[str, Any]) -> list[bool]:
        v = list(proposal["value"])
        if self.units and len(v) != len(self.units):
            msg = f"visible needs one flag per unit ({len(self.units)}), got {len(v)}"
            raise t.TraitError(msg)
        return v

    def stimulus_detail(self, index: int, top_k: int = 12) -> StimulusReply:
        """What clicking stimulus ``index`` shows: each layer's activations, one value per channel."""
        req = OpenStimulusRequest(index=index, top_k=top_k)
        n = int(self.values["shape"][0])
        if not req.index < n:
            msg = f"stimulus {req.index} is out of range: {n} stimuli (0..{n - 1})"
            raise SiteIndexError(msg)
        detail = self._result.detail
        if detail is None:
            msg = ("this tuning result has no per-stimulus activations to open (its detail is None): "
                   "compute it with interp_widget.tuning(model, ...) to click a point")
            raise InputMismatchError(msg)
        acts_of = detail(req.index)
        if not isinstance(acts_of, Mapping):
            msg = f"detail({req.index}) must return a dict layer -> activation tensor, got {type(acts_of).__name__}"
            raise TypeError(msg)
        layers = []
        for layer, tensor in acts_of.items():
            vec, how = reduce_activation(tensor)
            top = np.argsort(-np.nan_to_num(vec, nan=-np.inf), kind="stable")[: req.top_k]
            marked = sorted({c for u in self.units if (p := unit_channel(u)) and p[0] == layer
                             for c in [p[1]] if c < vec.shape[0]})
            layers.append(LayerDetail(
                layer=str(layer), shape=list(np.shape(_numpy(tensor))), reduce=how,
                values=encode(vec.astype(np.float32)) if vec.shape[0] <= MAX_SENT_CHANNELS else None,
                top=[int(i) for i in top], top_values=[float(vec[i]) for i in top], marked=marked))
        value = float(_numpy(self._result.values).reshape(-1)[req.index])
        label = self.prompts[req.index] if self.prompts else f"{self.param} = {value:g} {self.unit_of_param}".strip()
        acts = _numpy(self._result.activations)[:, req.index]
        self.selected = req.index
        return StimulusReply(index=req.index, value=value, label=label, units=[float(a) for a in acts], layers=layers)

    @command_for(TuningEnvelope)
    def open_stimulus(self, msg: dict[str, Any]) -> StimulusReply:
        """The activations of the units' layers on one stimulus (a clicked point)."""
        req = OpenStimulusRequest.model_validate(msg)
        return self.stimulus_detail(req.index, req.top_k)

    def state_model(self) -> TuningState:
        return TuningState.model_validate({k: getattr(self, k) for k in TuningState.model_fields})

    def snapshot_html(self) -> str:
        """Self-contained HTML of the plot (hover works; clicking needs the kernel)."""
        state = self.state_model()
        doc = StaticTuning(state=state).model_dump()
        vals, acts = _numpy(self._result.values).reshape(-1), _numpy(self._result.activations)
        peaks = vals[np.nan_to_num(acts, nan=-np.inf).argmax(axis=1)]
        lines = [f"{html.escape(u)}: peak at {html.escape(self.param)} {float(p):g} {html.escape(self.unit_of_param)}"
                 for u, p in zip(self.units, peaks, strict=True)]
        fallback = f"<div>{html.escape(self.title)}</div><div>{'<br>'.join(lines)}</div>"
        if state.stimuli is not None:
            from interp_widget.schema import decode

            fallback = _png_img(mosaic(decode(state.stimuli), cols=24), "stimuli") + fallback
        return _embed("tuning", doc, fallback, TUNING_BUNDLE)

    def __repr__(self) -> str:
        n = int(self.values["shape"][0]) if self.values else 0
        return f"<TuningWidget {self.param!r}: {len(self.units)} unit(s) x {n} stimuli; selected {self.selected}>"


# --- public functions ---------------------------------------------------------------------------------
def feature_grid(result: Any, *, layer: int | str = 0, thumb: int = 64, snapshot: bool = True) -> VisionGridWidget:
    """An image grid of a LayerGrid (one layer at a time, a selector), a FeatureVisResult or a
    DatasetExamples; click an image to enlarge it. ``layer``: the layer shown first (index or name)."""
    return VisionGridWidget(result, group=layer, thumb=thumb, snapshot=snapshot)


def tuning_widget(result: Any, *, thumb: int = 48, title: str | None = None, snapshot: bool = True) -> TuningWidget:
    """The joint tuning view of a TuningCurves result: each unit's activation against the parameter;
    hover a point for its stimulus, click it for the activations on that stimulus."""
    return TuningWidget(result, thumb=thumb, title=title, snapshot=snapshot)


def vision_widget(result: Any) -> VisionGridWidget | TuningWidget:
    """The widget a vision result displays as."""
    if type(result).__name__ == "TuningCurves":
        return TuningWidget(result)
    return VisionGridWidget(result)


def result_mimebundle(result: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """What a vision result displays as: its widget, a static snapshot, and its repr as text."""
    return widget_bundle(vision_widget(result), result)
