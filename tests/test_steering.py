"""Steering: logits and generations checked against a brute-force TransformerLens hook loop.

The reference adds the steering delta with a hand-written ``run_with_hooks`` hook (computing the
feature's change by encode -> set -> decode + error on the SAE directly) and generates greedily token by
token; our implementation goes through the backend's interventions and must give the same logits and the
same tokens.
"""

from __future__ import annotations

from typing import Any

import _tiny_models as tiny
import pytest
import torch

from interp_widget.analysis.steering import (
    make_steering,
    mean_difference,
    sae_feature,
    steer,
    steered_logits,
    steering_effect,
)
from interp_widget.errors import InputMismatchError, InterventionError, SiteIndexError
from interp_widget.models.model import Model

SITE = "blocks.0.hook_resid_post"
PROMPT = "a b c d e"


@pytest.fixture(scope="module")
def sae() -> Any:
    from sae_lens import StandardSAE, StandardSAEConfig

    torch.manual_seed(0)
    s = StandardSAE(StandardSAEConfig(d_in=tiny.D_MODEL, d_sae=64))
    with torch.no_grad():
        s.W_enc.copy_(torch.randn(tiny.D_MODEL, 64) * 0.3)
        s.b_enc.copy_(torch.rand(64) * 0.5)  # most features on, so clamp and scale change something
        s.W_dec.copy_(torch.randn(64, tiny.D_MODEL) * 0.3)
        s.b_dec.copy_(torch.randn(tiny.D_MODEL) * 0.1)
    return s


def _reference_hook(direction: Any, op: str, strength: float, mask: torch.Tensor) -> Any:
    """The steering edit written out by hand, as a TransformerLens hook (all rows steered)."""

    def hook(x: torch.Tensor, hook: Any) -> torch.Tensor:
        m = mask[: x.shape[1]][None, :, None].to(x)
        if isinstance(direction, tuple):
            sae, i = direction
            f = sae.encode(x)
            err = x - sae.decode(f)
            g = f.clone()
            g[..., i] = {"add": f[..., i] + strength, "scale": f[..., i] * strength,
                         "clamp": torch.full_like(f[..., i], strength)}[op]
            new = sae.decode(g) + err
            return x + (new - x) * m
        v = direction
        if op == "add":
            return x + strength * v * m
        u = v / v.norm()
        proj = (x @ u)[..., None]
        target = proj * strength if op == "scale" else torch.full_like(proj, strength)
        return x + (target - proj) * u * m

    return hook


@pytest.mark.parametrize("op", ["add", "scale", "clamp"])
@pytest.mark.parametrize("kind", ["vector", "feature"])
def test_logits_match_hand_written_hook(tl: Model, ht: Any, sae: Any, op: str, kind: str) -> None:
    torch.manual_seed(1)
    direction: Any = (sae, 5) if kind == "feature" else torch.randn(tiny.D_MODEL)
    strength = {"add": 3.0, "scale": -2.0, "clamp": 1.5}[op]
    tokens = tl.to_tokens([PROMPT, "e d c b a"])
    st = make_steering(tl, SITE, direction, op, strength, "all", tokens.shape[1])
    ours = steered_logits(tl, tokens, st)
    mask = torch.ones(tokens.shape[1], dtype=torch.bool)
    with torch.no_grad():
        ref = ht.run_with_hooks(tokens, fwd_hooks=[(SITE, _reference_hook(direction, op, strength, mask))])
        plain = ht(tokens)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    assert (ours - plain).abs().max() > 1e-3  # steering did change something
    assert not ht.hook_dict[SITE].fwd_hooks  # hooks gone


