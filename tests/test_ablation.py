"""Zero, mean and resample ablation against hand-written TransformerLens hook loops."""

from __future__ import annotations

from typing import Any

import _tiny_models as tiny
import pytest
import torch

from interp_widget.analysis.ablation import ablate, ablation_sweep
from interp_widget.analysis.metrics import logit_diff, loss
from interp_widget.errors import InputMismatchError, SiteIndexError
from interp_widget.models.model import Model
from interp_widget.tracing.sites import Site

ATOL = 1e-4
ANS, WRONG = 5, 9


def tl_metric(logits: torch.Tensor) -> torch.Tensor:
    return (logits[:, -1, ANS] - logits[:, -1, WRONG]).mean()


@pytest.fixture(scope="module")
def tokens(tl: Model) -> torch.Tensor:
    return tl.to_tokens([tiny.text(8, seed=3), tiny.text(8, seed=4)])


@pytest.fixture(scope="module")
def reference(tl: Model) -> torch.Tensor:
    return tl.to_tokens([tiny.text(8, seed=s) for s in (10, 11, 12)])


def _run(ht: Any, tokens: torch.Tensor, hooks: list[tuple[str, Any]]) -> torch.Tensor:
    with torch.no_grad():
        return ht.run_with_hooks(tokens, fwd_hooks=hooks)


@pytest.mark.parametrize("backend", ["tl", "nn"])
def test_zero_ablation_of_heads_and_positions(backend: str, request: pytest.FixtureRequest, ht: Any,
                                              tokens: torch.Tensor) -> None:
    model: Model = request.getfixturevalue(backend)

    def zero_heads(z: torch.Tensor, hook: Any) -> torch.Tensor:
        z = z.clone()
        if hook.layer() == 0:
            z[:, :, 1] = 0
        else:
            z[:, 2:4, 3] = 0
        return z

    want = tl_metric(_run(ht, tokens, [("blocks.0.attn.hook_z", zero_heads), ("blocks.1.attn.hook_z", zero_heads)]))
    res = ablate(model, tokens, logit_diff(ANS, WRONG),
                 ["L0H1", Site("attn.hook_z", 1, head=3, position=2), Site("attn.hook_z", 1, head=3, position=3)])
    assert res.ablated == pytest.approx(float(want), abs=ATOL)
    assert res.baseline == pytest.approx(float(tl_metric(_run(ht, tokens, []))), abs=ATOL)
    assert res.effect == pytest.approx(res.ablated - res.baseline)
    assert len(res.ablated_per_prompt) == 2 and res.to_dict()["method"] == "zero"
    # positions= narrows every component
    res2 = ablate(model, tokens, logit_diff(ANS, WRONG), ["L1H3"], positions=[2, 3])
    only_l1 = tl_metric(_run(ht, tokens, [("blocks.1.attn.hook_z", zero_heads)]))
    assert res2.ablated == pytest.approx(float(only_l1), abs=ATOL)


@pytest.mark.parametrize("backend", ["tl", "nn"])
def test_mean_ablation_of_an_mlp(backend: str, request: pytest.FixtureRequest, ht: Any, tokens: torch.Tensor,
                                 reference: torch.Tensor) -> None:
    model: Model = request.getfixturevalue(backend)
    _, ref_cache = ht.run_with_cache(reference)
    mean = ref_cache["blocks.0.hook_mlp_out"].mean(0, keepdim=True)
    want = tl_metric(_run(ht, tokens, [("blocks.0.hook_mlp_out", lambda x, hook: mean.expand_as(x))]))
    res = ablate(model, tokens, logit_diff(ANS, WRONG), "MLP0", method="mean", reference=reference)
    assert res.ablated == pytest.approx(float(want), abs=ATOL)


