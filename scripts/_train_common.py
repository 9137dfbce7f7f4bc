"""Shared by the zoo training scripts: the learning-rate schedule, the language-model training loop, and the
command lines (train + write the model card, or only recompute the card from the weights already written)."""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch


def warmup_cosine_lr(step: int, *, lr: float, warmup: int, steps: int) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to 10% of ``lr`` at ``steps``."""
    if step < warmup:
        return lr * (step + 1) / warmup
    frac = (step - warmup) / max(1, steps - warmup)
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))


def train_lm(ht: Any, next_batch: Callable[[], torch.Tensor], *, steps: int, lr: float, warmup: int,
             probe: Callable[[], str] | None = None, after_step: Callable[[int], None] | None = None) -> Any:
    """Train a HookedTransformer on next-token loss: AdamW(betas=(0.9, 0.98), wd=0.01), ``warmup_cosine_lr``,
    gradient clipping at 1.0; logs every 250 steps (``probe()`` adds its text to the line); ``after_step(step)``
    runs after every optimiser step. Returns ``ht`` in eval mode."""
    opt = torch.optim.AdamW(ht.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=0.01)
    t0 = time.time()
    for step in range(steps):
        step_lr = warmup_cosine_lr(step, lr=lr, warmup=warmup, steps=steps)
        for group in opt.param_groups:
            group["lr"] = step_lr
        loss = ht(next_batch(), return_type="loss")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(ht.parameters(), 1.0)
        opt.step()
        if after_step is not None:
            after_step(step)
        if step % 250 == 0 or step == steps - 1:
            extra = probe() if probe is not None else ""
            print(f"step {step:5d}  loss {loss.item():.4f}  {extra}lr {step_lr:.2e}  {time.time() - t0:6.1f}s",
                  flush=True)
    ht.eval()
    return ht


def transformer_main(doc: str, *, out_dir: Path, name: str, train: Callable[[], Any],
                     evaluate: Callable[[Any], Any], write_card: Callable[[Path, Any, dict[str, Any]], None],
                     training: dict[str, Any]) -> None:
    """Command line of a zoo transformer: train and save to ``--out`` (unless ``--eval-only``), then measure
    the weights as written and write the card (``training`` plus the training time)."""
    from interp_widget.models.format import load_hooked_transformer, save

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--eval-only", action="store_true", help="recompute the card from the written weights")
    parser.add_argument("--out", type=Path, default=out_dir)
    args = parser.parse_args()
    torch.set_num_threads(1)  # deterministic, and friendly to a shared CPU
    t0 = time.time()
    train_s = None
    if not args.eval_only:
        ht = train()
        train_s = time.time() - t0
        save(ht, args.out, name=name)
    ht, _ = load_hooked_transformer(args.out)  # measure exactly what ships
    results = evaluate(ht)
    training = dict(training)
    if train_s is not None:
        training["train_seconds"] = round(train_s, 1)
    write_card(args.out, results, training)
    print(f"wrote {args.out} in {time.time() - t0:.1f}s")


def card_main(doc: str | None, *, train: Callable[[], dict[str, Any]],
              write_card: Callable[[dict[str, Any] | None], None], card_md: Path) -> None:
    """Command line of a zoo model whose script writes its own weights: train (unless ``--card-only``),
    rewrite the card, print ``MODEL_CARD.md``."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--card-only", action="store_true", help="only recompute the model card from the saved weights")
    args = ap.parse_args()
    torch.set_num_threads(1)
    training = None if args.card_only else train()
    write_card(training)
    print(card_md.read_text())
