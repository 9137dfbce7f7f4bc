"""The ``polysemantic`` zoo model's card: every number recomputed from the shipped weights.

The card was written by ``scripts/polysemantic_card.py`` with raw TransformerLens (``run_with_cache``);
here the activations come through interp-widget's backend (``Model.run`` captures) and the neuron
view's scan, the controlled documents are regenerated from the language with the card's seed, and the
polysemantic neurons are re-derived from the card's written thresholds.
"""

from __future__ import annotations

import json

import pytest
import torch

from interp_widget import zoo
from interp_widget.analysis.neurons import scan, unit
from interp_widget.models.model import Model
from interp_widget.zoo import polysemantic as lang

pytestmark = pytest.mark.filterwarnings("ignore:HookedTransformer is deprecated:DeprecationWarning")

TOL = 2e-3  # the card keeps 4 decimals


@pytest.fixture(scope="module")
def card() -> dict:
    return json.loads((zoo.path("polysemantic") / "card.json").read_text())


@pytest.fixture(scope="module")
def model() -> Model:
    return zoo.load("polysemantic")


@pytest.fixture(scope="module")
def directions(card: dict, model: Model) -> torch.Tensor:
    """``[32, d_mlp]`` planted directions, recomputed: mean hook_post over word positions, feature minus baseline."""
    feat = card["features"]
    n = feat["n_docs"]
    g = torch.Generator().manual_seed(feat["seed"])
    active: list[list[int | str]] = [[]] * n + [[f] for f in range(lang.N_FEATURES) for _ in range(n)]
    toks, mask = lang.sample(len(active), g, active=active)
    assert mask.sum(1).tolist() == [0] * n + [1] * (lang.N_FEATURES * n)
    acts = torch.cat([model.run(toks[i:i + 256], capture=[feat["site"]]).cache[feat["site"]]
                      for i in range(0, len(toks), 256)])
    means = acts[:, 1:].mean(dim=1).reshape(1 + lang.N_FEATURES, n, -1).mean(dim=1)
    return means[1:] - means[0]


def test_card_describes_the_language(card: dict) -> None:
    assert card["model"] == "polysemantic" and card["reproduce"] == "python scripts/train_polysemantic.py"
    assert card["language"]["features"] == {k: list(v) for k, v in lang.FEATURES.items()}
    assert card["language"]["filler"] == list(lang.FILLER)
    assert list(card["features"]["directions"]) == list(lang.FEATURE_NAMES)


def test_planted_directions_recomputed(card: dict, directions: torch.Tensor) -> None:
    written = torch.tensor(list(card["features"]["directions"].values()))
    torch.testing.assert_close(directions, written, rtol=0, atol=TOL)


def test_polysemantic_neurons_recomputed(card: dict, directions: torch.Tensor) -> None:
    rel, abs_min = card["features"]["rel_threshold"], card["features"]["abs_threshold"]
    found = {}
    for n, resp in enumerate(directions.T):
        feats = [lang.FEATURE_NAMES[f] for f in resp.argsort(descending=True).tolist()
                 if resp[f] >= max(rel * resp.max(), abs_min)]
        if len(feats) >= 2:
            found[str(n)] = feats
    assert found == card["polysemantic_neurons"]
    assert len(found) >= 2  # the model is polysemantic
    text = zoo.card("polysemantic")
    for n, feats in found.items():
        assert f"`blocks.0.mlp.hook_post:{n}` | {feats[0]} (" in text


def test_losses_recomputed(card: dict, model: Model) -> None:
    g = torch.Generator().manual_seed(4321)
    toks, mask = lang.sample(512, g)
    logp = model.run(toks).logits.log_softmax(-1)[:, :-1]
    nll = -logp.gather(2, toks[:, 1:, None])[..., 0]
    assert float(nll.mean()) == pytest.approx(card["loss"]["model"], abs=TOL)
    oracle = -lang.next_word_distribution(mask).gather(1, toks[:, 1:]).log().mean()
    assert float(oracle) == pytest.approx(card["loss"]["oracle"], abs=TOL)
    # the model learned the language: far below the unigram loss, within reach of the oracle
    assert card["loss"]["model"] < card["loss"]["unigram"] - 1.0
    assert card["loss"]["model"] < card["loss"]["oracle"] + 0.35


def test_polysemantic_neurons_fire_on_fresh_documents_of_each_feature(card: dict, model: Model) -> None:
    """Through the neuron view, on documents drawn with another seed: each listed feature raises the neuron's
    mean activation (every position, <bos> included) well above the baseline's."""
    g = torch.Generator().manual_seed(7)
    abs_min = card["features"]["abs_threshold"]

    def mean_act(u: object, feats: list[str]) -> float:
        toks, _ = lang.sample(16, g, active=[feats] * 16)
        return scan(model, [u], toks, k=1, progress=None)[0][1].mean  # type: ignore[list-item]

    for n, feats in list(card["polysemantic_neurons"].items())[:4]:
        u = unit(model, f"blocks.0.mlp.hook_post:{n}")
        base = mean_act(u, [])
        for name in feats:
            assert mean_act(u, [name]) - base > 0.5 * abs_min, (n, name)
