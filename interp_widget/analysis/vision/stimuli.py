"""Parameterised synthetic stimuli (pure torch, seeded) and the ``shapes`` dataset.

Conventions, shared with :mod:`.orientation`:

* images are float tensors ``[3, H, W]`` in [0, 1] (grey, repeated to 3 channels); batches ``[n, 3, H, W]``;
* orientation is in degrees, counter-clockwise from the x axis as seen on screen (rows grow downward),
  and is taken mod 180: 0 is a horizontal line, 90 a vertical one, 45 runs from bottom-left to top-right;
* positions are offsets in pixels from the image centre, ``(x, y)`` with y downward (array convention);
* frequency is in cycles per pixel; curvature is 1/radius in 1/px (0 is a straight line).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

Tensor = torch.Tensor


def _grid(size: int) -> tuple[Tensor, Tensor]:
    """Pixel-centre coordinates relative to the image centre: ``x`` right, ``y`` *up* (screen convention)."""
    c = (size - 1) / 2
    r = torch.arange(size, dtype=torch.float32) - c
    y_down, x = torch.meshgrid(r, r, indexing="ij")
    return x, -y_down


def _rgb(grey: Tensor) -> Tensor:
    return grey.clamp(0, 1).unsqueeze(0).expand(3, -1, -1).contiguous()


def _paint(dist: Tensor, width: float, fg: float, bg: float) -> Tensor:
    """Anti-aliased stroke of ``width`` px from a distance map."""
    alpha = (width / 2 + 0.5 - dist).clamp(0, 1)
    return _rgb(bg + (fg - bg) * alpha)


def _segments_distance(x: Tensor, y: Tensor, pts: Tensor) -> Tensor:
    """Distance from every pixel to the polyline through ``pts`` ``[m, 2]`` (screen coordinates)."""
    p = torch.stack([x, y], -1).reshape(-1, 1, 2)
    a, b = pts[:-1].unsqueeze(0), pts[1:].unsqueeze(0)
    ab = b - a
    t = (((p - a) * ab).sum(-1) / (ab * ab).sum(-1).clamp_min(1e-9)).clamp(0, 1)
    d = (p - (a + t.unsqueeze(-1) * ab)).norm(dim=-1).amin(dim=1)
    return d.reshape(x.shape)


def grating(orientation: float = 0.0, frequency: float = 0.125, phase: float = 0.0, *, size: int = 32,
            contrast: float = 1.0, position: tuple[float, float] = (0.0, 0.0), aperture: float | None = None) -> Tensor:
    """A sinusoidal grating whose stripes run along ``orientation`` (degrees); ``phase`` in degrees.

    ``aperture``: radius in px of a soft circular window around ``position`` (None: full field).
    """
    x, y = _grid(size)
    x, y = x - position[0], y + position[1]
    th = math.radians(orientation)
    u = -x * math.sin(th) + y * math.cos(th)  # coordinate across the stripes
    g = 0.5 + 0.5 * contrast * torch.cos(2 * math.pi * frequency * u + math.radians(phase))
    if aperture is not None:
        w = (aperture + 0.5 - (x * x + y * y).sqrt()).clamp(0, 1)
        g = 0.5 + (g - 0.5) * w
    return _rgb(g)


def line(orientation: float = 0.0, *, size: int = 32, length: float | None = None, width: float = 1.5,
         position: tuple[float, float] = (0.0, 0.0), fg: float = 1.0, bg: float = 0.0) -> Tensor:
    """A straight bar through ``position`` along ``orientation`` (``length`` None: across the image)."""
    return curve(0.0, orientation, size=size, length=length, width=width, position=position, fg=fg, bg=bg)


def curve(curvature: float = 0.1, orientation: float = 0.0, *, size: int = 32, length: float | None = None,
          width: float = 1.5, position: tuple[float, float] = (0.0, 0.0), fg: float = 1.0, bg: float = 0.0) -> Tensor:
    """An arc of a circle (radius ``1/curvature``) whose tangent at its midpoint (at ``position``) is ``orientation``.

    The arc bends toward the left normal of its tangent direction: with ``orientation=0`` and positive
    curvature it is a ``U`` opening upward (centre above the midpoint); negative curvature flips it.
    ``length`` is the arc length (None: 0.7 x ``size``, or across the image for a straight line).
    """
    x, y = _grid(size)
    cx, cy = position[0], -position[1]
    th = math.radians(orientation)
    t_dir = (math.cos(th), math.sin(th))
    n_dir = (-math.sin(th), math.cos(th))
    if length is None:
        length = 2.0 * size if abs(curvature) < 1e-6 else 0.7 * size
    s = torch.linspace(-length / 2, length / 2, 65)
    if abs(curvature) < 1e-6:
        px, py = cx + s * t_dir[0], cy + s * t_dir[1]
    else:
        r = 1.0 / curvature
        a = s / r  # angle swept along the arc
        px = cx + r * torch.sin(a) * t_dir[0] + r * (1 - torch.cos(a)) * n_dir[0]
        py = cy + r * torch.sin(a) * t_dir[1] + r * (1 - torch.cos(a)) * n_dir[1]
    return _paint(_segments_distance(x, y, torch.stack([px, py], -1)), width, fg, bg)


def circle(radius: float = 8.0, *, size: int = 32, width: float = 1.5, position: tuple[float, float] = (0.0, 0.0),
           fg: float = 1.0, bg: float = 0.0) -> Tensor:
    """A ring of ``radius`` px around ``position``."""
    x, y = _grid(size)
    d = ((x - position[0]) ** 2 + (y + position[1]) ** 2).sqrt()
    return _paint((d - radius).abs(), width, fg, bg)


def texture(seed: int = 0, *, size: int = 32, scale: float = 3.0, fg: float = 1.0, bg: float = 0.0) -> Tensor:
    """Isotropic blob texture: seeded white noise blurred at ``scale`` px, thresholded at its median."""
    g = torch.Generator().manual_seed(seed)
    n = torch.randn(1, 1, size + 8, size + 8, generator=g)
    k = int(2 * math.ceil(2 * scale) + 1)
    r = torch.arange(k, dtype=torch.float32) - k // 2
    w = torch.exp(-(r**2) / (2 * scale**2))
    w = w / w.sum()
    n = torch.nn.functional.conv2d(n, w.view(1, 1, 1, k), padding=(0, k // 2))
    n = torch.nn.functional.conv2d(n, w.view(1, 1, k, 1), padding=(k // 2, 0))[0, 0, 4:-4, 4:-4]
    m = ((n - n.median()) * 4 / n.std().clamp_min(1e-6)).sigmoid()
    return _rgb(bg + (fg - bg) * m)


#: stimulus name -> (function, the parameter it sweeps by default, its unit)
STIMULI: dict[str, tuple[Callable[..., Tensor], str, str]] = {
    "grating": (grating, "orientation", "degrees"),
    "line": (line, "orientation", "degrees"),
    "curve": (curve, "curvature", "1/px"),
    "circle": (circle, "radius", "px"),
    "texture": (texture, "seed", ""),
}
PARAM_UNITS = {"orientation": "degrees", "phase": "degrees", "frequency": "cycles/px", "curvature": "1/px",
          "radius": "px", "length": "px", "width": "px", "x": "px", "y": "px", "seed": ""}


def make(stimulus: str, **params: Any) -> Tensor:
    """Render a named stimulus (``grating``, ``line``, ``curve``, ``circle``, ``texture``).

    ``x``/``y`` params are shorthands for ``position``.
    """
    if stimulus not in STIMULI:
        msg = f"unknown stimulus {stimulus!r}; choose one of {', '.join(STIMULI)} or pass a function value -> image"
        raise ValueError(msg)
    fn = STIMULI[stimulus][0]
    kw: dict[str, Any] = dict(params)
    if "x" in kw or "y" in kw:
        pos = kw.get("position", (0.0, 0.0))
        kw["position"] = (float(kw.pop("x", pos[0])), float(kw.pop("y", pos[1])))
    if "seed" in kw:
        kw["seed"] = int(kw["seed"])
    return fn(**kw)


# --- the shapes dataset ------------------------------------------------------------------------

N_ORIENT = 8  # straight lines/gratings in 8 orientation bins of 22.5 degrees
CURVE_BINS = ((0.08, 0.14), (0.18, 0.30))  # gentle / tight curvature, 1/px
CURVE_DIRS = 4  # curve orientation bins of 90 degrees (tangent direction mod 360)
CLASSES: list[str] = (
    [f"straight {int(22.5 * k * 10) / 10:g}°" for k in range(N_ORIENT)]
    + [f"{name} curve {90 * d}°" for name in ("gentle", "tight") for d in range(CURVE_DIRS)]
    + ["circle", "texture"]
)


@dataclass(frozen=True)
class ShapesDataset:
    """Seeded, indexable synthetic dataset: ``ds[i] -> (image [3, size, size], label)``; nothing is stored.

    Classes (:data:`CLASSES`): straight lines or gratings in 8 orientation bins (within +-9 degrees of
    the bin centre), curves in 2 curvature x 4 orientation bins, rings, and blob textures; random
    position, length, width, contrast polarity of brightness and a little noise.
    """

    n: int
    size: int = 32
    seed: int = 0

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        if not -self.n <= i < self.n:
            msg = f"index {i} is out of range for a ShapesDataset of {self.n} images"
            raise IndexError(msg)
        return sample(self.seed * 1_000_003 + (i % self.n), self.size)

    def batch(self, start: int, stop: int) -> tuple[Tensor, Tensor]:
        """Images ``[stop-start, 3, size, size]`` and labels of items ``start..stop-1``."""
        items = [self[i] for i in range(start, min(stop, self.n))]
        return torch.stack([x for x, _ in items]), torch.tensor([y for _, y in items])


def sample(seed: int, size: int = 32) -> tuple[Tensor, int]:
    """The image and label drawn by ``seed`` (see :class:`ShapesDataset`)."""
    g = torch.Generator().manual_seed(seed)

    def u(lo: float, hi: float) -> float:
        return lo + (hi - lo) * float(torch.rand((), generator=g))

    label = int(torch.randint(len(CLASSES), (), generator=g))
    bg, fg = u(0.0, 0.3), u(0.7, 1.0)
    pos = (u(-0.15, 0.15) * size, u(-0.15, 0.15) * size)
    width = u(1.0, 2.5)
    if label < N_ORIENT:
        ori = 22.5 * label + u(-9, 9)
        if u(0, 1) < 0.5:
            img = line(ori, size=size, length=u(0.5, 1.2) * size, width=width, position=pos, fg=fg, bg=bg)
        else:
            img = grating(ori, frequency=u(0.08, 0.2), phase=u(0, 360), size=size, contrast=fg - bg)
    elif label < N_ORIENT + 2 * CURVE_DIRS:
        k = label - N_ORIENT
        lo, hi = CURVE_BINS[k // CURVE_DIRS]
        ori = 90.0 * (k % CURVE_DIRS) + u(-30, 30)
        kappa = u(lo, hi)
        length = min(u(0.45, 0.7) * size, 3.5 / kappa)  # at most ~200 degrees of arc: never a closed ring
        img = curve(kappa, ori, size=size, length=length, width=width, position=pos, fg=fg, bg=bg)
    elif CLASSES[label] == "circle":
        img = circle(u(0.15, 0.35) * size, size=size, width=width, position=pos, fg=fg, bg=bg)
    else:
        img = texture(int(torch.randint(2**31 - 1, (), generator=g)), size=size, scale=u(1.5, 3.0), fg=fg, bg=bg)
    img = img + 0.03 * torch.randn(1, size, size, generator=g)
    return img.clamp(0, 1), label
