"""superposition-toy: the zoo model, its geometry against brute force, and an SAE that recovers its features."""

from __future__ import annotations

import itertools
import json
import math

import pytest
import torch

from interp_widget.analysis.superposition import REPRESENTED, SuperpositionResult, superposition
from interp_widget.zoo import superposition_toy as toy


def test_zoo_loads_one_sparsity_as_a_model_and_all_of_them() -> None:
    import interp_widget as iw

    model = iw.load("superposition-toy")
    toys = toy.load_all()
    assert toys.sparsities == list(toy.SPARSITIES) and toys.W.shape == (6, 5, 20)
    x = toys.sample(8, toy.DEFAULT_SPARSITY, seed=1)
    run = model.run(x, capture=["module:hidden", "module:relu"])
    i = toys.index(toy.DEFAULT_SPARSITY)
    torch.testing.assert_close(run["module:hidden"], x @ toys.W[i].T)
    torch.testing.assert_close(run["module:relu"], torch.relu(x @ toys.W[i].T @ toys.W[i] + toys.b[i]))
    from interp_widget import zoo

    assert "features represented" in zoo.card("superposition-toy")


def test_geometry_matches_brute_force_loops() -> None:
    g = torch.Generator().manual_seed(0)
    w = torch.randn(2, 3, 7, generator=g)
    w[1, :, 4] = 0  # a dropped feature
    res = SuperpositionResult(w, [0.1, 0.9])
    m, n = 3, 7
    for k in range(2):
        for i in range(n):
            wi = [float(w[k, a, i]) for a in range(m)]
            norm = math.sqrt(sum(v * v for v in wi))
            assert float(res.norms[k, i]) == pytest.approx(norm, abs=1e-6)
            dots = [sum(wi[a] * float(w[k, a, j]) for a in range(m)) for j in range(n)]
            for j in range(n):
                want = dots[j] if j != i else 0.0
                assert float(res.interference[k, i, j]) == pytest.approx(want, abs=1e-5)
                assert float(res.gram[k, i, j]) == pytest.approx(dots[j], abs=1e-5)
            if norm == 0:
                assert float(res.dimensionality[k, i]) == 0
                continue
            sq = [(d / norm) ** 2 for d in dots]
            assert float(res.superposition[k, i]) == pytest.approx(sum(sq) - sq[i], rel=1e-4)
            assert float(res.dimensionality[k, i]) == pytest.approx(norm**2 / sum(sq), rel=1e-4)
        frob = sum(float(w[k, a, j]) ** 2 for a in range(m) for j in range(n))
        assert float(res.dims_per_feature[k]) == pytest.approx(m / frob, rel=1e-5)
    # the 2-D projection keeps the geometry of a 2-dim model exactly (a rotation/reflection)
    two = SuperpositionResult(torch.randn(2, 6, generator=g), [0.5])
    p = two.projection[0]
    torch.testing.assert_close(p @ p.T, two.gram[0], atol=1e-5, rtol=1e-5)


def test_known_geometries() -> None:
    # an antipodal pair gets half a dimension each; a dedicated direction a whole one
    w = torch.tensor([[1.0, -1.0, 0.0], [0.0, 0.0, 1.0]])
    res = superposition(w)
    torch.testing.assert_close(res.dimensionality[0], torch.tensor([0.5, 0.5, 1.0]))
    # a regular pentagon in 2 dims: every feature gets 2/5 of a dimension
    ang = torch.arange(5) * 2 * math.pi / 5
    pent = superposition(torch.stack([ang.cos(), ang.sin()]))
    torch.testing.assert_close(pent.dimensionality[0], torch.full((5,), 0.4), atol=1e-5, rtol=1e-5)
    assert pent.n_represented == [5] and float(pent.dims_per_feature[0]) == pytest.approx(0.4)


def test_card_claims_hold_for_the_shipped_weights() -> None:
    res = superposition()
    card = json.loads((toy.HERE / "card.json").read_text())
    assert [r["n_represented"] for r in card["sparsities"]] == res.n_represented
    # dense features: one dimension each, only as many features as dimensions
    assert res.n_represented[0] == toy.N_HIDDEN
    assert float(res.dims_per_feature[0]) == pytest.approx(1.0, abs=0.02)
    # sparser features: more of them, in superposition (fewer dimensions each)
    assert res.n_represented == sorted(res.n_represented) and res.n_represented[-1] > toy.N_HIDDEN + 4
    dpf = res.dims_per_feature.tolist()
    assert all(a > b for a, b in itertools.pairwise(dpf))
    i = res.sparsities.index(0.99)
    rep = res.norms[i] >= REPRESENTED
    assert float(res.superposition[i][rep].max()) > 0.5  # some represented features share directions
    # importance decides who is represented: the most important features are kept
    assert bool(rep[: res.n_represented[i]].all())


def test_sae_recovers_the_true_features_of_the_toy_model() -> None:
    """Done-when: an SAE on the hidden activations at a sparsity with superposition recovers the features.

    The true features are the columns of ``W`` the toy model represents (norm >= 0.5; the others are
    about 0, with no direction to recover): at S = 0.99, 11 features in 5 dimensions."""
    from interp_widget.analysis.sae import best_cosine, train_sae

    torch.set_num_threads(1)
    toys = toy.load_all()
    s = 0.99
    w = toys.W[toys.index(s)]
    rep = w.norm(dim=0) >= REPRESENTED
    assert int(rep.sum()) > 2 * toy.N_HIDDEN  # really in superposition
    x = toys.sample(200_000, s, seed=1)
    h = toys.hidden(x[(x > 0).any(1)], s)
    res = train_sae(h, d_sae=40, l1_coefficient=0.1, steps=1500, batch_size=512, lr=3e-3, seed=0, progress=False)
    cos = best_cosine(w.T[rep], res)
    assert float(cos.mean()) >= 0.9, cos
    assert res.metrics is not None and res.metrics.explained_variance > 0.9