def test_steered_rows_only(tl: Model, ht: Any) -> None:
    v = torch.randn(tiny.D_MODEL, generator=torch.Generator().manual_seed(2))
    tokens = tl.to_tokens([PROMPT, PROMPT])
    st = make_steering(tl, SITE, v, "add", 2.0, [1, -1], tokens.shape[1])
    out = steered_logits(tl, tokens, st, rows=[1])
    with torch.no_grad():
        plain = ht(tokens[:1])
        mask = torch.zeros(tokens.shape[1], dtype=torch.bool)
        mask[[1, -1]] = True
        ref = ht.run_with_hooks(tokens[1:], fwd_hooks=[(SITE, _reference_hook(v, "add", 2.0, mask))])
    torch.testing.assert_close(out[:1], plain, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out[1:], ref, rtol=1e-5, atol=1e-5)


def _brute_force_greedy(ht: Any, prompt_tokens: torch.Tensor, hook: Any, n: int) -> list[int]:
    toks = prompt_tokens.clone()
    with torch.no_grad():
        for _ in range(n):
            logits = ht.run_with_hooks(toks, fwd_hooks=[(SITE, hook)] if hook else [])
            toks = torch.cat([toks, logits[:, -1].argmax(-1, keepdim=True)], 1)
    return toks[0, prompt_tokens.shape[1]:].tolist()


def test_greedy_generation_matches_brute_force(tl: Model, ht: Any, sae: Any) -> None:
    steps: list[tuple[int, int]] = []
    res = steer(tl, PROMPT, SITE, (sae, 7), op="clamp", strength=4.0, positions="prompt", max_new_tokens=6,
                greedy=True, progress=lambda d, t: steps.append((d, t)))
    prompt = tl.to_tokens(PROMPT)
    mask = torch.zeros(64, dtype=torch.bool)
    mask[: prompt.shape[1]] = True
    ref_steer = _brute_force_greedy(ht, prompt, _reference_hook((sae, 7), "clamp", 4.0, mask), 6)
    ref_base = _brute_force_greedy(ht, prompt, None, 6)
    assert res.steered_tokens[0].tolist() == ref_steer
    assert res.base_tokens[0].tolist() == ref_base
    assert steps == [(i, 6) for i in range(1, 7)]
    assert len(res.base_str_tokens[0]) == 6
    assert res.site == SITE
    assert "SAE feature 7" in repr(res)


def test_sampling_is_seeded_and_shares_randomness(tl: Model) -> None:
    zero = torch.zeros(tiny.D_MODEL)
    a = steer(tl, PROMPT, SITE, zero, strength=1.0, n_samples=3, max_new_tokens=5, seed=3)
    b = steer(tl, PROMPT, SITE, zero, strength=1.0, n_samples=3, max_new_tokens=5, seed=3)
    assert torch.equal(a.base_tokens, b.base_tokens)
    # a zero direction steers nothing: with shared random numbers, base and steered are the same text
    assert torch.equal(a.base_tokens, a.steered_tokens)
    assert a.differs() == [False, False, False]
    c = steer(tl, PROMPT, SITE, zero, strength=1.0, n_samples=3, max_new_tokens=5, seed=4)
    assert not torch.equal(a.base_tokens, c.base_tokens)


def test_sampling_follows_the_distribution() -> None:
    from interp_widget.analysis.steering import _sample

    logits = torch.log(torch.tensor([[0.1, 0.6, 0.3]])).repeat(20000, 1)
    u = torch.rand(20000, generator=torch.Generator().manual_seed(0))
    counts = torch.bincount(_sample(logits, u, greedy=False, temperature=1.0, top_k=None), minlength=3) / 20000
    torch.testing.assert_close(counts, torch.tensor([0.1, 0.6, 0.3]), atol=0.015, rtol=0)
    top1 = _sample(logits[:50], u[:50], greedy=False, temperature=1.0, top_k=1)
    assert (top1 == 1).all()


