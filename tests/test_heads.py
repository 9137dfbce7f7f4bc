"""Head scores: checked against a brute-force loop and TransformerLens's head detector."""

from __future__ import annotations

import math

import pytest
import torch

from interp_widget.analysis.heads import (
    KINDS,
    HeadScores,
    detection_masks,
    head_scores,
    repeated_random_tokens,
    scores_from_patterns,
)
from interp_widget.errors import ContextLengthError
from interp_widget.zoo.tokenizer import BOS_ID, CHAR_IDS, build_tokenizer

pytestmark = pytest.mark.filterwarnings("ignore:HookedTransformer is deprecated:DeprecationWarning")


def brute_force(pattern: torch.Tensor, tokens: list[int], kind: str, normalization: str) -> float:
    """One head's score, with plain loops over (query, key) and the definitions written out."""
    n = len(tokens)
    hit, defined = 0.0, 0
    for q in range(n):
        targets = []
        for k in range(n):
            if kind == "previous_token":
                ok = k == q - 1
            elif kind == "duplicate_token":
                ok = k < q and tokens[k] == tokens[q]
            else:  # induction: the token after an earlier copy of the current token
                ok = 1 <= k <= q and tokens[k - 1] == tokens[q] and k - 1 < q
            if ok:
                targets.append(k)
        hit += sum(float(pattern[q, k]) for k in targets)
        defined += bool(targets)
    if normalization == "all":
        return hit / float(pattern.sum())
    return hit / defined if defined else math.nan


def random_patterns(n_layers: int, n_heads: int, n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(n_layers, n_heads, n, n, generator=g) * 2
    scores = scores.masked_fill(~torch.ones(n, n, dtype=torch.bool).tril(), float("-inf"))
    return scores.softmax(-1)


@pytest.fixture(scope="module")
def tiny_ht() -> object:
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    cfg = HookedTransformerConfig(n_layers=2, d_model=32, n_heads=4, d_head=8, n_ctx=64, d_vocab=len(CHAR_IDS) + 2,
                                  attn_only=True, act_fn=None, normalization_type="LN", seed=3)
    ht = HookedTransformer(cfg, tokenizer=build_tokenizer())
    ht.eval()
    return ht


@pytest.mark.parametrize("normalization", ["defined", "all"])
def test_scores_match_brute_force(normalization: str) -> None:
    g = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, 5, (13,), generator=g)  # small vocabulary: many duplicates
    pats = random_patterns(2, 3, 13, seed=2)
    got = scores_from_patterns(pats, tokens, normalization=normalization)
    assert set(got) == set(KINDS)
    for kind in KINDS:
        assert got[kind].shape == (2, 3)
        for layer in range(2):
            for head in range(3):
                want = brute_force(pats[layer, head], tokens.tolist(), kind, normalization)
                assert got[kind][layer, head].item() == pytest.approx(want, abs=1e-6), (kind, layer, head)


def test_batched_equals_per_prompt() -> None:
    toks = repeated_random_tokens(3, 6, range(2, 9), bos=0, seed=4)
    pats = torch.stack([random_patterns(2, 2, toks.shape[1], seed=s) for s in range(3)])
    batched = scores_from_patterns(pats, toks)
    for b in range(3):
        single = scores_from_patterns(pats[b], toks[b])
        for kind in KINDS:
            torch.testing.assert_close(batched[kind][b], single[kind])


def test_undefined_kind_is_nan() -> None:
    tokens = torch.tensor([0, 1, 2, 3])  # no duplicates: duplicate and induction are undefined
    s = scores_from_patterns(random_patterns(1, 1, 4, 0), tokens)
    assert math.isnan(s["duplicate_token"].item()) and math.isnan(s["induction"].item())
    assert not math.isnan(s["previous_token"].item())


def test_known_patterns_score_one() -> None:
    toks = repeated_random_tokens(1, 7, range(10, 10_000), bos=0, seed=0)[0]
    n = toks.shape[0]
    masks = detection_masks(toks)
    prev = torch.zeros(n, n)
    prev[0, 0] = 1
    prev[torch.arange(1, n), torch.arange(n - 1)] = 1
    ind = torch.eye(n)
    ind[8:, :] = 0
    ind[torch.arange(8, n), torch.arange(8, n) - 6] = 1  # the token after the earlier copy (offset L-1 = 6)
    pats = torch.stack([prev, ind])[None]  # [1 layer, 2 heads, q, k]
    s = scores_from_patterns(pats, toks)
    assert s["previous_token"][0, 0].item() == pytest.approx(1.0)
    assert s["induction"][0, 1].item() == pytest.approx(1.0)
    assert masks["induction"].sum().item() == 7  # no token repeats inside the block


