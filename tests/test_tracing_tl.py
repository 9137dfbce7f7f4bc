"""The TransformerLens backend against TransformerLens's own run_with_cache / run_with_hooks."""

from __future__ import annotations

from typing import Any

import _tiny_models as tiny
import pytest
import torch

from interp_widget.errors import (
    BackendError,
    ContextLengthError,
    InterventionError,
    SiteIndexError,
    UnknownSiteError,
)
from interp_widget.models.model import Model
from interp_widget.tracing import interventions as iv
from interp_widget.tracing.base import Intervention
from interp_widget.tracing.sites import Site
from interp_widget.tracing.tl import TransformerLensBackend


@pytest.fixture(scope="module")
def hooked() -> Any:
    return tiny.tl_gpt2()


@pytest.fixture(scope="module")
def model(hooked: Any) -> Model:
    return Model(TransformerLensBackend(hooked))


@pytest.fixture(scope="module")
def tokens(model: Model) -> torch.Tensor:
    return model.to_tokens([tiny.text(10, seed=1), tiny.text(10, seed=2), tiny.text(10, seed=3)])


def _no_hooks_left(tl_model: Any) -> bool:
    return all(not hp.fwd_hooks and not hp.bwd_hooks for hp in tl_model.hook_dict.values())


def test_spec_and_sites(model: Model) -> None:
    spec = model.spec
    assert (spec.architecture, spec.n_layers, spec.n_heads, spec.d_model, spec.d_head, spec.n_ctx, spec.d_vocab,
            spec.d_mlp) == ("hooked-transformer", 2, 4, 32, 8, 32, 50, 128)
    names = {i.site.hook_name for i in model.sites()}
    assert {"blocks.1.attn.hook_result", "blocks.0.mlp.hook_post", "ln_final.hook_normalized", "logits"} <= names
    shapes = {i.site.hook_name: i.shape for i in model.sites()}
    assert shapes["blocks.0.attn.hook_pattern"] == ("batch", "head", "query_pos", "key_pos")
    attn_only = Model(TransformerLensBackend(tiny.tl_attn_only()))
    only = {i.site.hook_name for i in attn_only.sites()}
    assert "blocks.0.attn.hook_pattern" in only and not any("mlp" in n or "resid_mid" in n for n in only)
    assert attn_only.spec.d_mlp is None


def test_captures_equal_run_with_cache(model: Model, hooked: Any, tokens: torch.Tensor) -> None:
    names = [i.site.hook_name for i in model.sites() if i.site.hook_name != "logits"]
    run = model.run(tokens, capture=[*names, "logits"])
    assert not hooked.cfg.use_attn_result  # switched on for the run only
    hooked.set_use_attn_result(True)
    try:
        logits, cache = hooked.run_with_cache(tokens)
    finally:
        hooked.set_use_attn_result(False)
    for name in names:
        assert torch.equal(run.cache[name], cache[name]), name
    assert run.logits is not None and torch.equal(run.logits, logits) and torch.equal(run.cache["logits"], logits)


def test_interventions_equal_hand_written_hooks(model: Model, hooked: Any, tokens: torch.Tensor) -> None:
    steer = torch.linspace(-1, 1, 32)

    def z_hook(z: torch.Tensor, hook: Any) -> torch.Tensor:
        z = z.clone()
        z[:, 3, 1] = 0
        return z

    def resid_hook(x: torch.Tensor, hook: Any) -> torch.Tensor:
        x = x.clone()
        x[1] = x[1] + steer
        return x

    def pattern_hook(p: torch.Tensor, hook: Any) -> torch.Tensor:
        p = p.clone()
        p[[0, 2], 2] = p[[0, 2], 2] * 0.5
        return p

    ref = hooked.run_with_hooks(tokens, fwd_hooks=[("blocks.0.attn.hook_z", z_hook),
                                                   ("blocks.1.hook_resid_pre", resid_hook),
                                                   ("blocks.1.attn.hook_pattern", pattern_hook)])
    run = model.run(tokens, interventions=[
        iv.zero("blocks.0.attn.hook_z", head=1, position=3),
        iv.add("blocks.1.hook_resid_pre", steer, rows=[1]),
        iv.scale("blocks.1.attn.hook_pattern", 0.5, head=2, rows=[0, 2]),
    ])
    assert run.logits is not None and torch.allclose(run.logits, ref, atol=1e-6)
    assert _no_hooks_left(hooked)


