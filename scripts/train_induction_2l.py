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
from induction_2l_card import eval_tokens, evaluate, half_losses, write_card  # noqa: E402

from interp_widget.zoo.tokenizer import BOS_ID, CHAR_IDS, VOCAB, build_tokenizer  # noqa: E402

OUT_DIR = ROOT / "interp_widget" / "zoo" / "induction_2l"
SEED = 0
STEPS = 3000
BATCH = 64
SEQ = 128  # tokens per training sequence, BOS included (= n_ctx)
LR = 3e-3
WARMUP = 100
MIN_BLOCK, MAX_BLOCK = 8, 63


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

    def probe() -> str:
        with torch.no_grad():
            p = half_losses(ht, probe_tokens)
        return f"first copy {p['first_half']:.3f}  repeat {p['repeated_half']:.3f}  "

    return train_lm(ht, lambda: training_batch(g), steps=STEPS, lr=LR, warmup=WARMUP, probe=probe)


# --------------------------------------------------------------------------- measurements for the card

def main() -> None:
    training = {"seed": SEED, "steps": STEPS, "batch": BATCH, "seq_len": SEQ, "lr": LR, "warmup": WARMUP,
                "min_block": MIN_BLOCK, "max_block": MAX_BLOCK, "optimizer": "AdamW(betas=(0.9, 0.98), wd=0.01)",
                "schedule": "linear warm-up, cosine decay to 10%", "grad_clip": 1.0, "threads": 1}
    transformer_main(__doc__, out_dir=OUT_DIR, name="induction-2l", train=train, evaluate=evaluate,
                     write_card=write_card, training=training)


if __name__ == "__main__":
    main()
