"""Dataset examples: the images (or crops) of a dataset on which one unit responds most.

The dataset is streamed in batches and only the running top ``k`` (values and indices) is kept, so
memory is bounded by one batch whatever the dataset's size. A spatial unit (a channel of a conv
layer) is scored by its maximum over the feature map; its crops are centred on that argmax, with
the size of the unit's receptive field (measured once, from input gradients).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch

from interp_widget.analysis.sweeps import Progress
from interp_widget.analysis.vision.results import DatasetExamples
from interp_widget.analysis.vision.units import (
    Unit,
    capture,
    check_unit,
    forward,
    layer_outputs,
    model_device,
    probe_shapes,
    torch_module,
)

Tensor = torch.Tensor


def _item_image(item: Any) -> Tensor:
    x = item[0] if isinstance(item, (tuple, list)) else item
    if not isinstance(x, Tensor):
        msg = f"a dataset item must be an image tensor [C, H, W] or (image, label), got {type(x).__name__}"
        raise TypeError(msg)
    return x


def _batches(dataset: Any, batch: int) -> Iterable[tuple[int, Tensor]]:
    """``(start index, images [b, C, H, W])`` for a tensor, a ``batch(start, stop)`` source or a sequence."""
    if isinstance(dataset, Tensor):
        for s in range(0, len(dataset), batch):
            yield s, dataset[s:s + batch]
        return
    if hasattr(dataset, "batch") and hasattr(dataset, "__len__"):
        for s in range(0, len(dataset), batch):
            yield s, dataset.batch(s, s + batch)[0]
        return
    if hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__"):
        for s in range(0, len(dataset), batch):
            yield s, torch.stack([_item_image(dataset[i]) for i in range(s, min(s + batch, len(dataset)))])
        return
    msg = f"dataset must be a tensor [N, C, H, W] or an indexable sequence of images, not {type(dataset).__name__}"
    raise TypeError(msg)


def _image(dataset: Any, i: int) -> Tensor:
    return dataset[i] if isinstance(dataset, Tensor) else _item_image(dataset[i])


def receptive_field(net: torch.nn.Module, unit: Unit, image_shape: Sequence[int], *, probes: int = 4,
                    seed: int = 0) -> tuple[int, int]:
    """``(height, width)`` of the input region that can affect the centre neuron of ``unit``'s channel.

    Measured as the bounding box of nonzero input gradients, unioned over a few random inputs (so a
    dead ReLU on one input does not shrink it).
    """
    g = torch.Generator().manual_seed(seed)
    c, h, w = image_shape
    x = torch.rand(probes, c, h, w, generator=g).to(model_device(net)).requires_grad_(True)
    with capture(net, [unit.layer]) as out:
        forward(net, x)
        a = out[unit.layer]
        ch = unit.channel or 0
        y0, x0 = (unit.y, unit.x) if unit.x is not None else (a.shape[2] // 2, a.shape[3] // 2)
        (grad,) = torch.autograd.grad(a[:, ch, y0, x0].sum(), [x])
    mask = grad.abs().sum((0, 1)) > 0
    rows, cols = mask.any(1).nonzero(), mask.any(0).nonzero()
    if len(rows) == 0:
        return h, w
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)


def dataset_examples(
    model: Any,
    unit: str | Unit,
    dataset: Any,
    k: int = 16,
    *,
    batch: int = 256,
    crop: bool = True,
    progress: Progress | None = None,
) -> DatasetExamples:
    """The ``k`` dataset images on which ``unit`` is largest (crops around its argmax for spatial units).

    ``dataset``: a tensor ``[N, C, H, W]`` in [0, 1], a :class:`~.stimuli.ShapesDataset`, or any
    indexable sequence of images or ``(image, label)`` pairs. ``unit``: ``"conv2:5"`` (channel:
    maximum over space) or ``"conv2:5@3,4"`` (one neuron). Crops are square, as large as the unit's
    receptive field, centred on the argmax (padded with 0 at the image border).
    """
    net = torch_module(model)
    u = Unit.parse(unit)
    if u.channel is None:
        msg = f"dataset_examples needs a unit 'layer:channel', got {unit!r}"
        raise ValueError(msg)
    n = len(dataset)
    if k < 1 or n == 0:
        msg = f"need k >= 1 and a non-empty dataset (k={k}, {n} items)"
        raise ValueError(msg)
    first = _image(dataset, 0)
    shape = probe_shapes(net, [u.layer], int(first.shape[-1]))[u.layer]
    check_unit(u, shape)
    spatial = len(shape) == 3 and u.x is None
    k = min(k, n)
    top_v = torch.empty(0)
    top_i = torch.empty(0, dtype=torch.long)
    top_pos = torch.empty(0, 2, dtype=torch.long)
    dev = model_device(net)
    was = net.training
    net.eval()
    try:
        for start, xb in _batches(dataset, batch):
            a = layer_outputs(net, xb.to(dev), [u.layer])[u.layer][:, u.channel].float().cpu()
            if u.x is not None:
                v, pos = a[:, u.y, u.x], torch.tensor([[u.y, u.x]]).expand(len(a), 2)
            elif spatial:
                flat = a.flatten(1)
                v, arg = flat.max(1)
                pos = torch.stack([arg // a.shape[2], arg % a.shape[2]], 1)
            else:
                v, pos = a.reshape(len(a)), torch.zeros(len(a), 2, dtype=torch.long)
            vals = torch.cat([top_v, v])
            keep = vals.topk(min(k, len(vals))).indices
            top_v = vals[keep]
            top_i = torch.cat([top_i, torch.arange(start, start + len(v))])[keep]
            top_pos = torch.cat([top_pos, pos])[keep]
            if progress is not None:
                progress(min(start + len(v), n), n)
    finally:
        net.train(was)
    images = torch.stack([_image(dataset, int(i)) for i in top_i]).float()
    boxes = None
    if crop and len(shape) == 3 and images.dim() == 4:
        h, w = images.shape[-2:]
        rf_h, rf_w = receptive_field(net, u, images.shape[1:])
        side = max(rf_h, rf_w)
        sy, sx = h / shape[1], w / shape[2]
        pad = side
        padded = torch.nn.functional.pad(images, (pad, pad, pad, pad))
        crops, bx = [], []
        for j, (py, px) in enumerate(top_pos.tolist()):
            cy, cx = int((py + 0.5) * sy), int((px + 0.5) * sx)
            y0, x0 = cy - side // 2, cx - side // 2
            crops.append(padded[j, :, y0 + pad:y0 + pad + side, x0 + pad:x0 + pad + side])
            bx.append([y0, x0, y0 + side, x0 + side])
        images = torch.stack(crops)
        boxes = torch.tensor(bx)
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    return DatasetExamples(unit=u.label, images=images.clamp(0, 1), activations=top_v, indices=top_i, boxes=boxes)


__all__ = ["dataset_examples", "receptive_field"]