def test_rows_leave_other_rows_alone(model: Model, tokens: torch.Tensor) -> None:
    clean = model.run(tokens)
    run = model.run(tokens, interventions=[iv.zero("blocks.0.hook_resid_post", rows=slice(1, 2))])
    assert clean.logits is not None and run.logits is not None
    assert torch.equal(run.logits[[0, 2]], clean.logits[[0, 2]])
    assert not torch.allclose(run.logits[1], clean.logits[1])


def test_intervention_helpers(model: Model, tokens: torch.Tensor) -> None:
    site = "blocks.0.attn.hook_z"
    reference = model.to_tokens([tiny.text(10, seed=s) for s in range(10, 16)])
    ref_z = model.run(reference, capture=[site]).cache[site]
    # mean ablation of head 2: every row of the patched run sees the reference mean
    run = model.run(tokens, capture=[site], interventions=[iv.mean(model, site, reference, head=2)])
    assert torch.allclose(run.cache[site][:, :, 2], ref_z[:, :, 2].mean(0).expand(3, -1, -1), atol=1e-6)
    over = iv.mean(model, site, reference, head=2, position=4, over_positions=True)
    run = model.run(tokens, capture=[site], interventions=[over])
    assert torch.allclose(run.cache[site][:, 4, 2], ref_z[:, :, 2].mean((0, 1)).expand(3, -1), atol=1e-6)
    # resample ablation is seeded: same seed, same rows; and each row is some reference row
    a = iv.resample(model, site, reference, n_rows=3, seed=7, head=0)
    b = iv.resample(model, site, reference, n_rows=3, seed=7, head=0)
    assert isinstance(a.value, torch.Tensor) and isinstance(b.value, torch.Tensor) and torch.equal(a.value, b.value)
    run = model.run(tokens, capture=[site], interventions=[a])
    for row in run.cache[site][:, :, 0]:
        assert any(torch.allclose(row, r, atol=1e-6) for r in ref_z[:, :, 0])
    # patching from another run, per position
    clean = model.run(reference[:3], capture=[site])
    run = model.run(tokens, capture=[site], interventions=[iv.patch(site, clean, head=3, position=5)])
    assert torch.equal(run.cache[site][:, 5, 3], clean.cache[site][:, 5, 3])
    with pytest.raises(InterventionError, match="did not capture"):
        iv.patch("blocks.1.attn.hook_z", clean)
    with pytest.raises(InterventionError, match="batch size 2"):
        model.run(tokens, interventions=[iv.patch(site, ref_z[:2])])
    with pytest.raises(SiteIndexError, match=r"position 99 .* 11 positions \(0..10\)"):
        iv.mean(model, site, reference, position=99)
    with pytest.raises(UnknownSiteError, match="unknown site component"):
        iv.zero("blocks.0.hook_nope")
    with pytest.raises(SiteIndexError, match=r"4 heads per layer \(0..3\)"):
        iv.resample(model, site, reference, n_rows=3, head=4)


def test_gradients_equal_autograd(model: Model, hooked: Any, tokens: torch.Tensor) -> None:
    def metric(logits: torch.Tensor) -> torch.Tensor:
        return logits[:, -1].log_softmax(-1)[:, 3].mean()

    sites = ["blocks.0.attn.hook_pattern", "blocks.1.hook_resid_mid", "blocks.1.attn.hook_result"]
    run = model.run(tokens, grads=sites, metric=metric)
    acts: dict[str, torch.Tensor] = {}

    def keep(x: torch.Tensor, hook: Any) -> None:
        x.retain_grad()
        acts[hook.name] = x

    hooked.set_use_attn_result(True)
    try:
        with hooked.hooks(fwd_hooks=[(s, keep) for s in sites]):
            value = metric(hooked(tokens))
            value.backward()
    finally:
        hooked.set_use_attn_result(False)
        hooked.zero_grad(set_to_none=True)
    assert run.metric is not None and abs(run.metric - value.item()) < 1e-6
    for s in sites:
        assert torch.allclose(run.grads[s], acts[s].grad, atol=1e-6), s


