"""Stimuli and orientation measurement: known geometry in, the same numbers out."""

from __future__ import annotations

import math

import pytest
import torch
from _vision import one_thread  # noqa: F401 - the fixture

from interp_widget.analysis.vision import stimuli
from interp_widget.analysis.vision.orientation import (
    angle_diff,
    circular_mean,
    dominant_orientation,
    kernel_orientation,
)

pytestmark = pytest.mark.usefixtures("one_thread")

ANGLES = [0.0, 12.0, 30.0, 45.0, 67.5, 90.0, 110.0, 135.0, 170.0]


def test_angle_diff_is_mod_180() -> None:
    assert float(angle_diff(10, 170)) == pytest.approx(20)
    assert float(angle_diff(0, 180)) == 0
    assert float(angle_diff(-30, 150)) == 0
    assert float(angle_diff(5, 95)) == 90
    assert circular_mean(torch.tensor([175.0, 5.0])) == pytest.approx(0.0, abs=1e-4) or \
        circular_mean(torch.tensor([175.0, 5.0])) == pytest.approx(180.0, abs=1e-4)


@pytest.mark.parametrize("theta", ANGLES)
def test_structure_tensor_recovers_drawn_orientation(theta: float) -> None:
    for img in (stimuli.grating(theta, 0.15, size=48), stimuli.line(theta, size=48), stimuli.curve(0.0, theta, size=48)):
        ori, coherence = dominant_orientation(img)
        assert float(angle_diff(ori, theta)) < 2.0 and coherence > 0.9
    # a kernel cut from a grating has the grating's orientation and frequency
    ori, freq = kernel_orientation(stimuli.grating(theta, 0.2, size=7)[0] - 0.5, pad=128)
    assert float(angle_diff(ori, theta)) < 8.0 and freq == pytest.approx(0.2, abs=0.05)


def test_orientation_convention_on_screen() -> None:
    img = stimuli.line(45.0, size=21, width=1.0)[0]
    # 45 degrees runs from bottom-left to top-right: rows grow downward
    assert img[0, 20] > 0.5 and img[20, 0] > 0.5 and img[0, 0] < 0.1 and img[20, 20] < 0.1
    assert stimuli.line(90.0, size=21)[0, :, 10].min() > 0.9  # vertical through the centre column


def test_curve_geometry() -> None:
    kappa, size = 0.1, 64
    img = stimuli.curve(kappa, 0.0, size=size, width=1.0, length=30)[0]
    ys, xs = (img > 0.5).nonzero(as_tuple=True)
    c = (size - 1) / 2
    # orientation 0, positive curvature: the centre of the circle lies above the midpoint (a U opening up)
    cy_row = c - 1 / kappa
    r = ((ys.float() - cy_row) ** 2 + (xs.float() - c) ** 2).sqrt()
    assert (r - 1 / kappa).abs().max() < 1.0
    assert float(ys.float().max()) == pytest.approx(c, abs=1.0)  # the midpoint is the lowest point
    assert torch.equal(stimuli.curve(0.0, 30.0, size=32), stimuli.line(30.0, size=32))
    ring = stimuli.circle(10.0, size=32, width=1.0)[0]
    ys, xs = (ring > 0.5).nonzero(as_tuple=True)
    rr = ((ys.float() - 15.5) ** 2 + (xs.float() - 15.5) ** 2).sqrt()
    assert (rr - 10).abs().max() < 1.0


def test_grating_frequency_and_phase() -> None:
    g = stimuli.grating(90.0, 0.125, 0.0, size=32)[0]  # vertical stripes: varies along x only
    assert torch.allclose(g, g[:1].expand_as(g), atol=1e-6)
    row = g[0] - 0.5
    spec = torch.fft.rfft(row).abs()
    assert int(spec.argmax()) == 4  # 0.125 cycles/px over 32 px
    assert not torch.allclose(stimuli.grating(90.0, 0.125, 90.0)[0], g)


def test_dataset_is_seeded_and_covers_classes() -> None:
    a, b = stimuli.ShapesDataset(60, seed=1), stimuli.ShapesDataset(60, seed=1)
    xa, ya = a.batch(0, 60)
    xb, yb = b.batch(0, 60)
    assert torch.equal(xa, xb) and torch.equal(ya, yb)
    xc, _ = stimuli.ShapesDataset(60, seed=2).batch(0, 60)
    assert not torch.equal(xa, xc)
    assert xa.shape == (60, 3, 32, 32) and xa.min() >= 0 and xa.max() <= 1
    _, labels = stimuli.ShapesDataset(200, seed=0).batch(0, 200)
    assert set(labels.tolist()) == set(range(len(stimuli.CLASSES)))
    img, lab = a[3]
    assert torch.equal(img, xa[3]) and lab == int(ya[3])
    with pytest.raises(IndexError, match="out of range"):
        a[60]


def test_straight_class_images_have_their_orientation() -> None:
    ds = stimuli.ShapesDataset(150, seed=5)
    n = 0
    for i in range(len(ds)):
        img, lab = ds[i]
        if lab < stimuli.N_ORIENT:
            ori, _coh = dominant_orientation(img)
            assert float(angle_diff(ori, 22.5 * lab)) <= 12.0, (i, lab, ori)
            n += 1
    assert n > 40


def test_make_and_errors() -> None:
    assert torch.equal(stimuli.make("line", orientation=30, x=3, y=-2), stimuli.line(30, position=(3.0, -2.0)))
    with pytest.raises(ValueError, match="unknown stimulus 'zigzag'"):
        stimuli.make("zigzag")
    assert math.isclose(float(stimuli.texture(3).mean()), 0.5, abs_tol=0.15)