def test_resample_ablation(tl: Model, ht: Any, tokens: torch.Tensor, reference: torch.Tensor) -> None:
    _, own = ht.run_with_cache(tokens)
    # without a reference, two prompts swap their activations (the only derangement of two)
    swapped = own["blocks.1.hook_attn_out"].flip(0)
    want = tl_metric(_run(ht, tokens, [("blocks.1.hook_attn_out", lambda x, hook: swapped)]))
    res = ablate(tl, tokens, logit_diff(ANS, WRONG), "ATTN1", method="resample")
    assert res.ablated == pytest.approx(float(want), abs=ATOL)
    # a one-prompt reference: every prompt gets that prompt's activation
    one = reference[:1]
    _, rc = ht.run_with_cache(one)
    v = rc["blocks.0.attn.hook_z"][:, :, 2]

    def put(z: torch.Tensor, hook: Any) -> torch.Tensor:
        z = z.clone()
        z[:, :, 2] = v
        return z

    want1 = tl_metric(_run(ht, tokens, [("blocks.0.attn.hook_z", put)]))
    res1 = ablate(tl, tokens, logit_diff(ANS, WRONG), (0, 2), method="resample", reference=one)
    assert res1.ablated == pytest.approx(float(want1), abs=ATOL)
    # seeded: the same seed gives the same answer
    a = ablate(tl, tokens, logit_diff(ANS, WRONG), "L0H0", method="resample", reference=reference, seed=3)
    b = ablate(tl, tokens, logit_diff(ANS, WRONG), "L0H0", method="resample", reference=reference, seed=3)
    assert a.ablated == b.ablated


def test_loss_metric_on_the_input_itself(tl: Model, ht: Any, tokens: torch.Tensor) -> None:
    def zero(z: torch.Tensor, hook: Any) -> torch.Tensor:
        z = z.clone()
        z[:, :, 0] = 0
        return z

    with torch.no_grad():
        want = ht.run_with_hooks(tokens, return_type="loss", fwd_hooks=[("blocks.1.attn.hook_z", zero)])
    res = ablate(tl, tokens, "loss", ["L1H0"])
    assert res.ablated == pytest.approx(float(want), abs=ATOL)
    part = ablate(tl, tokens, loss(slice(4, None)), ["L1H0"])
    with torch.no_grad():
        per = ht.run_with_hooks(tokens, return_type="loss", loss_per_token=True, fwd_hooks=[("blocks.1.attn.hook_z", zero)])
    assert part.ablated == pytest.approx(float(per[:, 4:].mean()), abs=ATOL)


@pytest.mark.parametrize("method", ["zero", "mean"])
def test_ablation_sweep_matches_a_loop(method: str, tl: Model, nn: Model, ht: Any, tokens: torch.Tensor,
                                       reference: torch.Tensor) -> None:
    _, rc = ht.run_with_cache(reference)
    want = torch.zeros(tiny.N_LAYERS, tiny.N_HEADS)
    for layer in range(tiny.N_LAYERS):
        for head in range(tiny.N_HEADS):
            mean = rc[f"blocks.{layer}.attn.hook_z"][:, :, head].mean(0)

            def hook(z: torch.Tensor, hook: Any, head: int = head, mean: torch.Tensor = mean) -> torch.Tensor:
                z = z.clone()
                z[:, :, head] = 0 if method == "zero" else mean
                return z

            want[layer, head] = tl_metric(_run(ht, tokens, [(f"blocks.{layer}.attn.hook_z", hook)]))
    for model in (tl, nn):
        res = ablation_sweep(model, tokens, logit_diff(ANS, WRONG), "heads", method=method,  # type: ignore[arg-type]
                             reference=reference, max_batch=4)
        assert res.kind == "ablation" and res.axes == ("layer", "head")
        assert (res.values - want).abs().max().item() < ATOL
        assert res.clean_metric == pytest.approx(float(tl_metric(_run(ht, tokens, []))), abs=ATOL)


def test_ablation_errors(tl: Model, tokens: torch.Tensor) -> None:
    short = tl.to_tokens(tiny.text(4, seed=5))
    with pytest.raises(InputMismatchError, match="reference has 5 tokens, input has 9"):
        ablate(tl, tokens, logit_diff(ANS, WRONG), "L0H0", method="mean", reference=short)
    with pytest.raises(InputMismatchError, match="needs a reference batch"):
        ablate(tl, tokens[:1], logit_diff(ANS, WRONG), "L0H0", method="resample")
    with pytest.raises(SiteIndexError, match="layer 9 is out of range"):
        ablate(tl, tokens, logit_diff(ANS, WRONG), "L9H0")
    with pytest.raises(SiteIndexError, match="head 7 is out of range"):
        ablate(tl, tokens, logit_diff(ANS, WRONG), "L0H7")
    with pytest.raises(ValueError, match="unknown ablation method"):
        ablate(tl, tokens, logit_diff(ANS, WRONG), "L0H0", method="median")  # type: ignore[arg-type]
    with pytest.raises(InputMismatchError, match="nothing to ablate"):
        ablate(tl, tokens, logit_diff(ANS, WRONG), [])