def test_hooks_and_cfg_restored_after_an_error(model: Model, hooked: Any, tokens: torch.Tensor) -> None:
    bad = Intervention(Site("attn.hook_result", 1, head=0), "set", torch.ones(7))
    with pytest.raises(InterventionError, match="does not fit"):
        model.run(tokens, capture=["blocks.0.attn.hook_pattern"], interventions=[bad])
    assert _no_hooks_left(hooked)
    assert not hooked.cfg.use_attn_result

    def failing_metric(logits: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("metric failed")

    with pytest.raises(RuntimeError, match="metric failed"):
        model.run(tokens, grads=["blocks.0.hook_resid_pre"], metric=failing_metric)
    assert _no_hooks_left(hooked)
    with pytest.raises(BackendError, match="scalar"):
        model.run(tokens, metric=lambda logits: logits)


def test_errors(model: Model, tokens: torch.Tensor) -> None:
    with pytest.raises(UnknownSiteError, match=r"unknown site component 'attn.hook_nope'"):
        model.run(tokens, capture=["blocks.0.attn.hook_nope"])
    with pytest.raises(UnknownSiteError, match=r"no site 'module:blocks.0'"):
        model.run(tokens, capture=["module:blocks.0"])
    with pytest.raises(SiteIndexError, match=r"layer 5 is out of range: .* has 2 layers \(0..1\)"):
        model.run(tokens, capture=["blocks.5.hook_resid_pre"])
    with pytest.raises(SiteIndexError, match=r"head 9 is out of range: .* 4 heads per layer \(0..3\)"):
        model.backend.run(tokens, interventions=[iv.zero("blocks.0.attn.hook_q", head=9)])
    with pytest.raises(SiteIndexError, match=r"position 11 .* 11 positions \(0..10\)"):
        model.run(tokens, interventions=[iv.zero("blocks.0.attn.hook_q", position=11)])
    with pytest.raises(InterventionError, match="needs a value"):
        model.run(tokens, interventions=[Intervention(Site("hook_embed"), "add")])
    with pytest.raises(InterventionError, match="unknown intervention op"):
        model.run(tokens, interventions=[Intervention(Site("hook_embed"), "double", 2.0)])  # type: ignore[arg-type]
    with pytest.raises(ContextLengthError, match=r"33 tokens long .* context window of 32 tokens"):
        model.to_tokens(tiny.text(32))
    with pytest.raises(ContextLengthError):
        model.run(torch.zeros(1, 40, dtype=torch.long))
    with pytest.raises(BackendError, match="no metric"):
        model.run(tokens, grads=["blocks.0.hook_resid_pre"])


def test_transformer_bridge_surface(model: Model, tokens: torch.Tensor) -> None:
    """The same backend over a TransformerBridge (HF weights) agrees with the HookedTransformer."""
    bridge = tiny.bridge_gpt2()
    bmodel = Model(TransformerLensBackend(bridge))
    assert bmodel.spec.architecture == "transformer-bridge"
    names = ["blocks.0.attn.hook_pattern", "blocks.1.hook_resid_pre", "blocks.1.attn.hook_z",
             "blocks.0.attn.hook_result", "blocks.1.mlp.hook_post"]
    ivs = [iv.zero("blocks.0.attn.hook_z", head=1, position=3), iv.scale("blocks.1.attn.hook_result", 0.5, head=2)]
    a, b = model.run(tokens, capture=names, interventions=ivs), bmodel.run(tokens, capture=names, interventions=ivs)
    for n in names:
        assert torch.allclose(a.cache[n], b.cache[n], atol=1e-4), n
    assert a.logits is not None and b.logits is not None and torch.allclose(a.logits, b.logits, atol=1e-4)
    assert not bridge.cfg.use_attn_result
    assert all(not hp.fwd_hooks for hp in bridge.hook_dict.values())


def test_start_at_layer_skips_the_layers_below(model: Model, tokens: torch.Tensor) -> None:
    """The extension analyses use to skip unchanged layers: a run from blocks.1.hook_resid_pre on."""
    assert model.backend.supports_start_at_layer  # type: ignore[attr-defined]
    ivs = [iv.zero("blocks.1.attn.hook_z", head=2, position=4)]
    names = ["blocks.1.attn.hook_pattern", "ln_final.hook_normalized"]
    full = model.run(tokens, capture=["blocks.1.hook_resid_pre", *names], interventions=ivs)
    resid = full.cache["blocks.1.hook_resid_pre"]
    part = model.backend.run(tokens, capture=names, interventions=ivs,  # type: ignore[call-arg]
                             start_at_layer=1, resid=resid)
    assert full.logits is not None and part.logits is not None and torch.allclose(part.logits, full.logits, atol=1e-6)
    for name in names:
        assert torch.allclose(part.cache[name], full.cache[name], atol=1e-6), name
    with pytest.raises(BackendError, match="computed before layer 1"):
        model.backend.run(tokens, capture=["blocks.0.hook_resid_post"], start_at_layer=1, resid=resid)  # type: ignore[call-arg]
    with pytest.raises(BackendError, match="needs resid="):
        model.backend.run(tokens, start_at_layer=1, resid=resid[:1])  # type: ignore[call-arg]
