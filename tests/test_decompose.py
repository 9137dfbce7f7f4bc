"""Decomposing a neuron into SAE features: the contributions sum to the SAE's own reconstruction read by the
neuron (SAELens's decode, and the model's own MLP run on the reconstruction), on the tiny GPT-2."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from interp_widget.analysis.decompose import decompose, feature_neurons, neuron_features
from interp_widget.analysis.neurons import unit
from interp_widget.analysis.sae import SAEResult
from interp_widget.errors import InputMismatchError, SiteIndexError
from interp_widget.models.model import Model
from interp_widget.tracing.sites import Site

pytestmark = pytest.mark.filterwarnings("ignore:HookedTransformer is deprecated:DeprecationWarning")

TEXT = "a b c d e f g a b c"


def random_sae(d_in: int, d_sae: int, site: str, seed: int = 0) -> SAEResult:
    from sae_lens import StandardSAE, StandardSAEConfig

    sae = StandardSAE(StandardSAEConfig(d_in=d_in, d_sae=d_sae))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in sae.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
        sae.b_enc.add_(0.2)  # a few features active per token
    return SAEResult(sae, Site.parse(site))


def test_post_site_contributions_sum_to_the_reconstruction(tl: Model) -> None:
    site = "blocks.1.mlp.hook_post"
    sae = random_sae(128, 64, site)
    d = decompose(tl, sae, f"{site}:17", TEXT)
    x = tl.run(TEXT, capture=[site]).cache[site][0]
    feats = sae.encode(x)
    recon = sae.decode(feats)[:, 17]  # SAELens's own decode
    torch.testing.assert_close(d.feature_acts, feats)
    torch.testing.assert_close(d.bias + d.contributions.sum(-1), recon, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(d.reconstruction, recon, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(d.activation, x[:, 17])
    torch.testing.assert_close(d.error, x[:, 17] - recon, rtol=1e-5, atol=1e-5)
    assert d.position == int(x[:, 17].argmax())
    top = d.top(3)
    assert len(top) == 3 and abs(top[0][1]) >= abs(top[1][1]) >= abs(top[2][1])
    assert all(v != 0 for _, v in d.top(64))  # inactive features contribute nothing and are left out
    assert "NeuronDecomposition" in repr(d)


def test_mlp_input_site_is_read_through_ln2_and_w_in(tl: Model, ht: Any) -> None:
    """An SAE at resid_mid: contributions sum to the pre-activation of the reconstruction (LN scale from the run)."""
    sae = random_sae(32, 48, "blocks.0.hook_resid_mid", seed=1)
    n = 5
    d = decompose(tl, sae, f"blocks.0.mlp.hook_pre:{n}", TEXT)
    cache = tl.run(TEXT, capture=["blocks.0.hook_resid_mid", "blocks.0.mlp.hook_pre"]).cache
    x = cache["blocks.0.hook_resid_mid"][0]
    recon_x = sae.decode(sae.encode(x))
    # the model's own ln2 + W_in on the reconstruction, with ln2's scale frozen to the real run's
    block = ht.blocks[0]
    xc = x - x.mean(-1, keepdim=True)
    scale = (xc.pow(2).mean(-1, keepdim=True) + ht.cfg.eps).sqrt()
    rc = recon_x - recon_x.mean(-1, keepdim=True)
    want = (rc / scale * block.ln2.w + block.ln2.b) @ block.mlp.W_in[:, n] + block.mlp.b_in[n]
    torch.testing.assert_close(d.reconstruction, want.detach(), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(d.bias + d.contributions.sum(-1), d.reconstruction, rtol=1e-5, atol=1e-5)
    # with the real input instead of the reconstruction, the same formula gives the real pre-activation
    real = (xc / scale * block.ln2.w + block.ln2.b) @ block.mlp.W_in[:, n] + block.mlp.b_in[n]
    torch.testing.assert_close(real.detach(), cache["blocks.0.mlp.hook_pre"][0, :, n], rtol=1e-4, atol=1e-4)


def test_features_to_neurons_and_back() -> None:
    sae = random_sae(16, 24, "blocks.0.mlp.hook_post", seed=2)
    w = sae.W_dec
    fn = feature_neurons(sae, 3, k=4)
    assert fn.indices.tolist() == torch.argsort(w[3], descending=True)[:4].tolist()
    torch.testing.assert_close(fn.values, w[3, fn.indices])
    nf = neuron_features(sae, 7)
    assert len(nf.indices) == 24 and nf.values.tolist() == sorted(w[:, 7].tolist(), reverse=True)
    with pytest.raises(SiteIndexError, match="feature 24 is out of range"):
        feature_neurons(sae, 24)
    with pytest.raises(SiteIndexError, match="neuron 16 is out of range"):
        neuron_features(sae, 16)


def test_bad_inputs_are_named(tl: Model) -> None:
    sae = random_sae(128, 8, "blocks.1.mlp.hook_post")
    with pytest.raises(InputMismatchError, match="cannot be read exactly"):
        decompose(tl, sae, "blocks.0.mlp.hook_post:1", TEXT)
    with pytest.raises(InputMismatchError, match="takes a neuron"):
        decompose(tl, sae, unit(tl, "blocks.1.mlp.hook_post", direction=torch.ones(128)), TEXT)
    with pytest.raises(InputMismatchError, match="one input"):
        decompose(tl, sae, "blocks.1.mlp.hook_post:1", torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(TypeError, match="not an SAE"):
        decompose(tl, object(), "blocks.1.mlp.hook_post:1", TEXT)
    with pytest.raises(SiteIndexError, match="position 40 is out of range"):
        decompose(tl, sae, "blocks.1.mlp.hook_post:1", TEXT, position=40)
