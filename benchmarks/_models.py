"""The model the benchmarks share: a GPT-2-small-shaped HookedTransformer with random weights (no download),
and a clean / corrupted token pair that differs at two middle positions."""

from __future__ import annotations

import warnings
from typing import Any


def gpt2_shaped(n_layers: int, d_vocab: int, n_pos: int, seed: int) -> tuple[Any, Any, Any]:
    import torch
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    cfg = HookedTransformerConfig(n_layers=n_layers, n_heads=12, d_model=768, d_head=64, d_mlp=3072, n_ctx=1024,
                                  d_vocab=d_vocab, act_fn="gelu_new", normalization_type="LN", seed=seed,
                                  model_name=f"random-gpt2-shaped-{n_layers}l")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = HookedTransformer(cfg).eval()
    g = torch.Generator().manual_seed(seed)
    clean = torch.randint(1, d_vocab, (1, n_pos), generator=g)
    clean[0, 0] = 0  # a BOS-like first token
    corrupted = clean.clone()
    mid = n_pos // 2
    corrupted[0, mid - 1:mid + 1] = torch.randint(1, d_vocab, (2,), generator=g)
    return model, clean, corrupted
