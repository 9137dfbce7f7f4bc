"""Feature dashboard data, checked against brute force on a tiny GPT-2 and a hand-made SAE.

Top examples and the histogram against ``run_with_cache`` + ``sae.encode`` over the whole dataset; logit
effects against a real forward pass (adding a multiple of the decoder row at the last layer's
``mlp.hook_post`` with ``ln_final``'s scale frozen changes the logits by exactly that multiple of the
effect); a neuron's feature contributions add up with ``b_dec`` to the SAE's reconstruction.
"""

from __future__ import annotations

from typing import Any

import _tiny_models as tiny
import pytest
import torch

from interp_widget.analysis.features import feature_logit_effects, feature_map, feature_view, prompt_activations
from interp_widget.errors import InputMismatchError, SiteIndexError
from interp_widget.models.model import Model

SITE = "blocks.1.mlp.hook_post"
D_MLP = 4 * tiny.D_MODEL
N_FEAT = 12


@pytest.fixture(scope="module")
def sae() -> Any:
    from sae_lens import StandardSAE, StandardSAEConfig

    g = torch.Generator().manual_seed(0)
    s = StandardSAE(StandardSAEConfig(d_in=D_MLP, d_sae=N_FEAT))
    with torch.no_grad():
        s.W_enc.copy_(torch.randn(D_MLP, N_FEAT, generator=g) * 0.2)
        s.b_enc.copy_(torch.randn(N_FEAT, generator=g) * 0.2)
        s.W_dec.copy_(torch.randn(N_FEAT, D_MLP, generator=g) * 0.2)
        s.b_dec.copy_(torch.randn(D_MLP, generator=g) * 0.05)
    s.cfg.metadata.hook_name = SITE
    return s


@pytest.fixture(scope="module")
def data() -> list[str]:
    return [tiny.text(20, seed=i) for i in range(10)]  # longer than a top example's window


def _all_acts(ht: Any, tl: Model, sae: Any, data: list[str]) -> list[torch.Tensor]:
    out = []
    with torch.no_grad():
        for text in data:
            _, cache = ht.run_with_cache(tl.to_tokens(text))
            out.append(sae.encode(cache[SITE][0]))
    return out


def test_top_examples_and_histogram_match_brute_force(tl: Model, ht: Any, sae: Any, data: list[str]) -> None:
    f = 4
    view = feature_view(tl, sae, f, data, k=3)
    acts = _all_acts(ht, tl, sae, data)
    best_per_seq = torch.stack([a[:, f].max() for a in acts])
    order = torch.argsort(best_per_seq, descending=True)[:3]
    torch.testing.assert_close(view.top.values, best_per_seq[order], rtol=1e-5, atol=1e-6)
    assert view.top.sequence.tolist() == order.tolist()
    # the focus token's activation in the window is the example's value
    for i in range(3):
        assert float(view.top.acts[i, int(view.top.focus[i])]) == pytest.approx(float(view.top.values[i]), abs=1e-5)
    all_f = torch.cat([a[:, f] for a in acts])
    assert int(view.histogram.counts.sum()) == all_f.numel() == view.histogram.n_total
    assert view.histogram.max == pytest.approx(float(all_f.max()), abs=1e-5)
    assert view.histogram.frac_positive == pytest.approx(float((all_f > 0).float().mean()), abs=1e-6)
    assert "SAE feature 4" in repr(view)


def test_logit_effects_are_the_direct_path(tl: Model, ht: Any, sae: Any) -> None:
    f, delta = 7, 0.5
    eff = feature_logit_effects(tl, sae, f, k=5)
    assert eff is not None
    tokens = tl.to_tokens("a b c d")
    scale: dict[str, torch.Tensor] = {}
    d = sae.W_dec[f].detach()

    def keep_scale(x: torch.Tensor, hook: Any) -> torch.Tensor:
        scale["s"] = x
        return x

    def frozen_scale(x: torch.Tensor, hook: Any) -> torch.Tensor:
        return scale["s"]

    def add(x: torch.Tensor, hook: Any) -> torch.Tensor:
        return x + delta * d

    with torch.no_grad():
        clean = ht.run_with_hooks(tokens, fwd_hooks=[("ln_final.hook_scale", keep_scale)])
        moved = ht.run_with_hooks(tokens, fwd_hooks=[(SITE, add), ("ln_final.hook_scale", frozen_scale)])
    diff = (moved - clean)[0, -1] * scale["s"][0, -1, 0] / delta
    torch.testing.assert_close(diff - diff.mean(), eff.effect, rtol=1e-4, atol=1e-4)
    assert eff.top_values[0] == eff.effect.max()
    assert eff.bottom_values[0] == eff.effect.min()


def test_prompt_activations(tl: Model, ht: Any, sae: Any) -> None:
    fm = feature_map(tl, sae, [tiny.text(6, seed=1)], k=2)
    toks, acts = prompt_activations(tl, fm.unit("feature", 2), "a b c")
    with torch.no_grad():
        _, cache = ht.run_with_cache(tl.to_tokens("a b c"))
        ref = sae.encode(cache[SITE][0])[:, 2]
    assert toks == ["<bos>", "a", "b", "c"]
    torch.testing.assert_close(acts, ref, rtol=1e-5, atol=1e-6)