@pytest.mark.parametrize("kind", ["previous_token_head", "induction_head", "duplicate_token_head"])
def test_agrees_with_transformer_lens_detect_head(tiny_ht: object, kind: str) -> None:
    """TL's ``mul`` score = our ``all`` normalisation exactly; ``defined`` = ``all`` x n / |defined queries|."""
    from transformer_lens.head_detector import detect_head

    ours_kind = kind.removesuffix("_head")
    tokenizer = tiny_ht.tokenizer
    toks = repeated_random_tokens(3, 12, CHAR_IDS, bos=BOS_ID, seed=7)
    texts = [tokenizer.decode(t[1:]) for t in toks]
    assert torch.equal(tiny_ht.to_tokens(texts), toks)  # detect_head tokenizes the text back to the same ids
    with torch.no_grad():
        _, cache = tiny_ht.run_with_cache(toks)
    pats = torch.stack([cache[f"blocks.{i}.attn.hook_pattern"] for i in range(2)], dim=1)
    all_norm = scores_from_patterns(pats, toks, [ours_kind], normalization="all")[ours_kind]
    defined = scores_from_patterns(pats, toks, [ours_kind])[ours_kind]
    n_defined = detection_masks(toks, [ours_kind])[ours_kind].any(-1).sum(-1).float()  # [batch]
    for b, text in enumerate(texts):
        tl = detect_head(tiny_ht, text, kind)
        torch.testing.assert_close(all_norm[b], tl, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(defined[b] * n_defined[b] / toks.shape[1], tl, atol=1e-6, rtol=1e-5)
    # TL averages a list of prompts the same way head_scores averages its prompts
    torch.testing.assert_close(all_norm.mean(0), detect_head(tiny_ht, texts, kind), atol=1e-6, rtol=1e-5)


def test_head_scores_through_model_run(tiny_ht: object) -> None:
    from interp_widget.models.model import Model
    from interp_widget.tracing.tl import TransformerLensBackend

    model = Model(TransformerLensBackend(tiny_ht), name="tiny")
    hs = head_scores(model, seq_len=10, n_prompts=5, seed=3, batch_size=2)
    assert isinstance(hs, HeadScores)
    assert hs.kinds == list(KINDS)
    assert hs.labels[:5] == ["L0H0", "L0H1", "L0H2", "L0H3", "L1H0"]
    # same numbers straight from TransformerLens, without the backend
    toks = repeated_random_tokens(5, 10, CHAR_IDS, bos=BOS_ID, seed=3)  # special ids excluded, BOS first
    with torch.no_grad():
        _, cache = tiny_ht.run_with_cache(toks)
    pats = torch.stack([cache[f"blocks.{i}.attn.hook_pattern"] for i in range(2)], dim=1)
    ref = scores_from_patterns(pats, toks)
    for kind in KINDS:
        torch.testing.assert_close(hs[kind], ref[kind].nanmean(0))
    top = hs.top("induction", 2)
    assert len(top) == 2 and top[0][1] >= top[1][1]
    d = hs.to_dict()
    assert d["scores"]["induction"][1][2] == pytest.approx(hs["induction"][1, 2].item(), abs=1e-6)
    assert d["meta"]["seed"] == 3
    text = repr(hs)
    assert "induction" in text and "L1" in text and "top:" in text
    only = head_scores(model, "induction", seq_len=10, n_prompts=5, seed=3)
    assert only.kinds == ["induction"]
    torch.testing.assert_close(only["induction"], hs["induction"])


def test_head_scores_errors(tiny_ht: object) -> None:
    from interp_widget.models.model import Model
    from interp_widget.tracing.tl import TransformerLensBackend

    model = Model(TransformerLensBackend(tiny_ht), name="tiny")
    with pytest.raises(ContextLengthError, match=r"context of 64.*seq_len <= 31"):
        head_scores(model, seq_len=40)
    with pytest.raises(ValueError, match="unknown head score kind"):
        head_scores(model, "copying")
    hs = head_scores(model, seq_len=4, n_prompts=2)
    with pytest.raises(KeyError, match="kinds"):
        hs.top("copying")
    with pytest.raises(ValueError, match="do not match"):
        scores_from_patterns(torch.rand(1, 1, 5, 5), torch.arange(4))
