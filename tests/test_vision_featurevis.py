"""Feature visualisation: reproducibility, objectives against hand computations, errors, hooks, any CNN."""

from __future__ import annotations

import pytest
import torch
from _vision import one_thread  # noqa: F401 - the fixture
from torch import nn

import interp_widget as iw
from interp_widget.analysis.vision.featurevis import COLOR_SQRT, ImageParam, decorrelate, spectrum_scale, transform
from interp_widget.analysis.vision.objectives import Objective
from interp_widget.analysis.vision.units import layer_outputs
from interp_widget.errors import SiteIndexError, UnknownSiteError

pytestmark = pytest.mark.usefixtures("one_thread")


def _tiny_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 6, 3, padding=1),
                         nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 4)).eval()


class _Block(nn.Module):  # torchvision's BasicBlock, rebuilt
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                           if stride != 1 or cin != cout else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        idt = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + idt)


class ResNet18Like(nn.Module):
    """torchvision's resnet18 layout (module names, strides, blocks), at 1/8 width to stay fast on a CPU."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        w = [width, width * 2, width * 4, width * 8]
        self.conv1 = nn.Conv2d(3, w[0], 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(w[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = w[0]
        for i, c in enumerate(w):
            stride = 1 if i == 0 else 2
            setattr(self, f"layer{i + 1}", nn.Sequential(_Block(cin, c, stride), _Block(c, c, 1)))
            cin = c
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def _hooks(net: nn.Module) -> int:
    return sum(len(m._forward_hooks) for m in net.modules())


def test_same_seed_same_images_different_seed_different() -> None:
    net = _tiny_cnn()
    a = iw.feature_vis(net, "3:2", size=24, steps=6, seed=3)
    b = iw.feature_vis(net, "3:2", size=24, steps=6, seed=3)
    c = iw.feature_vis(net, "3:2", size=24, steps=6, seed=4)
    assert torch.equal(a.images, b.images) and torch.equal(a.losses, b.losses)
    assert not torch.allclose(a.images, c.images)
    assert a.images.shape == (1, 3, 24, 24) and a.images.min() >= 0 and a.images.max() <= 1
    assert a.labels == ["3:2"] and a.seed == 3 and a.losses.shape == (1, 6)


def test_optimisation_raises_the_objective_and_batches_objectives_independently() -> None:
    net = iw.load("shapes-cnn")
    both = iw.feature_vis(net, ["conv2:5", "conv2:9"], size=32, steps=12, seed=0)
    one = iw.feature_vis(net, ["conv2:5"], size=32, steps=12, seed=0)
    assert (both.losses[:, -1] > both.losses[:, 0] + 0.1).all()
    assert both.labels == ["conv2:5", "conv2:9"]
    # the second objective's rows do not steer the first one's optimisation (same initial image, same
    # draws; batched convolutions round differently, and the optimisation amplifies that a little)
    assert torch.allclose(both.losses[0, 0], one.losses[0, 0], atol=1e-3)
    assert torch.allclose(both.losses[0], one.losses[0], rtol=0.1)
    assert (both.images[0] - one.images[0]).abs().mean() < 0.02


def test_objective_values_match_hand_computation() -> None:
    g = torch.Generator().manual_seed(0)
    acts = {"a": torch.randn(2, 5, 4, 6, generator=g), "b": torch.randn(2, 3, 2, 2, generator=g)}
    v = torch.randn(5, generator=g)
    assert torch.allclose(Objective.parse("a:2").value(acts), acts["a"][:, 2].mean((1, 2)))
    assert torch.allclose(Objective.parse("a:2@5,3").value(acts), acts["a"][:, 2, 3, 5])
    d = Objective.direction("a", v).value(acts)
    assert torch.allclose(d, torch.einsum("nchw,c->nhw", acts["a"], v).mean((1, 2)), atol=1e-6)
    s = Objective.parse("a:1 - 0.5*b:2").value(acts)
    assert torch.allclose(s, acts["a"][:, 1].mean((1, 2)) - 0.5 * acts["b"][:, 2].mean((1, 2)))
    assert (Objective.parse("a:1") + 2 * Objective.parse("b:0")).label == "a:1 + 2*b:0"


def test_direction_and_sum_objectives_run() -> None:
    net = _tiny_cnn()
    obj = Objective.direction("3", torch.ones(6)) + Objective.parse("0:1")
    res = iw.feature_vis(net, obj, size=24, steps=4, seed=0)
    assert res.labels == ["3·dir + 0:1"]
    div = iw.feature_vis(net, "3:1", size=24, steps=4, batch=3, diversity=1.0, seed=0)
    assert div.images.shape[0] == 3 and div.labels == ["3:1"] * 3
    assert not torch.allclose(div.images[0], div.images[1])


def test_grey_input_networks() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU()).eval()  # one input channel: the image is averaged to grey
    res = iw.feature_vis(net, "1:2", size=16, steps=3)
    assert res.images.shape == (1, 3, 16, 16)


def test_invalid_objectives_have_clear_errors() -> None:
    net = _tiny_cnn()
    with pytest.raises(UnknownSiteError, match=r"no layer 'conv9'; its conv layers are: 0, 3"):
        iw.feature_vis(net, "conv9:1", steps=1)
    with pytest.raises(SiteIndexError, match=r"channel 70 is out of range: 3 has 6 channels \(0\.\.5\)"):
        iw.feature_vis(net, "3:70", steps=1)
    with pytest.raises(SiteIndexError, match="position x=99, y=0 is out of range"):
        iw.feature_vis(net, "3:1@99,0", size=24, steps=1)
    with pytest.raises(ValueError, match="has 2 entries, but 3 has 6 channels"):
        iw.feature_vis(net, Objective.direction("3", [1.0, 2.0]), steps=1)
    with pytest.raises(ValueError, match="names a layer but no channel"):
        iw.feature_vis(net, "3", steps=1)
    with pytest.raises(ValueError, match="cannot read the objective"):
        iw.feature_vis(net, "3:1 3:2", steps=1)
    assert _hooks(net) == 0


def test_cancel_removes_hooks_and_restores_mode() -> None:
    net = _tiny_cnn().train()
    seen = []

    def progress(done: int, total: int) -> None:
        seen.append((done, total))
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        iw.feature_vis(net, "3:1", size=24, steps=50, progress=progress)
    assert seen == [(1, 50), (2, 50), (3, 50)]
    assert _hooks(net) == 0 and net.training


def test_resnet18_shaped_network() -> None:
    torch.manual_seed(0)
    net = ResNet18Like().eval()
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    res = iw.feature_vis(net, ["layer3.1.conv2:5", "layer4.1.conv2:3@1,1"], size=64, steps=5, seed=0,
                         normalize=(mean, std))
    assert res.images.shape == (2, 3, 64, 64) and torch.isfinite(res.losses).all()
    # without the random transforms the steps are plain (Adam) ascent on the objective
    plain = iw.feature_vis(net, "layer3.1.conv2:5", size=64, steps=5, seed=0, transforms=False, normalize=(mean, std))
    assert plain.losses[0, -1] > plain.losses[0, 0]
    # a BatchNorm output that an in-place ReLU overwrites next, read together with a deeper layer
    both = iw.feature_vis(net, ["layer1.0.bn1:1", "layer2.0.conv1:0"], size=32, steps=2, seed=0)
    assert torch.isfinite(both.losses).all()
    out = {}
    h = net.layer1[0].bn1.register_forward_hook(lambda _m, _i, o: out.update(pre_relu=o.clone()))  # returns None
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        net(x)
    h.remove()
    got = layer_outputs(net, x, ["layer1.0.bn1", "layer2.0.conv1"])["layer1.0.bn1"]
    assert torch.equal(got, out["pre_relu"]) and (got < 0).any()  # not overwritten by the ReLU
    grid = iw.layer_overview(net, layers=["conv1", "layer1.0.conv1", "layer4.1.conv2"], channels=[0, 1, 2],
                             size=32, steps=2)
    assert grid.layers == ["conv1", "layer1.0.conv1", "layer4.1.conv2"]
    assert all(grid.images[k].shape == (3, 3, 32, 32) and grid.channels[k] == [0, 1, 2] for k in grid.layers)
    assert _hooks(net) == 0
    with pytest.raises(SiteIndexError, match=r"channel 64 is out of range: layer4.1.conv2 has 64 channels \(0\.\.63\)"):
        iw.feature_vis(net, "layer4.1.conv2:64", steps=1)


def test_layer_overview_defaults_and_progress(shapes: iw.Model | None = None) -> None:
    model = iw.load("shapes-cnn")
    calls: list[tuple[int, int]] = []
    grid = iw.layer_overview(model, max_channels=4, size=24, steps=3, progress=lambda d, t: calls.append((d, t)))
    assert grid.layers == ["conv1", "conv2", "conv3"]
    assert [len(grid.channels[k]) for k in grid.layers] == [4, 4, 4]
    assert calls[-1] == (9, 9)
    chans = iw.layer_overview(model, layers=["conv2"], channels={"conv2": [5, 9]}, size=24, steps=2)
    assert chans.channels == {"conv2": [5, 9]} and chans.images["conv2"].shape[0] == 2


def test_parameterisation() -> None:
    g = torch.Generator().manual_seed(0)
    p = ImageParam(2, 16, fourier=True, decorrelated=True, decay_power=1.0, generator=g, device=torch.device("cpu"))
    assert p.param.shape == (2, 3, 16, 9, 2)
    with torch.no_grad():
        p.param.zero_()
    assert torch.allclose(p.image(), torch.full((2, 3, 16, 16), 0.5))
    s = spectrum_scale(16, 16)
    assert s.shape == (16, 9) and s[0, 0] == 16 and torch.isclose(s[0, 8], torch.tensor(2.0))
    # the decorrelation matrix is ImageNet's colour-correlation root, scaled to a unit largest column
    eye = decorrelate(torch.eye(3).view(3, 3, 1, 1))[..., 0, 0]
    assert torch.allclose(eye.t() * COLOR_SQRT.norm(dim=0).max(), COLOR_SQRT)
    x = torch.rand(1, 3, 20, 20, generator=g)
    y1 = transform(x, torch.Generator().manual_seed(1))
    y2 = transform(x, torch.Generator().manual_seed(1))
    assert torch.equal(y1, y2) and y1.shape[-1] == 20 + 24 - 12