def test_feature_map_links_both_ways(tl: Model, ht: Any, sae: Any, data: list[str]) -> None:
    fm = feature_map(tl, sae, data, k=4, n_links=5)
    assert (fm.n_neurons, fm.n_features) == (D_MLP, N_FEAT)
    # a feature's neurons: the largest entries of its decoder row
    feat = fm.get("feature", 3)
    row = sae.W_dec[3].detach()
    want = torch.argsort(row.abs(), descending=True)[:5].tolist()
    assert [i for _, i, _ in feat.links] == want
    assert all(k == "neuron" for k, _, _ in feat.links)
    # a neuron's features at its peak token on a prompt: contributions + b_dec = the SAE's reconstruction
    n = 11
    toks, acts, links = fm.prompt("neuron", n, "a b c d e")
    assert toks == ["<bos>", "a", "b", "c", "d", "e"]
    with torch.no_grad():
        _, cache = ht.run_with_cache(tl.to_tokens("a b c d e"))
        x = cache[SITE][0]
    torch.testing.assert_close(acts, x[:, n], rtol=1e-5, atol=1e-6)
    peak = int(acts.argmax())
    with torch.no_grad():
        contrib = sae.encode(x[peak]) * sae.W_dec[:, n]
        recon = sae.decode(sae.encode(x[peak]))[n]
    assert float(contrib.sum() + sae.b_dec[n].detach()) == pytest.approx(float(recon), abs=1e-5)
    assert [i for _, i, _ in links] == [int(i) for i in torch.argsort(contrib.abs(), descending=True)[:5]
                                         if float(contrib[i]) != 0.0]
    neuron = fm.get("neuron", n)
    assert neuron.logits is not None and len(neuron.top) == 4
    # the neuron's features: mean contribution at its top examples' focus tokens, in the full sequences
    mean = torch.zeros(N_FEAT)
    with torch.no_grad():
        for seq, pos in zip(neuron.top.sequence.tolist(), neuron.top.position.tolist(), strict=True):
            _, cache = ht.run_with_cache(tl.to_tokens(data[seq]))
            mean += sae.encode(cache[SITE][0, pos]) * sae.W_dec[:, n] / 4
    assert [i for _, i, _ in neuron.links] == torch.argsort(mean.abs(), descending=True)[:5].tolist()
    torch.testing.assert_close(torch.tensor([w for _, _, w in neuron.links]),
                               mean[[i for _, i, _ in neuron.links]], rtol=1e-4, atol=1e-5)
    assert fm.get("neuron", n) is neuron  # cached


def test_errors_name_the_problem(tl: Model, sae: Any, data: list[str]) -> None:
    fm = feature_map(tl, sae, data[:2], k=2)
    with pytest.raises(SiteIndexError, match=r"feature 12 is out of range: the SAE has 12 features \(0\.\.11\)"):
        fm.get("feature", 12)
    with pytest.raises(SiteIndexError, match="neuron 128 is out of range"):
        fm.get("neuron", 128)
    with pytest.raises(InputMismatchError, match="kind must be 'neuron' or 'feature'"):
        fm.get("head", 0)  # type: ignore[arg-type]
    with pytest.raises(InputMismatchError, match="type some text"):
        fm.prompt("feature", 0, "")
    with pytest.raises(InputMismatchError, match="SAE on an MLP neuron site"):
        feature_map(tl, sae, data, site="blocks.1.hook_resid_post")


def test_feature_map_progress_covers_both_scans_and_stops(tl: Model, sae: Any, data: list[str]) -> None:
    seen: list[tuple[int, int]] = []
    feature_map(tl, sae, data, k=2, batch_size=4, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (D_MLP + N_FEAT, D_MLP + N_FEAT)
    assert all(t == D_MLP + N_FEAT for _, t in seen) and [d for d, _ in seen] == sorted(d for d, _ in seen)

    def stop(done: int, total: int) -> None:
        if done > 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        feature_map(tl, sae, data, k=2, batch_size=4, progress=stop)


def test_with_a_trained_and_reloaded_sae_result(tl: Model, data: list[str], tmp_path: Any) -> None:
    from interp_widget.analysis.sae import load_sae, train_sae
    from interp_widget.analysis.steering import steer

    res = train_sae(tl, d_sae=8, site=SITE, tokens=data, steps=20, batch_size=64, progress=False)
    res.save(tmp_path / "sae")
    loaded = load_sae(tmp_path / "sae")
    fm = feature_map(tl, loaded, data[:3], k=2)  # the site comes from the saved SAE
    assert fm.site.hook_name == SITE and fm.n_features == 8
    torch.testing.assert_close(fm.get("feature", 1).top.values, feature_map(tl, res, data[:3], k=2).get(
        "feature", 1).top.values)
    out = steer(tl, "a b", None, (loaded, 2), op="clamp", strength=3.0, max_new_tokens=2, greedy=True)
    assert out.site == SITE and out.direction == "SAE feature 2"
