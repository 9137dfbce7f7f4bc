"""Train the zoo model ``polysemantic`` and write ``interp_widget/zoo/polysemantic/``.

A 1-layer TransformerLens ``HookedTransformer`` (d_model 64, one attention head of width 8, an MLP of 16
ReLU neurons, LayerNorm, n_ctx 32) over the word-level vocabulary of :mod:`interp_widget.zoo.polysemantic`,
trained to predict the next word of documents of the synthetic language defined there: 32 planted features
(topics, a refusal feature, a positive-sentiment feature), each owning three words, 0-2 active per document.
There are twice as many features as MLP neurons, and the single narrow head brings the context's features
to the MLP in superposition (8 dimensions for 32 features), so the MLP decodes them into the features' words.

    python scripts/train_polysemantic.py              # train (one CPU thread) and write the zoo files
    python scripts/train_polysemantic.py --eval-only  # recompute the card from the weights already written

After training, ``scripts/polysemantic_card.py`` measures each neuron's response to each planted feature
and writes ``card.json`` and ``MODEL_CARD.md``; ``tests/test_polysemantic_card.py`` recomputes them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _train_common import train_lm, transformer_main  # noqa: E402
from polysemantic_card import evaluate, write_card  # noqa: E402

from interp_widget.zoo import polysemantic as lang  # noqa: E402

OUT_DIR = ROOT / "interp_widget" / "zoo" / "polysemantic"
SEED = 0
STEPS = 4000
BATCH = 64
LR = 3e-3
WARMUP = 100
D_MODEL = 64
N_HEADS = 1  # one narrow head: the context's 32 features reach the MLP in superposition
D_HEAD = 8
D_MLP = 16


def make_config() -> object:
    from transformer_lens import HookedTransformerConfig

    return HookedTransformerConfig(
        n_layers=1, d_model=D_MODEL, n_heads=N_HEADS, d_head=D_HEAD, d_mlp=D_MLP, act_fn="relu", n_ctx=32,
        d_vocab=len(lang.VOCAB), normalization_type="LN", positional_embedding_type="standard",
        model_name=lang.NAME, seed=SEED,
    )


def train() -> object:
    from transformer_lens import HookedTransformer

    torch.manual_seed(SEED)
    ht = HookedTransformer(make_config(), tokenizer=lang.build_tokenizer())
    g = torch.Generator().manual_seed(SEED)
    return train_lm(ht, lambda: lang.sample(BATCH, g)[0], steps=STEPS, lr=LR, warmup=WARMUP)


def main() -> None:
    training = {"seed": SEED, "steps": STEPS, "batch": BATCH, "seq_len": lang.SEQ_LEN, "lr": LR,
                "warmup": WARMUP, "optimizer": "AdamW(betas=(0.9, 0.98), wd=0.01)",
                "schedule": "linear warm-up, cosine decay to 10%", "grad_clip": 1.0, "threads": 1}
    transformer_main(__doc__, out_dir=OUT_DIR, name=lang.NAME, train=train, evaluate=evaluate, write_card=write_card,
                     training=training)


if __name__ == "__main__":
    main()
