"""Train the zoo model ``shapes-cnn`` and write ``interp_widget/zoo/shapes_cnn/`` (weights + model card).

The data is :class:`interp_widget.analysis.vision.stimuli.ShapesDataset` (seeded synthetic lines,
gratings, curves, rings and textures, 18 classes); the network is
:func:`interp_widget.zoo.shapes_cnn.build`. Everything is seeded and runs on one CPU thread in a
few minutes.

    python scripts/train_shapes_cnn.py              # train, then write model.safetensors, card.json, MODEL_CARD.md
    python scripts/train_shapes_cnn.py --card-only  # recompute the card from the weights already written
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _train_common import card_main  # noqa: E402

from interp_widget.analysis.vision.stimuli import ShapesDataset  # noqa: E402
from interp_widget.zoo import shapes_cnn  # noqa: E402
from interp_widget.zoo.shapes_cnn.card import write_card  # noqa: E402

SEED = 0
N_TRAIN, N_VAL = 24_000, 2_000
EPOCHS = 6
BATCH = 128
LR = 3e-3


def dataset(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    return ShapesDataset(n, size=32, seed=seed).batch(0, n)


def accuracy(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        pred = torch.cat([net(x[i:i + 500]).argmax(-1) for i in range(0, len(x), 500)])
    return float((pred == y).float().mean())


def train() -> dict[str, float]:
    torch.manual_seed(SEED)
    t0 = time.time()
    x, y = dataset(N_TRAIN, seed=SEED + 1)
    xv, yv = dataset(N_VAL, seed=SEED + 2)
    print(f"data: {len(x)} train / {len(xv)} val images in {time.time() - t0:.0f}s", flush=True)
    net = shapes_cnn.build()
    opt = torch.optim.AdamW(net.parameters(), lr=LR, weight_decay=1e-4)
    steps = EPOCHS * (N_TRAIN // BATCH)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=LR, total_steps=steps, pct_start=0.15)
    g = torch.Generator().manual_seed(SEED)
    step = 0
    for epoch in range(EPOCHS):
        net.train()
        perm = torch.randperm(N_TRAIN, generator=g)
        total = 0.0
        for i in range(N_TRAIN // BATCH):
            idx = perm[i * BATCH:(i + 1) * BATCH]
            loss = torch.nn.functional.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
            step += 1
        net.eval()
        print(f"epoch {epoch + 1}/{EPOCHS}: loss {total / (N_TRAIN // BATCH):.3f}, "
              f"val acc {accuracy(net, xv, yv):.3f} ({time.time() - t0:.0f}s)", flush=True)
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(shapes_cnn.WEIGHTS))
    return {"train_accuracy": accuracy(net, x[:4000], y[:4000]), "val_accuracy": accuracy(net, xv, yv),
            "train_images": N_TRAIN, "epochs": EPOCHS, "seed": SEED, "seconds": round(time.time() - t0)}


def main() -> None:
    card_main(__doc__, train=train, write_card=write_card, card_md=shapes_cnn.HERE / "MODEL_CARD.md")


if __name__ == "__main__":
    main()