def test_mean_difference_matches_run_with_cache(tl: Model, ht: Any) -> None:
    a, b = ["a b c", "a b d e"], ["x y z", "w v"]
    got = mean_difference(tl, a, b, SITE)

    def mean(prompts: list[str]) -> torch.Tensor:
        rows = []
        for p in prompts:
            _, cache = ht.run_with_cache(tl.to_tokens(p))
            rows.append(cache[SITE][0, 1:].mean(0))
        return torch.stack(rows).mean(0)

    torch.testing.assert_close(got, mean(a) - mean(b), rtol=1e-5, atol=1e-6)
    last = mean_difference(tl, a, b, SITE, position=-1)
    _, ca = ht.run_with_cache(tl.to_tokens(a[0]))
    assert last.shape == (tiny.D_MODEL,)
    assert not torch.allclose(last, got)
    assert ca[SITE].shape[-1] == last.shape[0]


def test_steering_towards_a_token_raises_its_fraction(tl: Model, ht: Any) -> None:
    # the unembedding direction of one token, added to the last residual stream, makes it more frequent
    tid = int(tl.to_tokens("q", prepend_bos=False)[0, 0])
    v = ht.W_U[:, tid].detach()
    eff = steering_effect(tl, PROMPT, "blocks.1.hook_resid_post", v / v.norm(), ["q"], strength=8.0,
                          n_samples=8, max_new_tokens=6, seed=0)
    assert eff.n_generated == 48
    assert eff.steered_fraction > eff.base_fraction + 0.3
    assert "change" in repr(eff)


def test_bad_inputs_name_the_problem(tl: Model, sae: Any) -> None:
    import copy

    v = torch.randn(tiny.D_MODEL)
    sae_at_site = copy.deepcopy(sae)
    sae_at_site.cfg.metadata.hook_name = "blocks.1.hook_resid_post"
    assert steer(tl, PROMPT, None, (sae_at_site, torch.tensor(2).numpy()[()]), max_new_tokens=1).site == (
        "blocks.1.hook_resid_post")  # the SAE's own site; a numpy index is fine
    with pytest.raises(SiteIndexError, match="feature 64 is out of range: the SAE has 64 features"):
        sae_feature(sae, 64)
    with pytest.raises(InputMismatchError, match=r"width 31 but blocks\.0\.hook_resid_post has width 32"):
        steer(tl, PROMPT, SITE, torch.randn(31))
    with pytest.raises(InputMismatchError, match="unknown steering op 'set'"):
        steer(tl, PROMPT, SITE, v, op="set")  # type: ignore[arg-type]
    with pytest.raises(InterventionError, match="cannot be steered"):
        steer(tl, PROMPT, "blocks.0.attn.hook_pattern", v)
    with pytest.raises(SiteIndexError, match="position 9 is out of range: the prompt has 6 tokens"):
        steer(tl, PROMPT, SITE, v, positions=[9])
    with pytest.raises(InputMismatchError, match="context window of 32 tokens: ask for at most 26"):
        steer(tl, PROMPT, SITE, v, max_new_tokens=40)
    with pytest.raises(InputMismatchError, match="name the site"):
        steer(tl, PROMPT, None, v)
    with pytest.raises(InputMismatchError, match=r"this SAE reads blocks\.1\.hook_resid_post, not blocks\.0"):
        steer(tl, PROMPT, SITE, (sae_at_site, 2))
    with pytest.raises(InterventionError, match="non-zero direction"):
        steer(tl, PROMPT, SITE, torch.zeros(tiny.D_MODEL), op="scale")


def test_interrupt_through_progress(tl: Model) -> None:
    def stop(done: int, total: int) -> None:
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        steer(tl, PROMPT, SITE, torch.randn(tiny.D_MODEL), max_new_tokens=5, progress=stop)
    assert not tl.raw.hook_dict[SITE].fwd_hooks


