"""Batched activation patching against TransformerLens's ``transformer_lens.patching`` utilities.

Every sweep is checked on a tiny TransformerLens GPT-2 and, on the same weights, through the nnsight
backend (a Hugging Face GPT-2), within 1e-4 of TransformerLens's sequential utility (or a brute-force
hook loop where TransformerLens has none).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import _tiny_models as tiny
import pytest
import torch
import transformer_lens.patching as tlp

from interp_widget.analysis.metrics import logit_diff
from interp_widget.analysis.patching import patch
from interp_widget.errors import InputMismatchError, UnknownSiteError
from interp_widget.models.model import Model
from interp_widget.tracing.sites import Site
from interp_widget.tracing.tl import TransformerLensBackend

os.environ.setdefault("TQDM_DISABLE", "1")  # TransformerLens's utilities draw progress bars

ATOL = 1e-4
ANS, WRONG = 5, 9

TL_UTILS: dict[str, Callable[..., torch.Tensor]] = {
    "resid_pre": tlp.get_act_patch_resid_pre,
    "resid_mid": tlp.get_act_patch_resid_mid,
    "attn_out": tlp.get_act_patch_attn_out,
    "mlp_out": tlp.get_act_patch_mlp_out,
    "heads": tlp.get_act_patch_attn_head_out_all_pos,
    "heads_by_pos": tlp.get_act_patch_attn_head_out_by_pos,
    "q": tlp.get_act_patch_attn_head_q_all_pos,
    "k": tlp.get_act_patch_attn_head_k_all_pos,
    "v": tlp.get_act_patch_attn_head_v_all_pos,
    "q_by_pos": tlp.get_act_patch_attn_head_q_by_pos,
    "k_by_pos": tlp.get_act_patch_attn_head_k_by_pos,
    "v_by_pos": tlp.get_act_patch_attn_head_v_by_pos,
    "pattern": tlp.get_act_patch_attn_head_pattern_all_pos,
    "pattern_by_pos": tlp.get_act_patch_attn_head_pattern_by_pos,
}


def tl_metric(logits: torch.Tensor) -> torch.Tensor:
    return (logits[:, -1, ANS] - logits[:, -1, WRONG]).mean()


@pytest.fixture(scope="module")
def pair(tl: Model) -> tuple[torch.Tensor, torch.Tensor]:
    clean = tl.to_tokens([tiny.text(7, seed=1), tiny.text(7, seed=2)])
    corrupted = clean.clone()
    corrupted[:, 3] = (corrupted[:, 3] + 7) % tiny.D_VOCAB
    corrupted[:, 5] = (corrupted[:, 5] + 3) % tiny.D_VOCAB
    return clean, corrupted


@pytest.fixture(scope="module")
def clean_cache(ht: Any, pair: tuple[torch.Tensor, torch.Tensor]) -> Any:
    return ht.run_with_cache(pair[0])[1]


def _no_hooks_left(ht: Any) -> bool:
    return all(not hp.fwd_hooks and not hp.bwd_hooks for hp in ht.hook_dict.values())


@pytest.mark.parametrize("sweep", list(TL_UTILS))
@pytest.mark.parametrize("backend", ["tl", "nn"])
def test_sweep_matches_transformer_lens(sweep: str, backend: str, request: pytest.FixtureRequest, ht: Any,
                                        pair: tuple[torch.Tensor, torch.Tensor], clean_cache: Any) -> None:
    model: Model = request.getfixturevalue(backend)
    clean, corrupted = pair
    ref = TL_UTILS[sweep](ht, corrupted, clean_cache, tl_metric)
    res = patch(model, clean, corrupted, logit_diff(ANS, WRONG), sweep, max_batch=6)
    assert res.values.shape == ref.shape
    assert (res.values - ref).abs().max().item() < ATOL
    assert res.kind == "activation_patching" and res.sites == sweep
    assert res.meta["forward_passes"] < ref.numel()  # batched: fewer passes than sites


@pytest.mark.parametrize("sweep", ["attn_out_all_pos", "mlp_out_all_pos", "resid_pre_all_pos"])
def test_all_position_sweeps_match_a_hook_loop(sweep: str, tl: Model, nn: Model, ht: Any,
                                               pair: tuple[torch.Tensor, torch.Tensor], clean_cache: Any) -> None:
    clean, corrupted = pair
    comp = {"attn_out_all_pos": "hook_attn_out", "mlp_out_all_pos": "hook_mlp_out",
            "resid_pre_all_pos": "hook_resid_pre"}[sweep]
    ref = torch.zeros(tiny.N_LAYERS)
    for layer in range(tiny.N_LAYERS):
        name = f"blocks.{layer}.{comp}"
        logits = ht.run_with_hooks(corrupted, fwd_hooks=[(name, lambda x, hook: clean_cache[hook.name])])
        ref[layer] = tl_metric(logits)
    for model in (tl, nn):
        res = patch(model, clean, corrupted, logit_diff(ANS, WRONG), sweep)
        assert res.axes == ("layer",)
        assert (res.values - ref).abs().max().item() < ATOL
    # patching the whole residual stream before layer 0 restores the clean run exactly
    assert patch(tl, clean, corrupted, logit_diff(ANS, WRONG), "resid_pre_all_pos", normalize=True).values[0] == \
        pytest.approx(1.0, abs=1e-5)


def test_noise_direction_matches_swapped_transformer_lens(tl: Model, nn: Model, ht: Any,
                                                          pair: tuple[torch.Tensor, torch.Tensor]) -> None:
    clean, corrupted = pair
    _, corrupted_cache = ht.run_with_cache(corrupted)
    ref = tlp.get_act_patch_attn_head_out_all_pos(ht, clean, corrupted_cache, tl_metric)
    for model in (tl, nn):
        res = patch(model, clean, corrupted, logit_diff(ANS, WRONG), "heads", direction="noise")
        assert (res.values - ref).abs().max().item() < ATOL


def test_user_callable_metric_scalar_per_run(tl: Model, ht: Any, pair: tuple[torch.Tensor, torch.Tensor],
                                             clean_cache: Any) -> None:
    clean, corrupted = pair

    def prob_metric(logits: torch.Tensor) -> torch.Tensor:  # reduces over its batch, as TL expects
        return logits[:, -1].softmax(-1)[:, ANS].mean()

    ref = tlp.get_act_patch_resid_pre(ht, corrupted, clean_cache, prob_metric)
    res = patch(tl, clean, corrupted, prob_metric, "resid_pre")
    assert (res.values - ref).abs().max().item() < ATOL
    assert res.metric == "prob_metric"


def test_chunking_and_layer_skipping_do_not_change_the_answer(tl: Model, ht: Any,
                                                               pair: tuple[torch.Tensor, torch.Tensor]) -> None:
    clean, corrupted = pair
    metric = logit_diff(ANS, WRONG)
    one = patch(tl, clean, corrupted, metric, "heads", max_batch=2)  # one run (2 prompts) per pass
    assert one.meta["forward_passes"] == tiny.N_LAYERS * tiny.N_HEADS + 1
    many = patch(tl, clean, corrupted, metric, "heads", max_batch=10_000)
    assert many.meta["forward_passes"] <= tiny.N_LAYERS + 1
    tiny_budget = patch(tl, clean, corrupted, metric, "heads", max_bytes=1)
    assert tiny_budget.meta["forward_passes"] == tiny.N_LAYERS * tiny.N_HEADS + 1

    class NoStart(TransformerLensBackend):
        supports_start_at_layer = False

        def __init__(self, model: Any) -> None:
            super().__init__(model)
            self.supports_start_at_layer = False

    full = patch(Model(NoStart(ht)), clean, corrupted, metric, "heads")
    assert many.meta["shared_prefix"] == 3 and full.meta["shared_prefix"] == 0  # positions 0..2 agree
    for r in (many, tiny_budget, full):
        assert (r.values - one.values).abs().max().item() < ATOL


def test_explicit_sites_and_result_object(tl: Model, pair: tuple[torch.Tensor, torch.Tensor]) -> None:
    clean, corrupted = pair
    metric = logit_diff(ANS, WRONG)
    heads = patch(tl, clean, corrupted, metric, "heads")
    sites = [Site("attn.hook_z", 1, head=2), "blocks.0.hook_resid_pre", Site("hook_resid_pre", 1, position=3)]
    res = patch(tl, clean, corrupted, metric, sites)
    assert res.axes == ("site",) and len(res.labels["site"]) == 3
    assert res.values[0].item() == pytest.approx(heads.values[1, 2].item(), abs=ATOL)
    assert res.values[1].item() == pytest.approx(res.clean_metric, abs=ATOL)  # whole resid_pre 0 = clean run
    norm = heads.normalized()
    assert torch.allclose(norm.values, (heads.values - heads.corrupted_metric) /
                          (heads.clean_metric - heads.corrupted_metric))
    d = json.loads(json.dumps(heads.to_dict()))
    assert d["axes"] == ["layer", "head"] and len(d["values"]) == tiny.N_LAYERS
    assert d["labels"]["head"] == [str(h) for h in range(tiny.N_HEADS)]
    top = heads.top(3)
    assert len(top) == 3 and abs(top[0][1]) >= abs(top[-1][1])
    assert "activation_patching" in repr(heads)
    pos = patch(tl, clean, corrupted, metric, "resid_pre")
    assert pos.labels["pos"][0].startswith("0:")


def test_clean_into_clean_gives_the_clean_metric(tl: Model, pair: tuple[torch.Tensor, torch.Tensor]) -> None:
    clean, _ = pair
    res = patch(tl, clean, clean, logit_diff(ANS, WRONG), "resid_pre")
    assert torch.allclose(res.values, torch.full_like(res.values, res.clean_metric), atol=ATOL)
    with pytest.raises(InputMismatchError, match="same metric"):
        res.normalized()


def test_different_lengths_are_refused(tl: Model) -> None:
    a = tl.to_tokens(tiny.text(6, seed=1))
    b = tl.to_tokens(tiny.text(7, seed=2))
    with pytest.raises(InputMismatchError, match=r"clean has 7 tokens, corrupted has 8"):
        patch(tl, a, b, logit_diff(ANS, WRONG), "heads")
    with pytest.raises(InputMismatchError, match="prompts"):
        patch(tl, a, torch.cat([a, a]), logit_diff(ANS, WRONG), "heads")


def test_bad_sweeps_are_refused(tl: Model, pair: tuple[torch.Tensor, torch.Tensor]) -> None:
    clean, corrupted = pair
    with pytest.raises(UnknownSiteError, match="unknown sweep 'hedas'"):
        patch(tl, clean, corrupted, logit_diff(ANS, WRONG), "hedas")
    attn_only = Model(TransformerLensBackend(tiny.tl_attn_only()))
    toks = attn_only.to_tokens(tiny.text(5))
    with pytest.raises(UnknownSiteError, match="attention-only"):
        patch(attn_only, toks, toks, logit_diff(ANS, WRONG), "mlp_out")
    with pytest.raises(ValueError, match="direction"):
        patch(tl, clean, corrupted, logit_diff(ANS, WRONG), "heads", direction="sideways")  # type: ignore[arg-type]


def test_progress_and_cancellation_leave_no_hooks(tl: Model, ht: Any, pair: tuple[torch.Tensor, torch.Tensor]) -> None:
    clean, corrupted = pair
    seen: list[tuple[int, int]] = []
    patch(tl, clean, corrupted, logit_diff(ANS, WRONG), "heads", max_batch=4, progress=lambda d, t: seen.append((d, t)))
    total = tiny.N_LAYERS * tiny.N_HEADS
    assert seen[0] == (0, total) and seen[-1] == (total, total)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and len(seen) == total // 2 + 1

    def cancel(done: int, total: int) -> None:
        if done > 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        patch(tl, clean, corrupted, logit_diff(ANS, WRONG), "heads", max_batch=4, progress=cancel)
    assert _no_hooks_left(ht)

    calls = {"n": 0}

    def interrupt_inside_forward(module: Any, args: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt

    handle = ht.blocks[1].register_forward_pre_hook(interrupt_inside_forward)
    try:
        with pytest.raises(KeyboardInterrupt):
            patch(tl, clean, corrupted, logit_diff(ANS, WRONG), "heads", max_batch=4)
    finally:
        handle.remove()
    assert _no_hooks_left(ht)
    # and the model still works afterwards
    again = patch(tl, clean, corrupted, logit_diff(ANS, WRONG), "heads")
    assert torch.isfinite(again.values).all()


def test_builtin_metrics_in_a_sweep(tl: Model, nn: Model, ht: Any, pair: tuple[torch.Tensor, torch.Tensor],
                                    clean_cache: Any) -> None:
    """KL and probability read one position (the sweep unembeds only it); loss reads them all."""
    from interp_widget.analysis.metrics import kl_divergence, loss, probability

    clean, corrupted = pair
    clean_logits = ht(clean).detach()

    def tl_kl(logits: torch.Tensor) -> torch.Tensor:
        p = clean_logits[:, -1].log_softmax(-1)
        return (p.exp() * (p - logits[:, -1].log_softmax(-1))).sum(-1).mean()

    def tl_prob(logits: torch.Tensor) -> torch.Tensor:
        return logits[:, 2].softmax(-1)[:, ANS].mean()

    def tl_loss(logits: torch.Tensor) -> torch.Tensor:
        lp = logits[:, :-1].log_softmax(-1)
        return -lp.gather(-1, clean[:, 1:, None])[..., 0].mean()

    for ours, theirs in ((kl_divergence(), tl_kl), (probability(ANS, position=2), tl_prob), (loss(), tl_loss)):
        ref = tlp.get_act_patch_resid_pre(ht, corrupted, clean_cache, theirs)
        for model in (tl, nn):
            res = patch(model, clean, corrupted, ours, "resid_pre")
            assert (res.values - ref).abs().max().item() < ATOL, ours.name
    kl = patch(tl, clean, corrupted, "kl", "resid_pre")
    assert kl.clean_metric == pytest.approx(0.0, abs=1e-6)


def test_backend_extensions_used_by_sweeps(tl: Model, ht: Any, pair: tuple[torch.Tensor, torch.Tensor]) -> None:
    """start_at_layer / logit_positions / stop_after_capture give what a full run gives."""
    from interp_widget.errors import BackendError

    clean, _ = pair
    be = tl.backend
    assert be.supports_start_at_layer and be.supports_logit_positions  # type: ignore[attr-defined]
    full = be.run(clean, capture=[Site("hook_resid_pre", 1), Site("attn.hook_pattern", 1)])
    assert full.logits is not None
    part = be.run(clean, logit_positions=[-1, 2])  # type: ignore[call-arg]
    assert part.logits is not None and part.logits.shape == (2, 2, tiny.D_VOCAB)
    assert torch.allclose(part.logits, full.logits[:, [-1, 2]], atol=1e-5)
    started = be.run(clean, start_at_layer=1, resid=full.cache["blocks.1.hook_resid_pre"],  # type: ignore[call-arg]
                     capture=[Site("attn.hook_pattern", 1)])
    assert started.logits is not None and torch.allclose(started.logits, full.logits, atol=1e-5)
    stopped = be.run(clean, capture=[Site("attn.hook_pattern", 1)], stop_after_capture=True)  # type: ignore[call-arg]
    assert stopped.logits is None
    assert torch.allclose(stopped.cache["blocks.1.attn.hook_pattern"], full.cache["blocks.1.attn.hook_pattern"])
    with pytest.raises(BackendError, match="stop_after_capture"):
        be.run(clean, stop_after_capture=True)  # type: ignore[call-arg]
    assert _no_hooks_left(ht)
