"""The vision widgets: the image grid (layer overview, feature visualisations, dataset examples) and the
tuning-curve widget, built from result objects with seeded synthetic tensors. Traits and binary buffers,
command replies (checked against torch references), error replies for bad and malformed messages
(the widget keeps working), display of results as widgets, and the static snapshot."""

from __future__ import annotations

import json
import re
import types
from typing import Any

import numpy as np
import pytest
import torch
import traitlets
from _widget_comm import command

import interp_widget as iw
from interp_widget.analysis.vision.results import DatasetExamples, FeatureVisResult, LayerGrid, TuningCurves
from interp_widget.errors import InputMismatchError, SiteIndexError
from interp_widget.schema import decode, pack
from interp_widget.schema.vision import TuningState, VisionGridState
from interp_widget.widgets._display import register
from interp_widget.widgets.attention import SNAPSHOT_MIME
from interp_widget.widgets.vision import (
    GRID_BUNDLE,
    TUNING_BUNDLE,
    TuningWidget,
    VisionGridWidget,
    reduce_activation,
    result_mimebundle,
    unit_channel,
)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def layer_grid(size: int = 16) -> LayerGrid:
    g = _gen(0)
    return LayerGrid(
        layers=["conv1", "layer1.0.conv2"],
        images={"conv1": torch.rand(6, 3, size, size, generator=g), "layer1.0.conv2": torch.rand(10, 3, size, size, generator=g)},
        channels={"conv1": list(range(6)), "layer1.0.conv2": [3, 5, 7, 9, 11, 13, 15, 17, 19, 21]},
        seed=0,
    )


def tuning_curves(*, detail: bool = True, text: bool = False) -> TuningCurves:
    g = _gen(1)
    values = torch.arange(0, 180, 15.0)  # 12 orientations
    acts = torch.rand(3, 12, generator=g)
    layer_acts = {i: {"conv1": torch.rand(8, 5, 5, generator=g), "conv2": torch.rand(1, 16, 3, 3, generator=g)} for i in range(12)}
    stimuli: Any = [f"The angle is {int(v)}" for v in values] if text else torch.rand(12, 3, 32, 32, generator=g)
    return TuningCurves(param="orientation", unit_of_param="degrees", values=values, units=["conv1:2", "conv1:5", "conv2:0"],
                        activations=acts, stimuli=stimuli, detail=(lambda i: layer_acts[i]) if detail else None)