def test_same_steering_on_nnsight(tl: Model, nn: Model, sae: Any) -> None:
    # the same weights through the nnsight backend give the same steered logits and generations
    tokens = tl.to_tokens([PROMPT])
    for direction, op in (((sae, 3), "clamp"), (torch.randn(tiny.D_MODEL, generator=torch.Generator().manual_seed(5)),
                                                "scale")):
        st_tl = make_steering(tl, SITE, direction, op, 2.5, "all", tokens.shape[1])
        st_nn = make_steering(nn, SITE, direction, op, 2.5, "all", tokens.shape[1])
        torch.testing.assert_close(steered_logits(nn, tokens, st_nn), steered_logits(tl, tokens, st_tl),
                                   rtol=1e-4, atol=1e-4)
    a = steer(tl, PROMPT, SITE, (sae, 3), op="add", strength=3.0, max_new_tokens=4, n_samples=2, seed=1)
    b = steer(nn, PROMPT, SITE, (sae, 3), op="add", strength=3.0, max_new_tokens=4, n_samples=2, seed=1)
    assert torch.equal(a.base_tokens, b.base_tokens) and torch.equal(a.steered_tokens, b.steered_tokens)


# --- the polysemantic zoo model: steering with an SAE feature moves the text in the planted direction ---
POLY_SITE = "blocks.0.mlp.hook_post"
POLY_PROMPT = "the a of is and to it in with on the a"  # filler words only: no feature active


def polysemantic_measurement(model: Any, card: dict[str, Any]) -> dict[str, Any]:
    """Train a small SAE on the model's MLP neurons, match its features to the planted ones of a neuron that
    the card names as polysemantic (best cosine with the planted direction, measured as the card does: a
    difference of means over documents with only that feature active and baseline documents), and steer
    with each matched feature from a baseline prompt: the fraction of generated words of each feature."""
    from interp_widget.analysis.sae import train_sae
    from interp_widget.zoo import polysemantic as lang

    neuron, names = next((int(n), f[:2]) for n, f in card["polysemantic_neurons"].items() if len(f) >= 2)
    sae = train_sae(model, d_sae=64, site=POLY_SITE, tokens=lang.sample(512, torch.Generator().manual_seed(0))[0],
                    steps=600, batch_size=512, seed=0, progress=False)

    def docs(active: list[str], seed: int) -> list[str]:
        t, _ = lang.sample(32, torch.Generator().manual_seed(seed), active=[active] * 32)
        return [model.tokenizer.decode(r[1:].tolist()) for r in t]

    baseline = docs([], 1)
    out: dict[str, Any] = {"neuron": neuron, "features": names, "matched": {}, "steering": {}}
    for name in names:
        planted = mean_difference(model, docs([name], 2), baseline, POLY_SITE)
        cos = (sae.W_dec @ planted) / (sae.W_dec.norm(dim=1) * planted.norm())
        f = int(cos.argmax())
        out["matched"][name] = (f, float(cos[f]))
        for other in names:
            eff = steering_effect(model, POLY_PROMPT, POLY_SITE, (sae, f), list(lang.FEATURES[other]), strength=6.0,
                                  n_samples=16, max_new_tokens=10, seed=0)
            out["steering"][(name, other)] = (eff.base_fraction, eff.steered_fraction)
    return out


def test_polysemantic_feature_steering_moves_text_in_the_planted_direction() -> None:
    import json
    from pathlib import Path

    import interp_widget as iw
    from interp_widget.zoo import polysemantic as lang

    model = iw.load("polysemantic")
    card = json.loads((Path(lang.__file__).parent / "card.json").read_text())
    m = polysemantic_measurement(model, card)
    a, b = m["features"]
    for name, other in ((a, b), (b, a)):
        assert m["matched"][name][1] >= 0.8, m["matched"]  # an SAE feature matches the planted feature
        base, steered = m["steering"][(name, name)]
        assert base < 0.05 and steered > 0.3, (name, base, steered)  # its words take over the answer
        base_o, steered_o = m["steering"][(name, other)]
        assert steered_o <= base_o + 0.05, (name, other, base_o, steered_o)  # not the other feature's words
