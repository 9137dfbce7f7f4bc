"""Benchmark: feature-visualisation optimisation steps per second, ours vs Lucent and vs a plain loop.

Same model (``shapes-cnn``), objective (channel ``conv2:5``, mean over space), image size, step count,
optimiser (Adam, lr 0.05) and recipe in every run: a Fourier-parameterised, colour-decorrelated image
with Lucent's standard transforms (pad 12, jitter 8, random scale, random rotation, jitter 4).

* **ours**: :func:`interp_widget.feature_vis`.
* **Lucent** (``torch-lucent``): ``render_vis`` in a subprocess run by another Python (a throwaway
  venv: ``python -m venv /tmp/lucent --system-site-packages && /tmp/lucent/bin/pip install -c
  /tmp/c.txt torch-lucent safetensors``). ``preprocess=False`` and ``fixed_image_size`` set to the
  transformed size, so the network sees the same input size as ours (by default Lucent upsamples
  anything under 224 px to 224). The torchvision that pip pairs with torch 2.13 (0.28) cannot load
  its C operators here; Lucent's optimisation code only takes ``torchvision.transforms.Normalize``
  from it, so the subprocess puts a small ``Normalize`` in its place when the import fails (it is
  unused with ``preprocess=False``). Skipped, with a note, when that Python is missing.
* **plain loop**: the straightforward reference: pixel parameterisation, the same transforms,
  ``loss.backward()`` through the whole network (weights included), no early stop.

What ours does differently: gradients for the image only (``torch.autograd.grad``, no weight
gradients), the forward pass stops after the deepest layer the objective reads, scale and rotation
in one ``grid_sample``.

    python benchmarks/feature_vis.py                  # 64 px, 64 steps, one thread
    python benchmarks/feature_vis.py --size 128 --steps 128 --lucent-python /tmp/lucent/bin/python

Nothing here asserts a time; the ratios are what to compare.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from interp_widget.analysis.vision.featurevis import feature_vis, transform  # noqa: E402
from interp_widget.zoo import shapes_cnn  # noqa: E402

LUCENT_SCRIPT = r"""
import json, sys, time, types, warnings
import torch
torch.set_num_threads(int(sys.argv[4]))
try:
    import torchvision.transforms  # noqa: F401
except Exception:  # torchvision's C ops do not load with this torch: Lucent only needs Normalize
    for k in [k for k in sys.modules if k.startswith("torchvision")]:
        del sys.modules[k]
    tv, tr = types.ModuleType("torchvision"), types.ModuleType("torchvision.transforms")
    class Normalize(torch.nn.Module):
        def __init__(self, mean, std):
            super().__init__()
            self.mean, self.std = torch.tensor(mean).view(-1, 1, 1), torch.tensor(std).view(-1, 1, 1)
        def forward(self, x):
            return (x - self.mean) / self.std
    tr.Normalize, tv.transforms = Normalize, tr
    sys.modules["torchvision"], sys.modules["torchvision.transforms"] = tv, tr
warnings.filterwarnings("ignore")
from lucent.optvis import param, render, transform
from interp_widget.zoo import shapes_cnn
net = shapes_cnn.load_module()
size, steps = int(sys.argv[1]), int(sys.argv[2])
unit = sys.argv[3]
torch.manual_seed(0)
t = time.perf_counter()
render.render_vis(net, unit, lambda: param.image(size, fft=True, decorrelate=True),
                  transforms=transform.standard_transforms, thresholds=(steps,), preprocess=False,
                  progress=False, show_image=False, fixed_image_size=size + 12)
print(json.dumps({"seconds": time.perf_counter() - t}))
"""


def ours(net: torch.nn.Module, unit: str, size: int, steps: int) -> float:
    t = time.perf_counter()
    feature_vis(net, unit, size=size, steps=steps, seed=0)
    return time.perf_counter() - t


def plain_loop(net: torch.nn.Module, unit: str, size: int, steps: int) -> float:
    """The reference: pixel parameterisation, same transforms, full backward, full forward."""
    layer, ch = unit.split(":")
    g = torch.Generator().manual_seed(0)
    pixels = (torch.randn(1, 3, size, size, generator=g) * 0.01).requires_grad_(True)
    opt = torch.optim.Adam([pixels], lr=0.05)
    out: dict[str, torch.Tensor] = {}
    h = dict(net.named_modules())[layer].register_forward_hook(lambda _m, _i, o: out.__setitem__("a", o))
    t = time.perf_counter()
    try:
        for _ in range(steps):
            opt.zero_grad()
            net(transform(torch.sigmoid(pixels), g))
            loss = -out["a"][:, int(ch)].mean()
            loss.backward()
            opt.step()
    finally:
        h.remove()
    return time.perf_counter() - t


def lucent(python: str, unit: str, size: int, steps: int, threads: int) -> float | None:
    if not Path(python).is_file():
        return None
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run([python, "-c", LUCENT_SCRIPT, str(size), str(steps), unit, str(threads)],
                         capture_output=True, text=True, env=env, timeout=1800, check=False)
    if res.returncode != 0:
        print(f"Lucent run failed:\n{res.stderr[-2000:]}")
        return None
    return float(json.loads(res.stdout.strip().splitlines()[-1])["seconds"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=64)
    ap.add_argument("--unit", default="conv2:5")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3, help="best of N for each tool")
    ap.add_argument("--lucent-python", default="/tmp/lucent/bin/python")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    net = shapes_cnn.load_module()
    rows: dict[str, float] = {}
    ours(net, args.unit, args.size, 2)  # warm-up
    rows["ours (interp_widget.feature_vis)"] = min(ours(net, args.unit, args.size, args.steps)
                                                   for _ in range(args.repeats))
    rows["plain loop (pixels, full backward)"] = min(plain_loop(net, args.unit, args.size, args.steps)
                                                     for _ in range(args.repeats))
    times = [lucent(args.lucent_python, args.unit, args.size, args.steps, args.threads) for _ in range(args.repeats)]
    lucent_times = [x for x in times if x is not None]
    if lucent_times:
        rows["Lucent render_vis (torch-lucent 0.1.8)"] = min(lucent_times)
    else:
        print(f"(Lucent not measured: no working Lucent at {args.lucent_python}; see the module docstring)")
    base = rows["ours (interp_widget.feature_vis)"]
    print(f"shapes-cnn, objective {args.unit}, {args.size} px, {args.steps} steps, {args.threads} thread(s), "
          f"best of {args.repeats}")
    print(f"{'run':40s} {'seconds':>8s} {'steps/s':>8s} {'ours is x faster':>17s}")
    for name, sec in rows.items():
        print(f"{name:40s} {sec:8.2f} {args.steps / sec:8.1f} {sec / base:17.2f}")


if __name__ == "__main__":
    main()