def rgb(images: torch.Tensor) -> np.ndarray:
    """The reference uint8 conversion: [n, 3, H, W] in [0, 1] -> [n, H, W, 3]."""
    return (images.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


# --- image grid -----------------------------------------------------------------------------------------
def test_layer_grid_state_is_binary_and_exact() -> None:
    res = layer_grid()
    w = iw.feature_grid(res)
    assert isinstance(w, VisionGridWidget) and w.kind == "layer_grid"
    assert [g["name"] for g in w.groups] == ["conv1", "layer1.0.conv2"]
    assert w.groups[1]["labels"][:3] == ["ch 3", "ch 5", "ch 7"]
    assert w.groups[0]["thumb"] == [16, 16] and w.groups[0]["full"] == [16, 16]
    assert w.images["group"] == 0
    np.testing.assert_array_equal(decode(w.images["images"]), rgb(res.images["conv1"]))
    VisionGridState.model_validate(w.state_model().model_dump())
    stripped, paths, buffers = pack(w.get_state())
    assert ["images", "images", "data"] in paths and sum(map(len, buffers)) >= 6 * 16 * 16 * 3
    assert len(json.dumps({k: v for k, v in stripped.items() if k != "_esm"})) < 2_000  # no pixels as JSON


def test_large_images_get_box_filtered_thumbnails_and_full_size_on_request() -> None:
    res = layer_grid(size=128)
    w = VisionGridWidget(res, thumb=64)
    assert w.groups[0]["thumb"] == [64, 64] and w.groups[0]["full"] == [128, 128]
    full = torch.from_numpy(rgb(res.images["conv1"])).float().permute(0, 3, 1, 2)
    ref = torch.nn.functional.avg_pool2d(full, 2).round().permute(0, 2, 3, 1).numpy()
    np.testing.assert_array_equal(decode(w.images["images"]), ref)
    reply = command(w, "get_image", {"group": 1, "index": 4})
    assert reply["ok"] is True and reply["label"] == "ch 11"
    np.testing.assert_array_equal(decode(reply["image"])[0], rgb(res.images["layer1.0.conv2"])[4])


def test_get_group_fetches_a_layer() -> None:
    res = layer_grid()
    w = VisionGridWidget(res, group="layer1.0.conv2")
    assert w.group == 1 and w.images["group"] == 1
    reply = command(w, "get_group", {"group": 0})
    assert reply["ok"] is True and reply["group"] == 0
    np.testing.assert_array_equal(decode(reply["images"]), rgb(res.images["conv1"]))


@pytest.mark.parametrize(("name", "msg", "type_name", "pattern"), [
    ("get_group", {"group": 2}, "SiteIndexError", r"layer 2 is out of range: 2 layers \(0\.\.1\)"),
    ("get_image", {"group": 0, "index": 6}, "SiteIndexError", r"image 6 is out of range: conv1 has 6 images \(0\.\.5\)"),
    ("get_group", {"group": "conv1"}, "ValidationError", r"invalid GetGroupRequest: group"),
    ("get_group", {}, "ValidationError", r"group: Field required"),
    ("get_image", {"group": 0, "index": -1}, "ValidationError", r"index"),
    ("get_group", ["not", "an", "object"], "TypeError", r"get_group expects an object, got list"),
    ("get_group", {"group": 0, "extra": 1}, "ValidationError", r"extra"),
    ("explode", {}, "LookupError", r"unknown command 'explode'; this widget has: get_group, get_image"),
])
def test_grid_errors_reply_and_the_widget_keeps_working(name: str, msg: Any, type_name: str, pattern: str) -> None:
    w = VisionGridWidget(layer_grid())
    reply = command(w, name, msg)
    assert reply["ok"] is False and reply["error"]["type_name"] == type_name
    assert re.search(pattern, reply["error"]["message"]), reply["error"]["message"]
    assert command(w, "get_group", {"group": 1})["ok"] is True


def test_grid_traits_are_validated() -> None:
    w = VisionGridWidget(layer_grid())
    with pytest.raises(SiteIndexError, match=r"layer 5 is out of range: 2 layers"):
        w.group = 5
    with pytest.raises(SiteIndexError, match=r"image 6 is out of range"):
        w.selected = 6
    w.selected = 5
    assert (w.group, w.selected) == (0, 5)
    with pytest.raises(SiteIndexError, match="unknown layer 'conv9'"):
        VisionGridWidget(layer_grid(), group="conv9")
    bad = layer_grid()
    bad.channels["conv1"] = [0, 1]
    with pytest.raises(InputMismatchError, match="conv1: 6 images but 2 channel indices"):
        VisionGridWidget(bad)


def test_feature_vis_and_dataset_examples_show_as_grids() -> None:
    g = _gen(2)
    fv = FeatureVisResult(images=torch.rand(4, 3, 24, 24, generator=g), labels=["conv2:5", "conv2:5", "conv2:7", "conv2:5 + conv3:1"],
                          losses=torch.rand(4, 30, generator=g), seed=3)
    w = VisionGridWidget(fv)
    assert w.kind == "feature_vis" and w.groups[0]["labels"] == fv.labels and "30 steps · seed 3" in w.note
    assert w.groups[0]["values"] == pytest.approx(fv.losses[:, -1].tolist())
    grey = torch.rand(5, 1, 12, 12, generator=g)
    ds = DatasetExamples(unit="conv2:5", images=grey, activations=torch.tensor([5.0, 4, 3, 2, 1]), indices=torch.tensor([10, 3, 7, 1, 0]),
                         boxes=torch.zeros(5, 4))
    w2 = VisionGridWidget(ds)
    assert w2.kind == "dataset_examples" and w2.groups[0]["labels"] == ["#10", "#3", "#7", "#1", "#0"]
    assert w2.groups[0]["values"] == [5.0, 4.0, 3.0, 2.0, 1.0] and "crops" in w2.note
    np.testing.assert_array_equal(decode(w2.images["images"]), rgb(grey.repeat(1, 3, 1, 1)))
    with pytest.raises(TypeError, match="cannot show a dict"):
        VisionGridWidget({})


# --- tuning curves --------------------------------------------------------------------------------------
def test_tuning_state() -> None:
    res = tuning_curves()
    w = iw.tuning_widget(res, thumb=16)
    assert isinstance(w, TuningWidget)
    np.testing.assert_array_equal(decode(w.values), res.values.numpy())
    np.testing.assert_array_equal(decode(w.activations), res.activations.numpy())
    stim = decode(w.stimuli)
    assert stim.shape == (12, 16, 16, 3) and stim.dtype == np.uint8
    full = torch.from_numpy(rgb(res.stimuli)).float().permute(0, 3, 1, 2)
    np.testing.assert_array_equal(stim, torch.nn.functional.avg_pool2d(full, 2).round().permute(0, 2, 3, 1).numpy())
    assert w.visible == [True, True, True] and w.selected == -1 and w.has_detail and w.prompts == []
    TuningState.model_validate(w.state_model().model_dump())
    _, paths, _ = pack(w.get_state())
    assert {("values", "data"), ("activations", "data"), ("stimuli", "data")} <= {tuple(p) for p in paths}
    text = TuningWidget(tuning_curves(text=True))
    assert text.stimuli is None and text.prompts[2] == "The angle is 30"


def test_open_stimulus_reply_matches_torch() -> None:
    res = tuning_curves()
    w = TuningWidget(res)
    reply = command(w, "open_stimulus", {"index": 4, "top_k": 5})
    assert reply["ok"] is True and reply["index"] == 4 and reply["value"] == 60.0
    assert reply["label"] == "orientation = 60 degrees"
    assert reply["units"] == pytest.approx(res.activations[:, 4].tolist())
    layers = {d["layer"]: d for d in reply["layers"]}
    acts = res.detail(4)  # type: ignore[misc]
    c1 = acts["conv1"].amax(dim=(1, 2))
    np.testing.assert_allclose(decode(layers["conv1"]["values"]), c1.numpy(), rtol=0, atol=0)
    assert layers["conv1"]["top"] == c1.argsort(descending=True)[:5].tolist()
    assert layers["conv1"]["top_values"] == pytest.approx(c1.sort(descending=True).values[:5].tolist())
    assert layers["conv1"]["marked"] == [2, 5] and layers["conv1"]["reduce"] == "max over 5x5 positions"
    c2 = acts["conv2"][0].amax(dim=(1, 2))
    np.testing.assert_allclose(decode(layers["conv2"]["values"]), c2.numpy(), rtol=0, atol=0)
    assert layers["conv2"]["marked"] == [0] and layers["conv2"]["shape"] == [1, 16, 3, 3]
    assert w.selected == 4  # Python sees the clicked stimulus
    text = TuningWidget(tuning_curves(text=True))
    assert command(text, "open_stimulus", {"index": 2})["label"] == "The angle is 30"


@pytest.mark.parametrize(("msg", "type_name", "pattern"), [
    ({"index": 12}, "SiteIndexError", r"stimulus 12 is out of range: 12 stimuli \(0\.\.11\)"),
    ({"index": -1}, "ValidationError", r"invalid OpenStimulusRequest: index"),
    ({"index": 0, "top_k": 0}, "ValidationError", r"top_k"),
    ({"idx": 1}, "ValidationError", r"index: Field required"),
    ("3", "TypeError", r"open_stimulus expects an object, got str"),
])
def test_tuning_errors_reply_and_the_widget_keeps_working(msg: Any, type_name: str, pattern: str) -> None:
    w = TuningWidget(tuning_curves())
    reply = command(w, "open_stimulus", msg)
    assert reply["ok"] is False and reply["error"]["type_name"] == type_name
    assert re.search(pattern, reply["error"]["message"]), reply["error"]["message"]
    assert command(w, "open_stimulus", {"index": 1})["ok"] is True


def test_no_detail_is_a_clear_error_reply() -> None:
    w = TuningWidget(tuning_curves(detail=False))
    assert w.has_detail is False
    reply = command(w, "open_stimulus", {"index": 0})
    assert reply["error"]["type_name"] == "InputMismatchError"
    assert "no per-stimulus activations to open (its detail is None)" in reply["error"]["message"]
    assert w.selected == -1
    wrong = tuning_curves()
    wrong.detail = lambda i: torch.zeros(8, 5, 5)
    reply = command(TuningWidget(wrong), "open_stimulus", {"index": 3})
    assert reply["error"]["type_name"] == "TypeError"
    assert reply["error"]["message"] == "detail(3) must return a dict layer -> activation tensor, got Tensor"
    failing = tuning_curves()
    failing.detail = lambda i: {"conv1": torch.zeros(2, 3, 4, 5, 6)}
    reply = command(TuningWidget(failing), "open_stimulus", {"index": 0})
    assert reply["error"]["type_name"] == "InputMismatchError" and "shape [2, 3, 4, 5, 6]" in reply["error"]["message"]


def test_tuning_inputs_and_traits_are_validated() -> None:
    bad = tuning_curves()
    bad.activations = torch.zeros(2, 12)
    with pytest.raises(InputMismatchError, match=r"\[2, 12\] do not match 3 units x 12 parameter values"):
        TuningWidget(bad)
    short = tuning_curves(text=True)
    short.stimuli = ["a", "b"]
    with pytest.raises(ValueError, match="2 prompts for 12 parameter values"):
        TuningWidget(short)
    w = TuningWidget(tuning_curves())
    with pytest.raises(traitlets.TraitError, match="one flag per unit"):
        w.visible = [True]
    with pytest.raises(SiteIndexError, match="stimulus 20 is out of range"):
        w.selected = 20


def test_reduce_activation_and_unit_names() -> None:
    x = torch.arange(24.0).reshape(2, 3, 4)
    v, how = reduce_activation(x)
    np.testing.assert_array_equal(v, x.amax(dim=(1, 2)).numpy())
    assert how == "max over 3x4 positions"
    v, how = reduce_activation(torch.tensor([[1.0, 5.0], [3.0, 2.0]]))
    assert v.tolist() == [3.0, 5.0] and how == "max over 2 positions"
    assert reduce_activation(torch.tensor([[1.0, 2.0]]))[0].tolist() == [1.0, 2.0]
    assert unit_channel("layer1.0.conv2:17") == ("layer1.0.conv2", 17)
    assert unit_channel("conv2:5@3,4") == ("conv2", 5)
    assert unit_channel("mlp") is None


# --- display and snapshots -----------------------------------------------------------------------------
def test_results_display_as_vision_widgets() -> None:
    from IPython.core.formatters import DisplayFormatter
    from ipywidgets.widgets.widget import _instances

    shell = types.SimpleNamespace(display_formatter=DisplayFormatter())
    assert register(shell)
    for res, cls in ((layer_grid(), VisionGridWidget), (tuning_curves(), TuningWidget)):
        data, _ = shell.display_formatter.format(res)
        assert data["text/plain"] == repr(res)
        w = _instances[data["application/vnd.jupyter.widget-view+json"]["model_id"]]
        assert isinstance(w, cls) and w.result is res


def _embedded(html: str) -> dict[str, Any]:
    m = re.search(r'<script type="application/json" class="iw-static-data">(.*?)</script>', html, re.S)
    assert m
    return json.loads(m.group(1).replace("<\\/", "</"))


@pytest.mark.skipif(not (GRID_BUNDLE.is_file() and TUNING_BUNDLE.is_file()), reason="front end not built (npm run build)")
def test_snapshots_are_self_contained() -> None:
    res = layer_grid()
    data, _ = result_mimebundle(res)
    assert data[SNAPSHOT_MIME] == {"version": 1, "html": "text/html"}
    html = data["text/html"]
    assert 'data-iw-static="vision_grid"' in html and '<script type="module">' in html
    assert "data:image/png;base64," in html  # the script-free fallback
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), "the snapshot must not load anything"
    doc = _embedded(html)
    assert doc["kind"] == "vision_grid" and len(doc["groups"]) == 2
    np.testing.assert_array_equal(decode(doc["groups"][1]), rgb(res.images["layer1.0.conv2"]))
    small = VisionGridWidget(res, snapshot_budget=100)  # only the layer shown fits
    assert [g is None for g in _embedded(small.snapshot_html())["groups"]] == [False, True]

    tc = tuning_curves()
    html = TuningWidget(tc)._repr_mimebundle_()[0]["text/html"]
    doc = _embedded(html)
    assert doc["kind"] == "tuning" and 'data-iw-static="tuning"' in html
    np.testing.assert_array_equal(decode(doc["state"]["activations"]), tc.activations.numpy())
    peak = float(tc.values[tc.activations[0].argmax()])
    assert f"conv1:2: peak at orientation {peak:g} degrees" in html
    assert "text/html" not in TuningWidget(tc, snapshot=False)._repr_mimebundle_()[0]
