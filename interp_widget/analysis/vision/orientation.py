"""Measuring orientation in images and kernels (degrees, mod 180; the conventions of :mod:`.stimuli`).

* :func:`dominant_orientation`: structure tensor of an image: the orientation of its edges/lines.
* :func:`kernel_orientation`: the stripe orientation of a convolution kernel, from the peak of its
  zero-padded power spectrum (the grating the kernel matches best).
* :func:`angle_diff`: the distance between two orientations mod 180.
"""

from __future__ import annotations

import math

import torch

Tensor = torch.Tensor


def angle_diff(a: float | Tensor, b: float | Tensor) -> Tensor:
    """``|a - b|`` between orientations in degrees, mod 180 (in [0, 90])."""
    d = torch.as_tensor(a, dtype=torch.float32) - torch.as_tensor(b, dtype=torch.float32)
    d = torch.remainder(d, 180.0)
    return torch.minimum(d, 180.0 - d)


def circular_mean(angles: Tensor, weights: Tensor | None = None) -> float:
    """Weighted mean of orientations (degrees, mod 180), by doubling the angles."""
    w = torch.ones_like(angles) if weights is None else weights
    a = torch.deg2rad(2 * angles)
    return float(torch.rad2deg(torch.atan2((w * a.sin()).sum(), (w * a.cos()).sum())) / 2) % 180.0


def structure_tensor(image: Tensor, *, sigma: float = 1.0, border: int = 3) -> Tensor:
    """Summed structure tensor ``[[Jxx, Jxy], [Jxy, Jyy]]`` of an image ``[3|1, H, W]`` or ``[H, W]``.

    The grey image is smoothed with a Gaussian (``sigma`` px) and differentiated with Scharr kernels
    (nearly rotation-invariant, so no bias toward the axes), in screen coordinates (y up); ``border``
    pixels are dropped on each side.
    """
    g = image.detach().float()
    if g.dim() == 3:
        g = g.mean(0)
    g = g[None, None]
    if sigma > 0:
        r = math.ceil(3 * sigma)
        x = torch.arange(-r, r + 1, dtype=torch.float32)
        w = torch.exp(-(x**2) / (2 * sigma**2))
        w = w / w.sum()
        g = torch.nn.functional.pad(g, (r, r, r, r), mode="replicate")
        g = torch.nn.functional.conv2d(g, w.view(1, 1, 1, -1))
        g = torch.nn.functional.conv2d(g, w.view(1, 1, -1, 1))
    scharr = torch.tensor([[-3.0, 0.0, 3.0], [-10.0, 0.0, 10.0], [-3.0, 0.0, 3.0]]) / 32
    gx = torch.nn.functional.conv2d(g, scharr.view(1, 1, 3, 3))[0, 0]
    gy = torch.nn.functional.conv2d(g, scharr.t().contiguous().view(1, 1, 3, 3))[0, 0]  # d/drow = -d/dy
    if border > 1:
        b = border - 1
        gx, gy = gx[b:-b, b:-b], gy[b:-b, b:-b]
    return torch.stack([torch.stack([(gx * gx).sum(), -(gx * gy).sum()]),
                        torch.stack([-(gx * gy).sum(), (gy * gy).sum()])])


def dominant_orientation(image: Tensor) -> tuple[float, float]:
    """``(orientation, coherence)`` of an image's lines/edges.

    The structure tensor's main eigenvector is the dominant *gradient* direction; lines run
    perpendicular to it. ``coherence`` in [0, 1]: 1 for a single orientation, 0 for isotropic images.
    """
    j = structure_tensor(image)
    jxx, jxy, jyy = float(j[0, 0]), float(j[0, 1]), float(j[1, 1])
    grad = 0.5 * math.degrees(math.atan2(2 * jxy, jxx - jyy))
    tr = jxx + jyy
    coherence = math.sqrt((jxx - jyy) ** 2 + 4 * jxy**2) / tr if tr > 0 else 0.0
    return (grad + 90.0) % 180.0, coherence


def kernel_orientation(kernel: Tensor, *, pad: int = 64) -> tuple[float, float]:
    """``(orientation, frequency)`` of the grating a conv kernel ``[C, k, k]`` (or ``[k, k]``) matches best.

    Channels are summed (the response to a grey input). The kernel is zero-padded to ``pad`` and
    the peak of its power spectrum gives the spatial frequency vector; the stripes run perpendicular
    to it. Frequency is in cycles/px (0: the kernel prefers uniform patches).
    """
    k = kernel.detach().float()
    if k.dim() == 3:
        k = k.sum(0)
    power = torch.fft.fft2(k, s=(pad, pad)).abs() ** 2
    f = torch.fft.fftfreq(pad)
    fy_rows, fx = torch.meshgrid(f, f, indexing="ij")
    i = int(power.flatten().argmax())
    vx, vy = float(fx.flatten()[i]), -float(fy_rows.flatten()[i])  # y up
    freq = math.hypot(vx, vy)
    if freq == 0:
        return 0.0, 0.0
    return (math.degrees(math.atan2(vy, vx)) + 90.0) % 180.0, freq


__all__ = ["angle_diff", "circular_mean", "dominant_orientation", "kernel_orientation", "structure_tensor"]
