"""Dataset examples against a brute-force loop over single images; receptive fields of known stacks."""

from __future__ import annotations

import pytest
import torch
from _vision import one_thread  # noqa: F401 - the fixture
from torch import nn

import interp_widget as iw
from interp_widget.analysis.vision.examples import receptive_field
from interp_widget.analysis.vision.stimuli import ShapesDataset
from interp_widget.analysis.vision.units import Unit
from interp_widget.errors import SiteIndexError

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model() -> iw.Model:
    return iw.load("shapes-cnn")


@pytest.fixture(scope="module")
def data() -> torch.Tensor:
    return ShapesDataset(150, seed=11).batch(0, 150)[0]


def _loop(net: nn.Module, layer: str, ch: int, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image, one at a time: (max activation, argmax (y, x))."""
    vals, pos = [], []
    mod = dict(net.named_modules())[layer]
    for img in images:
        out = {}
        h = mod.register_forward_hook(lambda _m, _i, o, out=out: out.setdefault("a", o))
        with torch.no_grad():
            net(img[None])
        h.remove()
        a = out["a"][0, ch]
        i = int(a.flatten().argmax())
        vals.append(a.flatten()[i])
        pos.append((i // a.shape[1], i % a.shape[1]))
    return torch.stack(vals), torch.tensor(pos)


@pytest.mark.parametrize("unit", ["conv2:6", "conv3:28"])
def test_top_k_matches_brute_force(model: iw.Model, data: torch.Tensor, unit: str) -> None:
    layer, ch = unit.split(":")
    vals, pos = _loop(model.raw, layer, int(ch), data)
    order = vals.argsort(descending=True)[:10]
    ex = iw.dataset_examples(model, unit, data, k=10, batch=32)
    assert ex.unit == unit and ex.indices.tolist() == order.tolist()
    assert torch.allclose(ex.activations, vals[order], atol=1e-5)
    # crops: a square as large as the receptive field, centred on the argmax (zero padding)
    side = ex.images.shape[-1]
    assert side == max(receptive_field(model.raw, Unit.parse(unit), (3, 32, 32)))
    stride = 32 // {"conv2": 16, "conv3": 8}[layer]
    padded = nn.functional.pad(data, (side, side, side, side))
    for j, i in enumerate(order.tolist()):
        py, px = pos[i].tolist()
        cy, cx = int((py + 0.5) * stride), int((px + 0.5) * stride)
        y0, x0 = cy - side // 2, cx - side // 2
        assert ex.boxes is not None and ex.boxes[j].tolist() == [y0, x0, y0 + side, x0 + side]
        assert torch.equal(ex.images[j], padded[i, :, y0 + side:y0 + 2 * side, x0 + side:x0 + 2 * side])


def test_batch_size_and_source_do_not_change_the_answer(model: iw.Model, data: torch.Tensor) -> None:
    a = iw.dataset_examples(model, "conv2:0", data, k=5, batch=7, crop=False)
    b = iw.dataset_examples(model, "conv2:0", data, k=5, batch=1000, crop=False)
    c = iw.dataset_examples(model, "conv2:0", ShapesDataset(150, seed=11), k=5, batch=64, crop=False)
    d = iw.dataset_examples(model, "conv2:0", [(x, 0) for x in data], k=5, batch=50, crop=False)
    for r in (b, c, d):
        assert r.indices.tolist() == a.indices.tolist()
        assert torch.allclose(r.activations, a.activations, atol=1e-5)
    assert a.boxes is None and torch.equal(a.images, data[a.indices])


def test_neuron_units_and_errors(model: iw.Model, data: torch.Tensor) -> None:
    ex = iw.dataset_examples(model, "conv2:3@4,5", data, k=3)
    with torch.no_grad():  # the neuron at x=4, y=5, read with a plain hook on the whole dataset
        acts = []
        h = model.raw.conv2.register_forward_hook(lambda _m, _i, o: acts.append(o[:, 3, 5, 4]))
        model.raw(data)
        h.remove()
    top = acts[0].topk(3)
    assert ex.indices.tolist() == top.indices.tolist()
    assert torch.allclose(ex.activations, top.values, atol=1e-5)
    with torch.no_grad():  # a non-spatial unit: the classifier's logit for class 3, whole images
        logit = model.raw(data)[:, 3].topk(4)
    fc = iw.dataset_examples(model, "fc:3", data, k=4)
    assert fc.indices.tolist() == logit.indices.tolist() and fc.boxes is None
    assert torch.allclose(fc.activations, logit.values, atol=1e-5) and fc.images.shape == (4, 3, 32, 32)
    with pytest.raises(SiteIndexError, match="channel 99 is out of range"):
        iw.dataset_examples(model, "conv1:99", data)
    with pytest.raises(ValueError, match="needs a unit 'layer:channel'"):
        iw.dataset_examples(model, "conv1", data)


def test_receptive_fields_of_known_stacks() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 2, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(2, 2, 3, padding=1))
    assert receptive_field(net, Unit.parse("0:0"), (1, 32, 32)) == (5, 5)
    assert receptive_field(net, Unit.parse("3:1"), (1, 32, 32)) == (10, 10)  # 5 + 2 * (3 - 1) + 1 (pooling)
