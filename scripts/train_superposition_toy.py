"""Train the zoo model ``superposition-toy`` and write ``interp_widget/zoo/superposition_toy/``.

Elhage et al. (2022), "Toy Models of Superposition", section 3: 20 features, 5 hidden dimensions,
``x' = ReLU(W^T W x + b)``, importance ``0.7 ** i``, one instance per sparsity (all trained at once as a
batched model), AdamW with a cosine schedule. Seeded, one CPU thread, seconds.

    python scripts/train_superposition_toy.py              # train; write model.safetensors, card.json, MODEL_CARD.md
    python scripts/train_superposition_toy.py --card-only  # recompute the card from the saved weights
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _train_common import card_main  # noqa: E402

from interp_widget.analysis.superposition import REPRESENTED, superposition  # noqa: E402
from interp_widget.zoo import superposition_toy as toy  # noqa: E402

SEED = 0
STEPS = 10_000
BATCH = 1024
LR = 1e-3
REPRODUCE = "python scripts/train_superposition_toy.py"


def train() -> dict[str, float]:
    torch.manual_seed(SEED)
    t0 = time.time()
    k, m, n = len(toy.SPARSITIES), toy.N_HIDDEN, toy.N_FEATURES
    importance = toy.IMPORTANCE_DECAY ** torch.arange(n, dtype=torch.float32)
    prob = 1 - torch.tensor(toy.SPARSITIES)[:, None]  # [k, 1] chance a feature is on
    W = torch.nn.Parameter(torch.nn.init.xavier_normal_(torch.empty(k, m, n)))
    b = torch.nn.Parameter(torch.zeros(k, n))
    opt = torch.optim.AdamW([W, b], lr=LR, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, STEPS)
    g = torch.Generator().manual_seed(SEED + 1)
    loss = torch.tensor(0.0)
    for step in range(STEPS):
        x = torch.rand(BATCH, k, n, generator=g) * (torch.rand(BATCH, k, n, generator=g) < prob)
        h = torch.einsum("bkn,kmn->bkm", x, W)
        out = torch.relu(torch.einsum("bkm,kmn->bkn", h, W) + b)
        per = (importance * (x - out) ** 2).mean(dim=(0, 2))  # [k]
        loss = per.sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 2000 == 0 or step == STEPS - 1:
            print(f"step {step}: loss per sparsity {[round(float(v), 5) for v in per]}", flush=True)
    from safetensors.torch import save_file

    save_file({"W": W.detach().contiguous(), "b": b.detach().contiguous(), "importance": importance,
               "sparsities": torch.tensor(toy.SPARSITIES, dtype=torch.float64)}, str(toy.WEIGHTS),
              metadata={"sparsities": json.dumps(list(toy.SPARSITIES)), "seed": str(SEED), "steps": str(STEPS)})
    return {"steps": STEPS, "batch": BATCH, "lr": LR, "seed": SEED, "seconds": round(time.time() - t0, 1)}


def write_card(training: dict[str, float] | None) -> None:
    card_path = toy.HERE / "card.json"
    old = json.loads(card_path.read_text()) if card_path.is_file() else {}
    training = training or old.get("training")
    res = superposition(toy.load_all())
    rows = res.summary()
    card = {"name": toy.NAME, "n_features": toy.N_FEATURES, "n_hidden": toy.N_HIDDEN,
            "importance_decay": toy.IMPORTANCE_DECAY, "represented_threshold": REPRESENTED,
            "sparsities": rows, "training": training, "reproduce": REPRODUCE}
    card_path.write_text(json.dumps(card, indent=1) + "\n")
    lines = [
        f"# {toy.NAME}", "",
        "The ReLU-output toy model of Elhage et al. (2022), *Toy Models of Superposition*: "
        f"{toy.N_FEATURES} sparse features squeezed through {toy.N_HIDDEN} hidden dimensions, "
        "`x' = ReLU(W^T W x + b)`, feature `i` weighted by importance "
        f"`{toy.IMPORTANCE_DECAY} ** i`. Each feature is 0 with probability S (the sparsity), uniform in [0, 1] otherwise.",
        "",
        "One model per sparsity. A feature is *represented* when its column of W has norm >= "
        f"{REPRESENTED}; *dimensions per feature* is `m / |W|_F^2`.", "",
        "| sparsity S | 1 - S | features represented | dimensions per feature |",
        "|---|---|---|---|",
        *[f"| {r['sparsity']} | {r['feature_probability']:g} | {r['n_represented']} / {toy.N_FEATURES} | "
          f"{r['dims_per_feature']:.3f} |" for r in rows],
        "",
        "Dense features (S = 0) get one dimension each: only the 5 most important are represented. "
        "As the features get sparser, more of them share the 5 dimensions (antipodal pairs, pentagons...), "
        "interfering with each other (off-diagonal `W^T W`).",
        "",
        f"Training: {json.dumps(training)}. Rebuild with `{REPRODUCE}`.", "",
        "Load one sparsity with `iw.load('superposition-toy')` (default S = "
        f"{toy.DEFAULT_SPARSITY}; sites `module:hidden`, `module:relu`), every sparsity with "
        "`interp_widget.zoo.superposition_toy.load_all()`, and the geometry with `iw.superposition()`.",
    ]
    (toy.HERE / "MODEL_CARD.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    card_main(__doc__, train=train, write_card=write_card, card_md=toy.HERE / "MODEL_CARD.md")


if __name__ == "__main__":
    main()
