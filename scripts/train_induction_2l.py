"""Train the zoo's default model ``induction-2l`` and write ``interp_widget/zoo/induction_2l/``.

A 2-layer attention-only TransformerLens ``HookedTransformer`` (d_model 128, 4 heads of 32 per layer,
n_ctx 128, LayerNorm, learned positions) over the 72-token character vocabulary of
``interp_widget.zoo.tokenizer``, trained to predict the next character of sequences of random
characters that contain one repeated random block. The block's length and both copies' positions are
drawn afresh for every sequence, so the distance between the copies varies and a purely positional
head cannot solve the task: only an induction circuit can.

    python scripts/train_induction_2l.py              # train (one CPU thread, 3000 steps) and write the zoo files
    python scripts/train_induction_2l.py --eval-only   # recompute the card from the weights already written

After training, ``scripts/induction_2l_card.py`` measures what the model does (losses, head scores,
per-head ablations, which layer-0 heads layer 1's keys/queries/values need) and writes ``card.json``
plus ``MODEL_CARD.md``; ``tests/test_model_card.py`` recomputes those numbers from the shipped weights.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _train_common import train_lm, transformer_main  # noqa: E402
from induction_2l_card import (  # noqa: E402
    EVAL_BLOCK,
    eval_tokens,
    evaluate,
    half_losses,
    head_params,
    label,
    mean_ablate_hooks,
    write_card,
)

from interp_widget.analysis.heads import repeated_random_tokens  # noqa: E402
from interp_widget.zoo.tokenizer import BOS_ID, CHAR_IDS, VOCAB, build_tokenizer  # noqa: E402

OUT_DIR = ROOT / "interp_widget" / "zoo" / "induction_2l"
SEED = 0
STEPS = 3000
BATCH = 64
SEQ = 128  # tokens per training sequence, BOS included (= n_ctx)
LR = 3e-3
WARMUP = 100
MIN_BLOCK, MAX_BLOCK = 8, 63
# Head pruning (Michel et al. 2019, "Are Sixteen Heads Really Better than One?"): trained freely, the model
# spreads induction over three interchangeable layer-1 heads and two previous-token heads, so no small set
# of edges carries the behaviour. Once the repeat loss on the probe batch is below PRUNE_BELOW (checked every
# PRUNE_EVERY steps, at step PRUNE_LAST at the latest), every layer keeps the KEEP heads whose mean-ablation
# raises the probe's repeat loss most; the others are zeroed (W_Q, W_K, W_V, W_O and their biases) and held at
# zero for the rest of training, which goes on so the kept heads take over the whole job.
PRUNE_BELOW, PRUNE_EVERY, PRUNE_LAST, KEEP = 1.0, 50, 1500, 1
PRUNE_SEED = 1  # the pruning batch: [BOS] + R + R like the card's eval prompts, other random characters
TRAINING: dict[str, object] = {}  # filled in while training: what was pruned, when, and why


def make_config() -> object:
    from transformer_lens import HookedTransformerConfig

    return HookedTransformerConfig(
        n_layers=2, d_model=128, n_heads=4, d_head=32, n_ctx=SEQ, d_vocab=len(VOCAB),
        attn_only=True, act_fn=None, normalization_type="LN", positional_embedding_type="standard",
        model_name="induction-2l", seed=SEED,
    )


def training_batch(g: torch.Generator, batch: int = BATCH, seq: int = SEQ) -> torch.Tensor:
    """``[batch, seq]``: BOS + random characters with one random block repeated.

    Per sequence: block length ``L ~ U[MIN_BLOCK, MAX_BLOCK]``, first copy at ``s1 ~ U[0, n - 2L]``,
    second copy at ``s2 ~ U[s1 + L, n - L]`` (``n = seq - 1``), so the gap between the copies varies.
    """
    n = seq - 1
    ids = torch.tensor(CHAR_IDS)
    toks = ids[torch.randint(0, len(ids), (batch, n), generator=g)]
    lengths = torch.randint(MIN_BLOCK, MAX_BLOCK + 1, (batch,), generator=g)
    u1, u2 = torch.rand(batch, generator=g), torch.rand(batch, generator=g)
    for b in range(batch):
        length = int(lengths[b])
        s1 = int(u1[b] * (n - 2 * length + 1))
        s2 = s1 + length + int(u2[b] * (n - s1 - 2 * length + 1))
        toks[b, s2:s2 + length] = toks[b, s1:s1 + length]
    return torch.cat([torch.full((batch, 1), BOS_ID), toks], dim=1)


def train() -> object:
    from transformer_lens import HookedTransformer

    torch.manual_seed(SEED)
    ht = HookedTransformer(make_config(), tokenizer=build_tokenizer())
    g = torch.Generator().manual_seed(SEED)
    probe_tokens = eval_tokens()[:32]
    prune_tokens = repeated_random_tokens(32, EVAL_BLOCK, CHAR_IDS, bos=BOS_ID, seed=PRUNE_SEED)  # not the card's

    def probe() -> str:
        with torch.no_grad():
            p = half_losses(ht, probe_tokens)
        return f"first copy {p['first_half']:.3f}  repeat {p['repeated_half']:.3f}  "

    pruned: list[tuple[int, int]] = []

    def zero_pruned() -> None:
        with torch.no_grad():
            for layer, h in pruned:
                for w in head_params(ht, layer):
                    w[h] = 0

    def after_step(step: int) -> None:
        if pruned:
            zero_pruned()
            return
        if step < PRUNE_EVERY or (step % PRUNE_EVERY and step != PRUNE_LAST):
            return
        with torch.no_grad():
            base = half_losses(ht, prune_tokens)["repeated_half"]
            if base >= PRUNE_BELOW and step < PRUNE_LAST:
                return
            importance = {(layer, h): half_losses(ht, prune_tokens, mean_ablate_hooks(ht, prune_tokens, [(layer, h)]))
                          ["repeated_half"] - base
                          for layer in range(ht.cfg.n_layers) for h in range(ht.cfg.n_heads)}
        for layer in range(ht.cfg.n_layers):
            ranked = sorted(range(ht.cfg.n_heads), key=lambda h: -importance[(layer, h)])
            pruned.extend((layer, h) for h in ranked[KEEP:])
        zero_pruned()
        TRAINING["pruning"] = {
            "step": step, "probe_repeat_loss": round(base, 4), "keep_per_layer": KEEP,
            "importance": {label(k): round(v, 4) for k, v in importance.items()},
            "kept": [label(k) for k in importance if k not in pruned], "pruned": [label(k) for k in pruned]}
        print(f"step {step}: pruned {TRAINING['pruning']['pruned']}, kept {TRAINING['pruning']['kept']}"
              f" (probe repeat loss {base:.3f})", flush=True)

    return train_lm(ht, lambda: training_batch(g), steps=STEPS, lr=LR, warmup=WARMUP, probe=probe,
                    after_step=after_step)


# --------------------------------------------------------------------------- measurements for the card

def main() -> None:
    training = TRAINING
    training |= {"seed": SEED, "steps": STEPS, "batch": BATCH, "seq_len": SEQ, "lr": LR, "warmup": WARMUP,
                 "min_block": MIN_BLOCK, "max_block": MAX_BLOCK, "optimizer": "AdamW(betas=(0.9, 0.98), wd=0.01)",
                 "schedule": "linear warm-up, cosine decay to 10%", "grad_clip": 1.0, "threads": 1,
                 "prune_rule": {"below_repeat_loss": PRUNE_BELOW, "every": PRUNE_EVERY, "last": PRUNE_LAST,
                                "keep_per_layer": KEEP}}
    transformer_main(__doc__, out_dir=OUT_DIR, name="induction-2l", train=train, evaluate=evaluate,
                     write_card=write_card, training=training)


if __name__ == "__main__":
    main()
