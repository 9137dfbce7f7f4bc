"""shapes-cnn: the model card recomputed from the weights, and the issue's done-when checks.

Non-circular by construction: the card's preferred orientation of a unit comes from the conv1
*weights* (power spectrum of the kernel, no stimulus) or, for conv2, from full-field *gratings*;
here the tuning curve is measured with *line* stimuli through ``iw.tuning``, and the feature
visualisation's orientation is read off the optimised image with a structure tensor.
"""

from __future__ import annotations

import json

import pytest
import torch
from _vision import one_thread  # noqa: F401 - the fixture

import interp_widget as iw
from interp_widget import zoo
from interp_widget.analysis.vision.orientation import angle_diff, dominant_orientation
from interp_widget.analysis.vision.stimuli import ShapesDataset
from interp_widget.zoo import shapes_cnn
from interp_widget.zoo.shapes_cnn import card as card_mod

pytestmark = pytest.mark.usefixtures("one_thread")

TOL_DEG = 15.0


@pytest.fixture(scope="module")
def card() -> dict:
    return json.loads((shapes_cnn.HERE / "card.json").read_text())


@pytest.fixture(scope="module")
def model() -> iw.Model:
    return iw.load("shapes-cnn")


@pytest.fixture(scope="module")
def oriented(card: dict) -> list[dict]:
    units = [r for r in card["orientation"] if r["tuned"]]
    assert len(units) >= 8, "the card should name a family of orientation-tuned units"
    return units


def _known(row: dict) -> float:
    return float(row.get("weight_orientation", row["grating_orientation"]))


def test_zoo_entry(model: iw.Model) -> None:
    assert "shapes-cnn" in zoo.names()
    assert isinstance(model.raw, torch.nn.Module) and not model.raw.training
    assert (shapes_cnn.WEIGHTS.stat().st_size) < 200_000
    assert zoo.card("shapes-cnn").startswith("# shapes-cnn")
    x, y = ShapesDataset(200, seed=123).batch(0, 200)
    with torch.no_grad():
        acc = (model.raw(x).argmax(-1) == y).float().mean()
    assert acc > 0.9  # fresh images from an unseen seed


def test_card_recomputed_from_weights(card: dict, model: iw.Model) -> None:
    fresh = card_mod.measure(model.raw)
    for key in ("orientation", "curvature"):
        assert [r["unit"] for r in fresh[key]] == [r["unit"] for r in card[key]]
        for a, b in zip(fresh[key], card[key], strict=True):
            assert a["tuned"] == b["tuned"], a["unit"]
            for k, v in b.items():
                if isinstance(v, float):
                    assert a[k] == pytest.approx(v, abs=2e-3), (a["unit"], k)
    assert (shapes_cnn.HERE / "MODEL_CARD.md").read_text() == card_mod.markdown(card)
    named = (shapes_cnn.HERE / "MODEL_CARD.md").read_text()
    assert all(f"`{r['unit']}`" in named for r in card["orientation"] if r["tuned"])


def test_conv1_weights_and_gratings_agree(card: dict) -> None:
    rows = [r for r in card["orientation"] if r["tuned"] and r["unit"].startswith("conv1")]
    assert rows
    for r in rows:
        assert float(angle_diff(r["weight_orientation"], r["grating_orientation"])) <= TOL_DEG


def _line_tuning(model: iw.Model, rows: list[dict]) -> torch.Tensor:
    """Peaks of line tuning curves; the bar is half the unit's preferred grating period wide."""
    peaks = []
    for r in rows:
        width = 0.5 / r["grating_frequency"]
        tc = iw.tuning(model, [r["unit"]], "line", list(range(0, 180, 5)), width=width)
        assert tc.param == "orientation" and tc.unit_of_param == "degrees"
        peaks.append(tc.peaks()[0])
    return torch.stack(peaks)


def test_tuning_peak_matches_known_orientation(model: iw.Model, oriented: list[dict]) -> None:
    peaks = _line_tuning(model, oriented)
    diffs = angle_diff(torch.tensor([_known(r) for r in oriented]), peaks)
    assert diffs.max() <= TOL_DEG, {r["unit"]: float(d) for r, d in zip(oriented, diffs, strict=True) if d > TOL_DEG}
    # the family covers the circle: preferred orientations spread over at least 4 of 6 30-degree bins
    assert len({int(p // 30) for p in peaks.tolist()}) >= 4


def test_feature_vis_orientation_matches_tuning_peak(model: iw.Model, oriented: list[dict]) -> None:
    peaks = _line_tuning(model, oriented)
    # A conv layer is linear before its ReLU, so the spatial mean of one of its channels ignores how its
    # input is arranged in space: a conv1 channel's mean depends only on the image's mean, a conv2
    # channel's only on the means of the pool1 channels (up to the borders), not on the orientation its
    # 3x3 kernel picks out (conv2:22's pre-ReLU mean prefers ~70-degree gratings, its spatial max the
    # card's 52.5). So every unit's visualisation targets its channel after the ReLU (relu1 / relu2).
    objectives = [r["unit"].replace("conv1:", "relu1:").replace("conv2:", "relu2:") for r in oriented]
    res = iw.feature_vis(model, objectives, size=48, steps=96, seed=0)
    assert res.images.shape == (len(oriented), 3, 48, 48)
    assert (res.losses[:, -1] > res.losses[:, 0]).all()
    measured = torch.tensor([dominant_orientation(img)[0] for img in res.images])
    diffs = angle_diff(measured, peaks)
    off = {r["unit"]: (round(float(m), 1), float(p)) for r, m, p, d in
           zip(oriented, measured, peaks, diffs, strict=True) if d > TOL_DEG}
    # Measured on the shipped weights: all 35 units agree within 15 degrees (median ~4, worst ~13). The
    # worst (conv2:16, 22, 25) prefer orientations that shift with spatial frequency (conv2:25's relu2
    # mean: 17.5 degrees at 0.12 cycles/px, 47.5 at 0.3), so a full-field optimum sits off the bar peak.
    assert not off, off
    assert float(diffs.median()) <= 7.5


def test_curvature_units_prefer_curves_through_tuning(model: iw.Model, card: dict) -> None:
    rows = [r for r in card["curvature"] if r["tuned"]]
    assert rows, "the card should name curvature-tuned units"
    for r in rows:
        tc = iw.tuning(model, [r["unit"]], "curve", [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3],
                       orientation=r["curve_orientation"], length=20.0)
        assert tc.param == "curvature"
        blank = iw.tuning(model, [r["unit"]], "line", [0.0], fg=0.0).activations[0, 0]  # a black image
        resp = tc.activations[0] - blank
        assert float(tc.peaks()[0]) >= card["settings"]["min_curvature"]
        assert resp.max() > 1.2 * resp[0].clamp_min(1e-6)
