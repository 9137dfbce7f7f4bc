"""Feature visualisation by optimisation (Olah et al. 2017, the Lucent recipe) for any torch CNN.

* **Parameterisation**: a Fourier spectrum scaled by ``1/f^decay`` (``fourier=True``), or raw pixels;
  colours decorrelated with ImageNet's colour-correlation square root, then a sigmoid into [0, 1].
* **Transformation robustness**: every step sees the image padded, jittered, scaled and rotated
  (seeded draws; ``transforms=False`` turns them off).
* **Diversity**: with ``batch > 1`` and ``diversity > 0``, the images of one objective are pushed
  apart (mean pairwise cosine similarity of their Gram matrices at the objective's layer).
* **Reproducible**: one seed fixes the initial spectrum and every transform draw.
* Hooks are removed, and the model's train/eval mode restored, however the run ends (an error,
  ``KeyboardInterrupt``, or ``progress`` raising to cancel).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from interp_widget.analysis.sweeps import Progress
from interp_widget.analysis.vision.objectives import Objective
from interp_widget.analysis.vision.results import FeatureVisResult, LayerGrid
from interp_widget.analysis.vision.units import (
    capture,
    conv_layers,
    find_layer,
    forward,
    input_channels,
    model_device,
    probe_shapes,
    torch_module,
)

Tensor = torch.Tensor
ObjectiveLike = str | Objective

#: square root of ImageNet's colour correlation (Lucent / Lucid ``color_correlation_svd_sqrt``)
COLOR_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
SCALES = tuple(1 + (i - 5) / 50 for i in range(11))
ROTATIONS = tuple(float(r) for r in list(range(-10, 11)) + 5 * [0])


# --- parameterisation ------------------------------------------------------------------------------
def spectrum_scale(h: int, w: int, decay_power: float = 1.0) -> Tensor:
    """``[h, w//2+1]``: the ``1/f^decay`` weights of a real 2-D spectrum (Lucent's ``fft_image``)."""
    fy = torch.fft.fftfreq(h)[:, None]
    fx = torch.fft.rfftfreq(w)[None, :]
    f = (fy * fy + fx * fx).sqrt()
    return 1.0 / f.clamp_min(1.0 / max(h, w)) ** decay_power


def decorrelate(t: Tensor) -> Tensor:
    """Map decorrelated colour channels ``[n, 3, H, W]`` to RGB (normalised colour-correlation root)."""
    m = COLOR_SQRT / COLOR_SQRT.norm(dim=0).max()
    return torch.einsum("ij,njhw->nihw", m.to(t), t)


class ImageParam:
    """The optimised tensor and how it becomes an image in [0, 1]."""

    def __init__(self, n: int, size: int, *, fourier: bool, decorrelated: bool, decay_power: float,
                 generator: torch.Generator, device: torch.device, sd: float = 0.01) -> None:
        self.size, self.fourier, self.decorrelated = size, fourier, decorrelated
        shape = (n, 3, size, size // 2 + 1, 2) if fourier else (n, 3, size, size)
        # one draw per image: an image's start does not depend on how many are optimised beside it
        init = torch.stack([torch.randn(shape[1:], generator=generator) for _ in range(n)])
        self.param = (init * sd).to(device).requires_grad_(True)
        self.scale = spectrum_scale(size, size, decay_power).to(device)[None, None, :, :, None] if fourier else None

    def image(self) -> Tensor:
        if self.scale is not None:
            spec = torch.view_as_complex((self.param * self.scale).contiguous())
            t = torch.fft.irfft2(spec, s=(self.size, self.size), norm="ortho") / 4.0
        else:
            t = self.param
        if self.decorrelated:
            t = decorrelate(t)
        return torch.sigmoid(t)


# --- transformation robustness ---------------------------------------------------------------------
def _randint(g: torch.Generator, n: int) -> int:
    return int(torch.randint(n, (), generator=g))


def jitter(x: Tensor, d: int, g: torch.Generator) -> Tensor:
    """Random crop losing ``d`` pixels (Lucent's ``jitter``)."""
    if d <= 0:
        return x
    dy, dx = _randint(g, d), _randint(g, d)
    return x[..., dy:dy + x.shape[-2] - d, dx:dx + x.shape[-1] - d]


def scale_rotate(x: Tensor, scale: float, degrees: float) -> Tensor:
    """Bilinear zoom by ``scale`` and rotation by ``degrees`` about the centre, one ``grid_sample``."""
    if scale == 1 and degrees == 0:
        return x
    a = math.radians(degrees)
    theta = torch.tensor([[math.cos(a) / scale, -math.sin(a) / scale, 0.0],
                          [math.sin(a) / scale, math.cos(a) / scale, 0.0]], dtype=x.dtype, device=x.device)
    grid = torch.nn.functional.affine_grid(theta.expand(x.shape[0], 2, 3), list(x.shape), align_corners=False)
    return torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def transform(x: Tensor, g: torch.Generator, *, pad: int = 12, jit: int = 8,
              scales: Sequence[float] = SCALES, rotations: Sequence[float] = ROTATIONS) -> Tensor:
    """Lucent's ``standard_transforms``: pad (grey), jitter, random scale, random rotation, jitter 4."""
    x = torch.nn.functional.pad(x, (pad, pad, pad, pad), value=0.5)
    x = jitter(x, jit, g)
    s = scales[_randint(g, len(scales))] if scales else 1.0
    r = rotations[_randint(g, len(rotations))] if rotations else 0.0
    x = scale_rotate(x, s, r)
    return jitter(x, min(4, jit), g)


def _diversity(acts: Tensor, groups: int, batch: int) -> Tensor:
    """Mean pairwise cosine similarity of Gram matrices within each objective's batch (lower is more diverse)."""
    a = acts.flatten(2)  # [n, C, HW]
    gram = torch.nn.functional.normalize((a @ a.transpose(1, 2)).flatten(1), dim=1).view(groups, batch, -1)
    sim = gram @ gram.transpose(1, 2)
    off = sim.sum((1, 2)) - sim.diagonal(dim1=1, dim2=2).sum(1)
    return (off / (batch * (batch - 1))).sum()


# --- the optimisation ------------------------------------------------------------------------------
def _objectives(objective: ObjectiveLike | Sequence[ObjectiveLike]) -> list[Objective]:
    items = [objective] if isinstance(objective, (str, Objective)) else list(objective)
    if not items:
        msg = "feature_vis needs at least one objective"
        raise ValueError(msg)
    return [Objective.parse(o) for o in items]


def feature_vis(
    model: Any,
    objective: ObjectiveLike | Sequence[ObjectiveLike],
    *,
    size: int = 64,
    steps: int = 128,
    lr: float = 0.05,
    batch: int = 1,
    diversity: float = 0.0,
    seed: int = 0,
    fourier: bool = True,
    decorrelate_colors: bool = True,
    decay_power: float = 1.0,
    transforms: bool = True,
    normalize: tuple[Sequence[float], Sequence[float]] | None = None,
    device: str | torch.device | None = None,
    progress: Progress | None = None,
) -> FeatureVisResult:
    """Optimise input images that maximise ``objective`` (one, or a list optimised side by side).

    ``objective``: ``"conv2:5"`` (a channel, mean over space), ``"conv2:5@3,4"`` (its neuron at x=3,
    y=4 of the feature map), a sum ``"conv2:5 + 0.5*conv3:1"``, or an :class:`Objective` (e.g.
    ``Objective.direction("conv2", v)``). ``batch`` images per objective (with ``diversity`` weight).
    ``normalize=(mean, std)`` is applied to the image before the network (e.g. ImageNet's for a
    torchvision ResNet). ``progress(step, steps)`` is called every step; raising from it cancels.
    Returns images ``[n_objectives * batch, 3, size, size]`` in [0, 1] and the per-step objective values.
    """
    net = torch_module(model)
    objs = _objectives(objective)
    if size < 8 or steps < 1 or batch < 1:
        msg = f"need size >= 8, steps >= 1 and batch >= 1 (got size={size}, steps={steps}, batch={batch})"
        raise ValueError(msg)
    layers = list(dict.fromkeys(layer for o in objs for layer in o.layers))
    for layer in layers:
        find_layer(net, layer)
    pad = 12 if transforms else 0
    shapes = probe_shapes(net, layers, size + (2 * pad - 8 - 4 if transforms else 0))
    for o in objs:
        o.check(shapes)
    dev = torch.device(device) if device is not None else model_device(net)
    g = torch.Generator().manual_seed(seed)  # transform draws
    n = len(objs) * batch
    img = ImageParam(n, size, fourier=fourier, decorrelated=decorrelate_colors, decay_power=decay_power,
                     generator=torch.Generator().manual_seed(seed), device=dev)
    opt = torch.optim.Adam([img.param], lr=lr)
    mean = std = None
    if normalize is not None:
        mean = torch.as_tensor(normalize[0], dtype=torch.float32, device=dev).view(1, -1, 1, 1)
        std = torch.as_tensor(normalize[1], dtype=torch.float32, device=dev).view(1, -1, 1, 1)
    in_ch = input_channels(net)
    losses = torch.zeros(n, steps)
    was_training = net.training
    net.eval()
    try:
        with capture(net, layers) as acts:
            for step in range(steps):
                x = img.image()
                if transforms:
                    x = transform(x, g)
                if mean is not None and std is not None:
                    x = (x - mean) / std
                if in_ch == 1:
                    x = x.mean(1, keepdim=True)
                acts.clear()
                forward(net, x)
                values = torch.cat([o.value({k: v[i * batch:(i + 1) * batch] for k, v in acts.items()})
                                    for i, o in enumerate(objs)])
                loss = -values.sum()
                if diversity > 0 and batch > 1:
                    for i, o in enumerate(objs):
                        a = acts[o.layers[0]][i * batch:(i + 1) * batch]
                        if a.dim() == 4:
                            loss = loss + diversity * _diversity(a, 1, batch)
                opt.zero_grad()
                (grad,) = torch.autograd.grad(loss, [img.param])
                img.param.grad = grad
                opt.step()
                losses[:, step] = values.detach().float().cpu()
                if progress is not None:
                    progress(step + 1, steps)
    finally:
        net.train(was_training)
    with torch.no_grad():
        images = img.image().detach().float().cpu()
    labels = [o.label for o in objs for _ in range(batch)]
    settings = {"size": size, "steps": steps, "lr": lr, "batch": batch, "diversity": diversity,
                "fourier": fourier, "decorrelate_colors": decorrelate_colors, "decay_power": decay_power,
                "transforms": transforms, "normalize": None if normalize is None else [list(map(float, v)) for v in normalize]}
    return FeatureVisResult(images=images, labels=labels, losses=losses, seed=seed, settings=settings)


def layer_overview(
    model: Any,
    layers: Sequence[str] | None = None,
    channels: Sequence[int] | dict[str, Sequence[int]] | None = None,
    *,
    max_channels: int = 16,
    size: int = 48,
    steps: int = 64,
    seed: int = 0,
    chunk: int = 32,
    progress: Progress | None = None,
    **kw: Any,
) -> LayerGrid:
    """One feature visualisation per channel of each conv layer (default: every ``Conv2d``).

    ``channels``: the same list for every layer, a dict ``layer -> list``, or None (the first
    ``max_channels`` of each). Channels are optimised ``chunk`` at a time as one batch. Other
    keywords go to :func:`feature_vis`. ``progress(done, total)`` counts optimisation steps.
    """
    net = torch_module(model)
    names = list(layers) if layers is not None else conv_layers(net)
    if not names:
        msg = f"{type(net).__name__} has no Conv2d layers; pass layers=[...] explicitly"
        raise ValueError(msg)
    shapes = probe_shapes(net, names, size)
    chosen: dict[str, list[int]] = {}
    for name in names:
        n_ch = shapes[name][0]
        if isinstance(channels, dict):
            chosen[name] = list(channels.get(name, range(min(n_ch, max_channels))))
        elif channels is not None:
            chosen[name] = list(channels)
        else:
            chosen[name] = list(range(min(n_ch, max_channels)))
    jobs = [(name, chosen[name][i:i + chunk]) for name in names for i in range(0, len(chosen[name]), chunk)]
    total, done = len(jobs) * steps, 0
    images: dict[str, list[Tensor]] = {name: [] for name in names}
    for name, chs in jobs:
        def sub(step: int, _n: int, base: int = done) -> None:
            if progress is not None:
                progress(base + step, total)

        res = feature_vis(net, [Objective.channel(name, c) for c in chs], size=size, steps=steps, seed=seed,
                          progress=sub, **kw)
        images[name].append(res.images)
        done += steps
    settings = {"size": size, "steps": steps, **{k: v for k, v in kw.items() if isinstance(v, (int, float, bool, str))}}
    return LayerGrid(layers=names, images={k: torch.cat(v) if v else torch.zeros(0, 3, size, size) for k, v in images.items()},
                     channels=chosen, seed=seed, settings=settings)


__all__ = ["ImageParam", "decorrelate", "feature_vis", "layer_overview", "spectrum_scale", "transform"]
