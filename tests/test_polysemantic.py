"""The ``polysemantic`` zoo model end to end: its language, and the issue's done-when check.

An SAE trained by the project (``train_sae``, SAELens) on the MLP activations recovers the planted
features, and decomposing a neuron that the model card names as polysemantic splits it into SAE
features matching the planted features it mixes (cosine >= 0.8 with the card's planted directions).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from interp_widget import zoo
from interp_widget.analysis.decompose import decompose, feature_neurons, neuron_features
from interp_widget.analysis.sae import SAEResult, best_cosine, train_sae
from interp_widget.models.model import Model
from interp_widget.zoo import polysemantic as lang

pytestmark = pytest.mark.filterwarnings("ignore:HookedTransformer is deprecated:DeprecationWarning")

SITE = "blocks.0.mlp.hook_post"
MATCH = 0.8


# --- the language -------------------------------------------------------------------------------------
def test_tokenizer_round_trips_and_saves(tmp_path: Path) -> None:
    tok = lang.build_tokenizer()
    text = "apple the rain sorry cannot of"
    ids = tok(text)["input_ids"]
    assert ids == [lang.BOS_ID, *(lang.VOCAB[w] for w in text.split())]
    assert tok.decode(ids, skip_special_tokens=True) == text
    assert tok("apple zebra")["input_ids"] == [lang.BOS_ID, lang.VOCAB["apple"], lang.UNK_ID]
    tok.save_pretrained(str(tmp_path))
    assert json.loads((tmp_path / "tokenizer.json").read_text())["model"]["type"] == "WordLevel"


def test_documents_follow_the_generative_process() -> None:
    g = torch.Generator().manual_seed(0)
    toks, mask = lang.sample(4000, g)
    assert toks.shape == (4000, lang.SEQ_LEN) and (toks[:, 0] == lang.BOS_ID).all()
    counts = torch.bincount(mask.sum(1), minlength=3).float() / 4000
    torch.testing.assert_close(counts, torch.tensor(lang.N_ACTIVE_PROBS), atol=0.03, rtol=0)
    words = toks[:, 1:]
    filler = torch.isin(words, torch.tensor(lang.FILLER_IDS))
    assert filler[mask.sum(1) == 0].all()  # the baseline is all filler
    assert float(filler[mask.any(1)].float().mean()) == pytest.approx(lang.P_FILLER, abs=0.02)
    ids = torch.tensor(lang.FEATURE_IDS)
    for i in range(200):  # every non-filler word belongs to an active feature
        allowed = ids[mask[i]].flatten()
        assert torch.isin(words[i][~filler[i]], allowed).all()
    probs = lang.next_word_distribution(mask[:50])
    torch.testing.assert_close(probs.sum(1), torch.ones(50))
    fixed, m = lang.sample(3, g, active=[["fruit"], [], ["refusal", 5]])
    assert m.sum(1).tolist() == [1, 0, 2] and m[2, lang.feature_index("refusal")]
    assert torch.isin(fixed[0, 1:], torch.tensor([*lang.FEATURE_IDS[0], *lang.FILLER_IDS])).all()
    with pytest.raises(ValueError, match="no feature named 'banana'"):
        lang.feature_index("banana")
    with pytest.raises(ValueError, match="feature 32 is out of range"):
        lang.feature_index(32)


# --- done when ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model() -> Model:
    return zoo.load("polysemantic")


@pytest.fixture(scope="module")
def card() -> dict:
    return json.loads((zoo.path("polysemantic") / "card.json").read_text())


@pytest.fixture(scope="module")
def planted(card: dict) -> torch.Tensor:
    return torch.tensor(list(card["features"]["directions"].values()))


@pytest.fixture(scope="module")
def sae(model: Model) -> SAEResult:
    torch.manual_seed(0)
    toks, _ = lang.sample(3000, torch.Generator().manual_seed(11))
    return train_sae(model, site=SITE, tokens=toks, d_sae=64, l1_coefficient=1.0, steps=5000, batch_size=256,
                     lr=1e-3, seed=0, progress=None)


def planted_matches(sae: SAEResult, planted: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per planted feature: the best cosine with an SAE decoder direction, and that SAE feature."""
    cos = torch.nn.functional.normalize(planted, dim=1) @ torch.nn.functional.normalize(sae.W_dec, dim=1).T
    best = cos.max(dim=1)
    torch.testing.assert_close(best.values, best_cosine(planted, sae))  # the SAE module's own measure agrees
    return best.values, best.indices


