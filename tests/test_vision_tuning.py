"""Tuning curves against brute-force loops (vision: one forward hook per stimulus; language: TransformerLens)."""

from __future__ import annotations

import pytest
import torch
from _vision import one_thread  # noqa: F401 - the fixture

import interp_widget as iw
from interp_widget.analysis.vision import stimuli
from interp_widget.errors import SiteIndexError, UnknownSiteError

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model() -> iw.Model:
    return iw.load("shapes-cnn")


def _brute(net: torch.nn.Module, layer: str, image: torch.Tensor) -> torch.Tensor:
    out = {}
    h = dict(net.named_modules())[layer].register_forward_hook(lambda _m, _i, o: out.setdefault("a", o))
    try:
        with torch.no_grad():
            net(image[None])
    finally:
        h.remove()
    return out["a"][0]


def test_vision_tuning_matches_a_loop(model: iw.Model) -> None:
    values = [0, 30, 60, 90, 120, 150]
    tc = iw.tuning(model, ["conv2:5", "conv1:3", "conv2:5@8,8"], "grating", values, frequency=0.16, batch=4)
    assert tc.units == ["conv2:5", "conv1:3", "conv2:5@8,8"] and tc.param == "orientation"
    assert tc.activations.shape == (3, 6) and tc.stimuli.shape == (6, 3, 32, 32)
    for i, v in enumerate(values):
        img = stimuli.grating(v, 0.16, size=32)
        assert torch.allclose(tc.stimuli[i], img)
        a2, a1 = _brute(model.raw, "conv2", img), _brute(model.raw, "conv1", img)
        assert torch.allclose(tc.activations[0, i], a2[5].max(), atol=1e-5)
        assert torch.allclose(tc.activations[1, i], a1[3].max(), atol=1e-5)
        assert torch.allclose(tc.activations[2, i], a2[5, 8, 8], atol=1e-5)
    assert torch.equal(tc.peaks(), tc.values[tc.activations.argmax(1)])
    detail = tc.detail(2)
    assert set(detail) == {"conv1", "conv2"}
    assert torch.allclose(detail["conv2"], _brute(model.raw, "conv2", tc.stimuli[2]), atol=1e-5)


def test_reductions_and_callable_stimuli(model: iw.Model) -> None:
    centre = iw.tuning(model, "conv2:0", "line", [0, 90], reduce="centre")
    mean = iw.tuning(model, "conv2:0", "line", [0, 90], reduce="mean")
    for i, v in enumerate([0, 90]):
        a = _brute(model.raw, "conv2", stimuli.line(v))[0]
        assert torch.allclose(centre.activations[0, i], a[8, 8], atol=1e-5)
        assert torch.allclose(mean.activations[0, i], a.mean(), atol=1e-5)
    custom = iw.tuning(model.raw, ["conv3:1"], lambda r: stimuli.circle(r), [4, 8, 12], param="radius")
    assert custom.param == "radius" and custom.activations.shape == (1, 3)
    pos = iw.tuning(model, ["conv2:0"], "line", [-6, 0, 6], param="x", orientation=90)
    assert pos.unit_of_param == "px" and not torch.equal(pos.stimuli[0], pos.stimuli[2])


def test_vision_tuning_errors(model: iw.Model) -> None:
    with pytest.raises(SiteIndexError, match=r"channel 40 is out of range: conv2 has 32 channels \(0\.\.31\)"):
        iw.tuning(model, ["conv2:40"], "line", [0])
    with pytest.raises(UnknownSiteError, match="no layer 'conv7'"):
        iw.tuning(model, ["conv7:1"], "line", [0])
    with pytest.raises(ValueError, match="unknown stimulus 'zigzag'"):
        iw.tuning(model, ["conv2:1"], "zigzag", [0])
    with pytest.raises(ValueError, match="needs the parameter values"):
        iw.tuning(model, ["conv2:1"], "line")


def test_language_model_template_and_positions() -> None:
    lm = iw.load("induction-2l")
    ht = lm.raw
    units = ["blocks.1.hook_resid_post:7", "blocks.0.attn.hook_z:33", "logits:5"]
    tc = iw.tuning(lm, units, "A B C {}", ["D", "E", "Q"])
    assert tc.param == "token" and tc.stimuli == ["A B C D", "A B C E", "A B C Q"]
    for i, prompt in enumerate(tc.stimuli):
        logits, cache = ht.run_with_cache(prompt)
        assert torch.allclose(tc.activations[0, i], cache["blocks.1.hook_resid_post"][0, -1, 7], atol=1e-4)
        assert torch.allclose(tc.activations[1, i], cache["blocks.0.attn.hook_z"][0, -1].flatten()[33], atol=1e-4)
        assert torch.allclose(tc.activations[2, i], logits[0, -1, 5], atol=1e-4)
    assert tc.detail is not None and tc.detail(1)["blocks.1.hook_resid_post"].shape[-1] == ht.cfg.d_model
    nums = iw.tuning(lm, ["blocks.1.hook_resid_post:7"], "1 2 {}", [3, 4, 10])
    assert nums.param == "number" and nums.values.tolist() == [3.0, 4.0, 10.0]  # "10" is longer: one run each
    _, cache = ht.run_with_cache("1 2 10")
    assert torch.allclose(nums.activations[0, 2], cache["blocks.1.hook_resid_post"][0, -1, 7], atol=1e-4)
    pos = iw.tuning(lm, ["blocks.1.hook_resid_post:7"], "ABCDABCD", param="position")
    _, cache = ht.run_with_cache("ABCDABCD")
    assert torch.allclose(pos.activations[0], cache["blocks.1.hook_resid_post"][0, :, 7], atol=1e-4)
    assert pos.stimuli[-1].endswith("ABCDABCD")
    with pytest.raises(SiteIndexError, match="index 999 is out of range"):
        iw.tuning(lm, ["blocks.1.hook_resid_post:999"], "A {}", ["B"])
