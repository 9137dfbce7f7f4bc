"""Attribution patching: plain AtP against autograd by hand, AtP*'s exact q/k softmax against a direct
recomputation, the built-in check against exact patching, and AtP* fixing a saturated-attention sign error."""

from __future__ import annotations

from typing import Any

import _tiny_models as tiny
import pytest
import torch

from interp_widget.analysis.attribution import attribute
from interp_widget.analysis.metrics import logit_diff
from interp_widget.analysis.patching import patch
from interp_widget.errors import InputMismatchError
from interp_widget.models.model import Model
from interp_widget.tracing.tl import TransformerLensBackend

ATOL = 1e-4
ANS, WRONG = 5, 9


def tl_metric(logits: torch.Tensor) -> torch.Tensor:
    return (logits[:, -1, ANS] - logits[:, -1, WRONG]).mean()


@pytest.fixture(scope="module")
def pair(tl: Model) -> tuple[torch.Tensor, torch.Tensor]:
    clean = tl.to_tokens([tiny.text(7, seed=31), tiny.text(7, seed=32)])
    corrupted = clean.clone()
    corrupted[:, 3] = (corrupted[:, 3] + 13) % tiny.D_VOCAB
    return clean, corrupted


def _grads(ht: Any, tokens: torch.Tensor, names: list[str]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Activations and d(metric)/d(activation) at ``names``, by hand with TransformerLens hooks."""
    acts: dict[str, torch.Tensor] = {}

    def keep(x: torch.Tensor, hook: Any) -> torch.Tensor:
        x.retain_grad()
        acts[hook.name] = x
        return x

    ht.zero_grad(set_to_none=True)
    logits = ht.run_with_hooks(tokens, fwd_hooks=[(n, keep) for n in names])
    tl_metric(logits).backward()
    ht.zero_grad(set_to_none=True)
    return {n: a.detach() for n, a in acts.items()}, {n: a.grad.detach() for n, a in acts.items()}  # type: ignore[union-attr]


@pytest.mark.parametrize("backend", ["tl", "nn"])
def test_plain_atp_is_gradient_times_difference(backend: str, request: pytest.FixtureRequest, ht: Any,
                                                pair: tuple[torch.Tensor, torch.Tensor]) -> None:
    model: Model = request.getfixturevalue(backend)
    clean, corrupted = pair
    names = [f"blocks.{x}.{c}" for x in range(tiny.N_LAYERS) for c in ("attn.hook_z", "hook_resid_pre")]
    act, grad = _grads(ht, clean, names)
    _, cc = ht.run_with_cache(corrupted)
    base = float(tl_metric(ht(clean)).detach())
    heads = torch.stack([((cc[f"blocks.{x}.attn.hook_z"] - act[f"blocks.{x}.attn.hook_z"]) *
                          grad[f"blocks.{x}.attn.hook_z"]).sum((0, 1, 3)) for x in range(tiny.N_LAYERS)])
    resid = torch.stack([((cc[f"blocks.{x}.hook_resid_pre"] - act[f"blocks.{x}.hook_resid_pre"]) *
                          grad[f"blocks.{x}.hook_resid_pre"]).sum((0, 2)) for x in range(tiny.N_LAYERS)])
    a = attribute(model, clean, corrupted, logit_diff(ANS, WRONG), "heads", method="atp")
    assert (a.values - base - heads).abs().max().item() < ATOL
    assert a.meta["forward_passes"] == 2 and a.meta["direction"] == "noise"
    r = attribute(model, clean, corrupted, logit_diff(ANS, WRONG), "resid_pre", method="atp")
    assert (r.values - base - resid).abs().max().item() < ATOL
    # AtP* reports the plain estimate alongside; it agrees with method="atp"
    star = attribute(model, clean, corrupted, logit_diff(ANS, WRONG), "heads")
    assert (star.meta["plain_atp"] - a.values).abs().max().item() < ATOL


def test_atp_star_keys_recompute_the_softmax_exactly(ht: Any, tl: Model, pair: tuple[torch.Tensor, torch.Tensor]) -> None:
    clean, corrupted = pair
    names = [f"blocks.{x}.attn.hook_pattern" for x in range(tiny.N_LAYERS)]
    act, grad = _grads(ht, clean, names)
    _, cc = ht.run_with_cache(corrupted)
    base = float(tl_metric(ht(clean)).detach())
    want = torch.zeros(tiny.N_LAYERS, tiny.N_HEADS)
    for layer in range(tiny.N_LAYERS):
        for head in range(tiny.N_HEADS):
            def put_k(k: torch.Tensor, hook: Any, head: int = head) -> torch.Tensor:
                k = k.clone()
                k[:, :, head] = cc[hook.name][:, :, head]
                return k

            pname = f"blocks.{layer}.attn.hook_pattern"
            store: dict[str, torch.Tensor] = {}

            def grab(x: torch.Tensor, hook: Any, store: dict[str, torch.Tensor] = store) -> torch.Tensor:
                store["a"] = x.detach().clone()
                return x

            with torch.no_grad():
                ht.run_with_hooks(clean, fwd_hooks=[(f"blocks.{layer}.attn.hook_k", put_k), (pname, grab)])
            delta = store["a"][:, head] - act[pname][:, head]  # the exact pattern change of this key patch
            want[layer, head] = base + (grad[pname][:, head] * delta).sum()
    res = attribute(tl, clean, corrupted, logit_diff(ANS, WRONG), "k")
    assert (res.values - want).abs().max().item() < ATOL
    exact = patch(tl, clean, corrupted, logit_diff(ANS, WRONG), "k", direction="noise")
    plain = attribute(tl, clean, corrupted, logit_diff(ANS, WRONG), "k", method="atp")
    err_star = (res.values - exact.values).abs().mean()
    err_plain = (plain.values - exact.values).abs().mean()
    assert err_star < err_plain  # the exact softmax is closer to exact patching than linearising through it


def test_verify_top_runs_exact_patching(tl: Model, pair: tuple[torch.Tensor, torch.Tensor]) -> None:
    clean, corrupted = pair
    res = attribute(tl, clean, corrupted, logit_diff(ANS, WRONG), "heads", verify_top=3)
    exact = patch(tl, clean, corrupted, logit_diff(ANS, WRONG), "heads", direction="noise")
    assert res.check is not None and len(res.check.exact) == 3
    for idx, ex, est in zip(res.check.indices, res.check.exact, res.check.estimate, strict=True):
        assert ex == pytest.approx(exact.values[idx["layer"], idx["head"]].item(), abs=ATOL)
        assert est == pytest.approx(res.values[idx["layer"], idx["head"]].item(), abs=1e-5)
    # the candidates are the largest estimated effects
    effects = (res.values - res.clean_metric).abs().reshape(-1)
    top = {int(i) for i in effects.argsort(descending=True)[:3]}
    assert {i["layer"] * tiny.N_HEADS + i["head"] for i in res.check.indices} == top
    assert -1.0 <= res.check.pearson <= 1.0 and 0.0 <= res.check.sign_agreement <= 1.0
    d = res.to_dict()
    assert d["check"]["labels"] == res.check.labels
    norm = attribute(tl, clean, corrupted, logit_diff(ANS, WRONG), "heads", normalize=True)
    assert norm.is_normalized
    assert torch.allclose(norm.values, (res.values - res.corrupted_metric) / (res.clean_metric - res.corrupted_metric),
                          atol=1e-5)


def test_atp_star_is_the_same_on_both_backends(tl: Model, nn: Model, pair: tuple[torch.Tensor, torch.Tensor]) -> None:
    clean, corrupted = pair
    for sweep in ("heads", "resid_pre", "mlp_out", "v", "q_by_pos", "attn_out_all_pos"):
        star_tl = attribute(tl, clean, corrupted, logit_diff(ANS, WRONG), sweep)
        star_nn = attribute(nn, clean, corrupted, logit_diff(ANS, WRONG), sweep)
        assert (star_tl.values - star_nn.values).abs().max().item() < ATOL, sweep
        assert (star_tl.meta["plain_atp"] - star_nn.meta["plain_atp"]).abs().max().item() < ATOL, sweep
        if sweep == "v":  # values reach the metric through no later softmax of their own: no QK fix
            assert torch.equal(star_tl.values, star_tl.meta["plain_atp"])
        else:
            assert not torch.equal(star_tl.values, star_tl.meta["plain_atp"]), sweep
        assert star_tl.meta["forward_passes"] >= 2


def test_denoise_direction_and_errors(tl: Model, ht: Any, pair: tuple[torch.Tensor, torch.Tensor]) -> None:
    clean, corrupted = pair
    act, grad = _grads(ht, corrupted, ["blocks.1.attn.hook_z"])
    _, cc = ht.run_with_cache(clean)
    want = ((cc["blocks.1.attn.hook_z"] - act["blocks.1.attn.hook_z"]) * grad["blocks.1.attn.hook_z"]).sum((0, 1, 3))
    res = attribute(tl, clean, corrupted, logit_diff(ANS, WRONG), "heads", method="atp", direction="denoise")
    assert (res.values[1] - res.corrupted_metric - want).abs().max().item() < ATOL
    with pytest.raises(ValueError, match="method"):
        attribute(tl, clean, corrupted, logit_diff(ANS, WRONG), "heads", method="ig")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="direction"):
        attribute(tl, clean, corrupted, logit_diff(ANS, WRONG), "heads", direction="up")  # type: ignore[arg-type]
    with pytest.raises(InputMismatchError, match="same number of tokens"):
        attribute(tl, clean, corrupted[:, :-1], logit_diff(ANS, WRONG), "heads")


def test_atp_star_qk_term_for_upstream_heads_is_exact_in_two_layers() -> None:
    """In a 2-layer attention-only model a layer-0 head reaches layer 1 only directly, so AtP*'s QK term
    is the exact layer-1 pattern change, times the gradient at the pattern with the scores held fixed."""
    ht = tiny.tl_attn_only(seed=3)
    model = Model(TransformerLensBackend(ht), raw=ht)
    clean = model.to_tokens([tiny.text(9, seed=41), tiny.text(9, seed=42)])
    corrupted = clean.clone()
    corrupted[:, 2:4] = (corrupted[:, 2:4] + 17) % tiny.D_VOCAB
    _, cc = ht.run_with_cache(clean)
    _, kc = ht.run_with_cache(corrupted)
    acts: dict[str, torch.Tensor] = {}

    def hold(s: torch.Tensor, hook: Any) -> torch.Tensor:  # the scores as constants: no gradient through q, k
        return cc[hook.name].clone()

    def keep(x: torch.Tensor, hook: Any) -> torch.Tensor:
        if not x.requires_grad:  # layer 0's pattern is a function of the held scores only
            x = x.detach().requires_grad_(True)
        x.retain_grad()
        acts[hook.name] = x
        return x

    names = [f"blocks.{x}.attn.hook_{c}" for x in range(2) for c in ("z", "pattern")]
    logits = ht.run_with_hooks(clean, fwd_hooks=[(f"blocks.{x}.attn.hook_attn_scores", hold) for x in range(2)]
                               + [(n, keep) for n in names])
    tl_metric(logits).backward()
    g = {n: acts[n].grad.detach() for n in names}  # type: ignore[union-attr]
    base = float(tl_metric(ht(clean)).detach())
    want = torch.zeros(2, ht.cfg.n_heads)
    for layer in range(2):
        z = f"blocks.{layer}.attn.hook_z"
        for head in range(ht.cfg.n_heads):
            want[layer, head] = base + ((kc[z] - cc[z])[:, :, head] * g[z][:, :, head]).sum()
            if layer == 0:
                store: dict[str, torch.Tensor] = {}

                def put(x: torch.Tensor, hook: Any, head: int = head) -> torch.Tensor:
                    x = x.clone()
                    x[:, :, head] = kc[hook.name][:, :, head]
                    return x

                def grab(p: torch.Tensor, hook: Any, store: dict[str, torch.Tensor] = store) -> torch.Tensor:
                    store["p"] = p.detach().clone()
                    return p

                with torch.no_grad():
                    ht.run_with_hooks(clean, fwd_hooks=[(z, put), ("blocks.1.attn.hook_pattern", grab)])
                p1 = "blocks.1.attn.hook_pattern"
                want[layer, head] += (g[p1] * (store["p"] - cc[p1])).sum()
    res = attribute(model, clean, corrupted, logit_diff(ANS, WRONG), "heads")
    assert (res.values - want).abs().max().item() < ATOL


def test_atp_star_fixes_the_previous_token_heads_of_induction_2l() -> None:
    """On the zoo's induction model, noising the first copy of a repeated block: plain AtP gives a
    previous-token head the wrong sign (its path through the induction heads' saturated keys is lost),
    AtP*'s QK fix gives every previous-token head the sign of exact patching."""
    import json

    from interp_widget import zoo
    from interp_widget.analysis.metrics import loss
    from interp_widget.analysis.results import pearson
    from interp_widget.models.loading import load
    from interp_widget.zoo.tokenizer import BOS_ID, CHAR_IDS

    model = load("induction-2l")
    prev_heads = json.loads((zoo.path("induction-2l") / "card.json").read_text())["heads"]["previous_token"]
    g = torch.Generator().manual_seed(0)
    ids = torch.tensor(CHAR_IDS)
    n, b = 20, 8
    block, other = (ids[torch.randint(0, len(ids), (b, n), generator=g)] for _ in range(2))
    bos = torch.full((b, 1), BOS_ID)
    clean = torch.cat([bos, block, block], 1)  # [BOS] R R: the second copy is predictable
    corrupted = torch.cat([bos, other, block], 1)  # [BOS] R' R: it is not
    metric = loss(slice(n + 1, None))  # the loss on the repeated copy
    exact = patch(model, clean, corrupted, metric, "heads", direction="noise")
    star = attribute(model, clean, corrupted, metric, "heads")
    plain = star.meta["plain_atp"]
    index = {name: (int(name[1]), int(name[3])) for name in prev_heads}  # "L0H2" -> (0, 2)
    signs = {name: (float(exact.values[i] - exact.clean_metric), float(plain[i] - exact.clean_metric),
                    float(star.values[i] - exact.clean_metric)) for name, i in index.items()}
    for name, (ex, _, st) in signs.items():
        assert ex > 0.5, (name, signs)  # removing a previous-token head breaks the induction
        assert st > 0, (name, signs)  # AtP*: right sign
    assert any(pl < 0 for _, pl, _ in signs.values()), signs  # plain AtP: wrong sign
    assert pearson(star.values, exact.values) > 0.8 > pearson(plain, exact.values)
