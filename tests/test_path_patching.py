"""Path patching against a brute-force loop of sequential TransformerLens runs (Wang et al. 2022's recipe)."""

from __future__ import annotations

from typing import Any

import _tiny_models as tiny
import pytest
import torch

from interp_widget.analysis.metrics import logit_diff
from interp_widget.analysis.path_patching import path_patch
from interp_widget.errors import InputMismatchError, UnknownSiteError
from interp_widget.models.model import Model
from interp_widget.tracing.sites import Site

ATOL = 1e-4
ANS, WRONG = 5, 9
L, H = tiny.N_LAYERS, tiny.N_HEADS


def tl_metric(logits: torch.Tensor) -> torch.Tensor:
    return (logits[:, -1, ANS] - logits[:, -1, WRONG]).mean()


@pytest.fixture(scope="module")
def pair(tl: Model) -> tuple[torch.Tensor, torch.Tensor]:
    clean = tl.to_tokens([tiny.text(7, seed=21), tiny.text(7, seed=22)])
    corrupted = clean.clone()
    corrupted[:, 2] = (corrupted[:, 2] + 11) % tiny.D_VOCAB
    corrupted[:, 4] = (corrupted[:, 4] + 5) % tiny.D_VOCAB
    return clean, corrupted


def brute(ht: Any, base: torch.Tensor, source: torch.Tensor, sender: tuple[int, int],
          receiver: tuple[str, int, int] | str, freeze_mlps: bool = True) -> float:
    """One sender -> receiver path patch, written out with plain TransformerLens hooks."""
    _, bc = ht.run_with_cache(base)
    _, sc = ht.run_with_cache(source)
    sl, sh = sender

    def freeze_z(z: torch.Tensor, hook: Any) -> torch.Tensor:
        z = bc[hook.name].clone()
        if hook.layer() == sl:
            z[:, :, sh] = sc[hook.name][:, :, sh]
        return z

    def freeze(x: torch.Tensor, hook: Any) -> torch.Tensor:
        return bc[hook.name]

    hooks: list[tuple[str, Any]] = [(f"blocks.{x}.attn.hook_z", freeze_z) for x in range(sl, L)]
    if freeze_mlps:
        hooks += [(f"blocks.{x}.hook_mlp_out", freeze) for x in range(sl, L)]
    with torch.no_grad():
        if receiver == "logits":
            return float(tl_metric(ht.run_with_hooks(base, fwd_hooks=hooks)))
        comp, rl, rh = receiver
        name = f"blocks.{rl}.attn.hook_{comp}"
        rec: dict[str, torch.Tensor] = {}

        def grab(x: torch.Tensor, hook: Any) -> torch.Tensor:
            rec["v"] = x.clone()
            return x

        ht.run_with_hooks(base, fwd_hooks=[*hooks, (name, grab)])

        def put(x: torch.Tensor, hook: Any) -> torch.Tensor:
            x = x.clone()
            x[:, :, rh] = rec["v"][:, :, rh]
            return x

        return float(tl_metric(ht.run_with_hooks(base, fwd_hooks=[(name, put)])))


@pytest.mark.parametrize("receiver", [("k", 1, 2), ("q", 1, 0), ("v", 1, 3), "logits"])
@pytest.mark.parametrize("backend", ["tl", "nn"])
def test_every_sender_matches_brute_force(receiver: Any, backend: str, request: pytest.FixtureRequest, ht: Any,
                                          pair: tuple[torch.Tensor, torch.Tensor]) -> None:
    model: Model = request.getfixturevalue(backend)
    clean, corrupted = pair
    spec = receiver if receiver == "logits" else f"L{receiver[1]}H{receiver[2]}.{receiver[0]}"
    res = path_patch(model, clean, corrupted, logit_diff(ANS, WRONG), spec, max_batch=6)
    assert res.axes == ("layer", "head") and res.kind == "path_patching"
    top = L if receiver == "logits" else receiver[1]
    for layer in range(L):
        for head in range(H):
            got = res.values[layer, head].item()
            if layer >= top:
                assert got != got  # NaN: sender not below the receiver
            else:
                assert got == pytest.approx(brute(ht, corrupted, clean, (layer, head), receiver), abs=ATOL)


def test_noise_direction_and_unfrozen_mlps(tl: Model, ht: Any, pair: tuple[torch.Tensor, torch.Tensor]) -> None:
    clean, corrupted = pair
    res = path_patch(tl, clean, corrupted, logit_diff(ANS, WRONG), "L1H1.k", direction="noise", freeze_mlps=False)
    for head in range(H):
        want = brute(ht, clean, corrupted, (0, head), ("k", 1, 1), freeze_mlps=False)
        assert res.values[0, head].item() == pytest.approx(want, abs=ATOL)
    assert res.meta["direction"] == "noise"
    with torch.no_grad():
        assert res.clean_metric == pytest.approx(float(tl_metric(ht(clean))), abs=ATOL)


def test_several_receivers_and_chosen_senders(tl: Model, ht: Any, pair: tuple[torch.Tensor, torch.Tensor]) -> None:
    clean, corrupted = pair
    res = path_patch(tl, clean, corrupted, logit_diff(ANS, WRONG),
                     ["L1H2.k", Site("attn.hook_q", 1, head=0), "logits"], senders=["L0H1", (1, 3)])
    assert res.axes == ("receiver", "sender") and res.shape == (3, 2)
    assert res.labels["sender"] == ["blocks.0.attn.hook_z[head=1]", "blocks.1.attn.hook_z[head=3]"]
    assert res.values[0, 0].item() == pytest.approx(brute(ht, corrupted, clean, (0, 1), ("k", 1, 2)), abs=ATOL)
    assert res.values[1, 0].item() == pytest.approx(brute(ht, corrupted, clean, (0, 1), ("q", 1, 0)), abs=ATOL)
    assert res.values[2, 1].item() == pytest.approx(brute(ht, corrupted, clean, (1, 3), "logits"), abs=ATOL)
    assert torch.isnan(res.values[0, 1]) and torch.isnan(res.values[1, 1])
    # a sender path into its own receiver through nothing else: normalised like patching
    norm = res.normalized()
    assert norm.is_normalized and norm.values.shape == (3, 2)


def test_path_patching_errors(tl: Model, pair: tuple[torch.Tensor, torch.Tensor]) -> None:
    clean, corrupted = pair
    with pytest.raises(UnknownSiteError):
        path_patch(tl, clean, corrupted, logit_diff(ANS, WRONG), "blocks.1.attn.hook_kk")
    with pytest.raises(InputMismatchError, match="not inside a layer"):
        path_patch(tl, clean, corrupted, logit_diff(ANS, WRONG), "hook_embed")
    with pytest.raises(InputMismatchError, match="a sender is a head"):
        path_patch(tl, clean, corrupted, logit_diff(ANS, WRONG), "logits", senders=["blocks.0.hook_resid_pre"])
    short = tl.to_tokens(tiny.text(3, seed=1))
    with pytest.raises(InputMismatchError, match="same number of tokens"):
        path_patch(tl, short, corrupted[:1], logit_diff(ANS, WRONG), "logits")