def test_the_sae_reconstructs_and_recovers_planted_features(sae: SAEResult, planted: torch.Tensor) -> None:
    assert sae.metrics is not None and sae.metrics.explained_variance > 0.85
    cos, _ = planted_matches(sae, planted)
    # measured: 15 of the 32 planted features have a decoder direction at cosine >= 0.8 (mean best cosine 0.76):
    # the rest are split across several SAE features (their MLP direction turns as evidence accumulates)
    assert int((cos >= MATCH).sum()) >= 12 and float(cos.mean()) > 0.7


def test_a_polysemantic_neuron_decomposes_into_its_planted_features(model: Model, card: dict, sae: SAEResult,
                                                                   planted: torch.Tensor) -> None:
    """The card's strongest polysemantic neuron (listed first) and every other card neuron whose planted features
    all have a match. Some planted features are split over several SAE features, so each SAE feature is labelled
    with the planted feature its decoder direction is closest to. On a document where only one of the neuron's
    features is active, SAE features labelled with it make up most of the neuron's (positive) SAE contributions
    over the document, its best match is among the three largest, and the match writes to the neuron (for the first neuron's strongest feature, more than to any other)."""
    cos, match = planted_matches(sae, planted)
    label = (torch.nn.functional.normalize(planted, dim=1) @ torch.nn.functional.normalize(sae.W_dec, dim=1).T
             ).argmax(dim=0)  # [d_sae]
    named = card["polysemantic_neurons"]
    full = [n for n, names in named.items() if all(cos[lang.feature_index(f)] >= MATCH for f in names)]
    first = next(iter(named))
    assert first in full, (first, named[first], [round(float(cos[lang.feature_index(f)]), 3) for f in named[first]])
    assert len(full) >= len(named) // 2, full  # measured: 8 of the 16 card neurons decompose entirely
    g = torch.Generator().manual_seed(3)
    shares: dict[tuple[str, str], float] = {}
    for n in full:
        feats = [lang.feature_index(f) for f in named[n]]
        assert len({int(match[f]) for f in feats}) == len(feats), f"neuron {n}: two planted features share a match"
        for f in feats:
            toks, _ = lang.sample(1, g, active=[[f]])
            d = decompose(model, sae, f"{SITE}:{n}", toks[0])
            torch.testing.assert_close(d.bias + d.contributions.sum(-1), sae.decode(d.feature_acts)[:, int(n)],
                                       rtol=1e-5, atol=1e-5)
            total = d.contributions.sum(0).clamp(min=0)  # [d_sae], over the document's tokens
            shares[n, lang.FEATURE_NAMES[f]] = float(total[label == f].sum() / total.sum())
            assert int(match[f]) in torch.topk(total, 3).indices.tolist(), (n, lang.FEATURE_NAMES[f], d.top(3))
            back = neuron_features(sae, int(n))  # the SAE features loading on the neuron, largest first
            assert int(match[f]) in back.indices[back.values > 0].tolist()
    assert feature_neurons(sae, int(match[lang.feature_index(named[first][0])]), k=1).indices.tolist() == [int(first)]
    assert min(v for (n, _), v in shares.items() if n == first) >= 0.7, shares
    assert sorted(shares.values())[len(shares) // 2] >= 0.7, shares  # the median
