"""induction-2l's model card: every number recomputed from the shipped weights, and every claim checked.

The card (``card.json`` + ``MODEL_CARD.md``) was written by ``scripts/induction_2l_card.py`` with raw
TransformerLens hooks. Here the numbers are recomputed by other routes: head scores through
``iw.head_scores`` (the tracing backend), losses and ablations through ``Model.run`` with
:class:`Intervention`s, the matching floors with tensors instead of loops, and the layer-0 -> layer-1
path effects by patching layer 1's key/query/value input with the residual stream of a run where the
layer-0 heads are mean-ablated (the script subtracts their outputs instead).
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from interp_widget import zoo
from interp_widget.analysis.heads import head_scores, repeated_random_tokens, scores_from_patterns
from interp_widget.tracing.base import Intervention
from interp_widget.tracing.sites import Site
from interp_widget.zoo.tokenizer import BOS_ID, CHAR_IDS

TOL = 2e-3  # the card keeps 4+ decimals; recomputation by another route differs by float rounding only


@pytest.fixture(scope="module")
def card() -> dict:
    return json.loads((zoo.path("induction-2l") / "card.json").read_text())


@pytest.fixture(scope="module")
def model() -> object:
    return zoo.load("induction-2l")


@pytest.fixture(scope="module")
def tokens(card: dict) -> torch.Tensor:
    ev = card["eval"]
    return repeated_random_tokens(ev["n_prompts"], ev["block_len"], CHAR_IDS, bos=BOS_ID, seed=ev["seed"])


@pytest.fixture(scope="module")
def measured(card: dict, model: object, tokens: torch.Tensor) -> dict:
    """The card's numbers, recomputed."""
    n = card["eval"]["block_len"]
    ht = model.raw
    out: dict = {"loss": dict(zip(("first_half", "repeated_half"), halves(model.run(tokens).logits, tokens, n),
                                  strict=True))}
    out["ablation"] = {lab: ablated(model, tokens, [lab], n) for lab in card["ablation"]}
    out["group_ablation"] = {g: ablated(model, tokens, v["heads"], n) for g, v in card["group_ablation"].items()}
    ht.cfg.use_split_qkv_input = True
    try:
        out["composition"] = {lab: path_losses(model, tokens, [lab], n) for lab in card["composition"]}
        out["group_composition"] = {g: path_losses(model, tokens, card["roles"][g], n)
                                    for g in card["group_composition"]}
    finally:
        ht.cfg.use_split_qkv_input = False
    res = model.run(tokens, capture=[f"blocks.{i}.attn.hook_pattern" for i in range(2)])
    out["attention_by_offset"] = {}
    for layer in range(2):
        pat = res.cache[f"blocks.{layer}.attn.hook_pattern"]
        q = torch.arange(6, pat.shape[-1])
        for h in range(4):
            out["attention_by_offset"][f"L{layer}H{h}"] = [pat[:, h, q, q - d].mean().item() for d in range(6)]
    return out


def halves(logits: torch.Tensor, tokens: torch.Tensor, n: int) -> tuple[float, float]:
    """(first-copy loss over targets 1..n, repeat loss over targets n+2..2n)."""
    nll = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), tokens[:, 1:].flatten(),
                                            reduction="none").view(tokens.shape[0], -1)
    return nll[:, :n].mean().item(), nll[:, n + 1:].mean().item()


def head(lab: str) -> tuple[int, int]:
    layer, h = lab[1:].split("H")
    return int(layer), int(h)


_MEANS: dict[bytes, dict[int, torch.Tensor]] = {}  # tokens -> layer -> mean hook_z over the batch


def mean_ablations(model: object, tokens: torch.Tensor, heads: list[str]) -> list[Intervention]:
    key = tokens.numpy().tobytes() + bytes(str(tuple(tokens.shape)), "ascii")
    if key not in _MEANS:
        res = model.run(tokens, capture=["blocks.0.attn.hook_z", "blocks.1.attn.hook_z"])
        _MEANS[key] = {i: res.cache[f"blocks.{i}.attn.hook_z"].mean(0, keepdim=True) for i in range(2)}
    means = _MEANS[key]
    return [Intervention(Site("attn.hook_z", head(h)[0], head=head(h)[1]), "set", means[head(h)[0]]) for h in heads]


def ablated(model: object, tokens: torch.Tensor, heads: list[str], n: int) -> dict[str, float]:
    first, rep = halves(model.run(tokens, interventions=mean_ablations(model, tokens, heads)).logits, tokens, n)
    return {"first_half": first, "repeated_half": rep}


def ablated_resid(model: object, tokens: torch.Tensor, heads0: list[str]) -> torch.Tensor:
    return model.run(tokens, capture=["blocks.1.hook_resid_pre"],
                     interventions=mean_ablations(model, tokens, heads0)).cache["blocks.1.hook_resid_pre"]


def patch_input(resid: torch.Tensor) -> object:
    def hook(x: torch.Tensor, hook: object) -> torch.Tensor:
        return resid[:, :, None, :].expand_as(x).clone()
    return hook


def path_losses(model: object, tokens: torch.Tensor, heads0: list[str], n: int) -> dict[str, float]:
    """Repeat loss with layer 1's k/q/v input taken from a run where ``heads0`` are mean-ablated."""
    resid = ablated_resid(model, tokens, heads0)
    out = {}
    for target in "kqv":
        with torch.no_grad():
            logits = model.raw.run_with_hooks(tokens, fwd_hooks=[(f"blocks.1.hook_{target}_input", patch_input(resid))])
        out[target] = halves(logits, tokens, n)[1]
    return out


def floor(tokens: torch.Tensor, n: int, context: int) -> float:
    """Loss of even guessing over successors of earlier matches of the last ``context`` tokens (vectorised)."""
    losses = []
    for t in range(n + 2, 2 * n + 1):
        c = min(context, t - (n + 1))
        k = torch.arange(c, t - 1)  # match ends at k, successor k + 1 < t
        match = torch.ones(tokens.shape[0], len(k), dtype=torch.bool)
        for j in range(c):
            match &= tokens[:, k - j] == tokens[:, t - 1 - j, None]
        hits = match & (tokens[:, k + 1] == tokens[:, t, None])
        losses.append(-(hits.sum(1).float() / match.sum(1).float()).log())
    return torch.stack(losses, 1).mean().item()


# --- the numbers -------------------------------------------------------------------------------------
def test_losses_and_floors(card: dict, measured: dict, tokens: torch.Tensor) -> None:
    n = card["eval"]["block_len"]
    for k in ("first_half", "repeated_half"):
        assert measured["loss"][k] == pytest.approx(card["loss"][k], abs=TOL)
    assert card["loss"]["uniform"] == pytest.approx(math.log(70), abs=1e-9)
    assert floor(tokens, n, 1) == pytest.approx(card["loss"]["one_token_floor"], abs=1e-4)
    assert floor(tokens, n, 2) == pytest.approx(card["loss"]["two_token_floor"], abs=1e-4)


def test_head_scores(card: dict, model: object) -> None:
    hs = head_scores(model, **card["head_scores"]["params"])
    for kind, rows in card["head_scores"]["scores"].items():
        torch.testing.assert_close(hs[kind], torch.tensor(rows), atol=TOL, rtol=0)


def test_ablations(card: dict, measured: dict) -> None:
    for table in ("ablation", "group_ablation"):
        for key, want in card[table].items():
            for half in ("first_half", "repeated_half"):
                assert measured[table][key][half] == pytest.approx(want[half], abs=TOL), (table, key, half)


def test_path_patching(card: dict, measured: dict) -> None:
    for table in ("composition", "group_composition"):
        for key, want in card[table].items():
            for target in "kqv":
                assert measured[table][key][target] == pytest.approx(want[target], abs=TOL), (table, key, target)


def test_attention_by_offset(card: dict, measured: dict) -> None:
    for lab, want in card["attention_by_offset"].items():
        assert measured["attention_by_offset"][lab] == pytest.approx(want, abs=TOL), lab


def test_induction_scores_with_previous_token_heads_cut_from_keys(card: dict, model: object) -> None:
    p = card["head_scores"]["params"]
    stoks = repeated_random_tokens(p["n_prompts"], p["seq_len"], CHAR_IDS, bos=BOS_ID, seed=p["seed"])
    resid = ablated_resid(model, stoks, card["roles"]["previous_token"])
    ht = model.raw
    ht.cfg.use_split_qkv_input = True
    try:
        with torch.no_grad(), ht.hooks(fwd_hooks=[("blocks.1.hook_k_input", patch_input(resid))]):
            _, cache = ht.run_with_cache(stoks, names_filter="blocks.1.attn.hook_pattern")
    finally:
        ht.cfg.use_split_qkv_input = False
    cut = scores_from_patterns(cache["blocks.1.attn.hook_pattern"][:, None], stoks, ["induction"])["induction"]
    cut = cut.nanmean(0)[0]
    for lab, want in card["induction_score_keys_cut"].items():
        assert cut[head(lab)[1]].item() == pytest.approx(want, abs=TOL), lab


# --- the claims ----------------------------------------------------------------------------------------
def test_roles_follow_from_the_numbers(card: dict, model: object) -> None:
    """Re-derive every head's role with the card's stated rules (pruned: all of the head's weights are zero)."""
    base, first = card["loss"]["repeated_half"], card["loss"]["first_half"]
    small = card["eval"]["min_effect"] * (first - base)
    roles: dict[str, list[str]] = {k: [] for k in card["roles"]}
    for lab in card["ablation"]:
        layer, h = head(lab)
        single = card["ablation"][lab]["repeated_half"] - base
        attn = model.raw.blocks[layer].attn
        if all(not w[h].any() for w in (attn.W_Q, attn.W_K, attn.W_V, attn.W_O, attn.b_Q, attn.b_K, attn.b_V)):
            roles["pruned"].append(lab)
        elif layer == 0 and max(v - base for v in card["composition"][lab].values()) > small:
            comp = card["composition"][lab]
            roles["previous_token" if max(comp, key=comp.__getitem__) in "kq" else "token_value"].append(lab)
        elif layer == 1 and card["head_scores"]["scores"]["induction"][1][h] >= card["eval"]["induction_score"]:
            roles["induction"].append(lab)
        else:
            roles["other" if single > small else "unused"].append(lab)
    assert roles == card["roles"]
    assert card["heads"] == {"previous_token": roles["previous_token"], "induction": roles["induction"]}
    assert roles["previous_token"] and roles["induction"]


def test_mechanism_claims(card: dict) -> None:
    loss, base = card["loss"], card["loss"]["repeated_half"]
    gap = loss["first_half"] - base
    ga, offs = card["group_ablation"], card["attention_by_offset"]
    # trained: the first copy is at chance, the repeat far below it
    assert abs(loss["first_half"] - loss["uniform"]) < 0.05 and gap > 3.5
    # ablating the previous-token and induction heads takes the repeat back to the first copy's loss ...
    assert ga["previous_token+induction"]["repeated_half"] > loss["first_half"] - 0.1 * gap
    # ... and everything else together matters little (the pruned heads are exactly zero)
    assert ga["all_other_heads"]["repeated_half"] - base < card["eval"]["min_effect"] * gap
    # pruned in training: what training recorded, and every pruned head's ablation changes nothing
    assert card["roles"]["pruned"] == sorted(card["training"]["pruning"]["pruned"])
    assert all(card["ablation"][lab]["repeated_half"] == pytest.approx(base, abs=1e-6) for lab in card["roles"]["pruned"])
    # one previous-token head, one induction head, no token head: the values come from the embeddings
    assert len(card["roles"]["previous_token"]) == 1 and len(card["roles"]["induction"]) == 1
    assert not card["roles"]["token_value"] and "token_value" not in card["group_composition"]
    # the previous-token head looks back mostly 1 token, but also 2 and 3: its key blends a few earlier tokens
    (prev,) = card["roles"]["previous_token"]
    assert max(range(6), key=lambda d: offs[prev][d]) == 1 and sum(offs[prev][1:4]) > 0.6
    # layer 1 needs it through keys AND queries, not values
    c = card["composition"][prev]
    assert min(c["k"], c["q"]) > base + 0.5 * gap and c["v"] - base < 0.05 * gap
    # the keys need it: cut from the keys, the induction head stops attending to the induction target
    for lab in card["roles"]["induction"]:
        h = head(lab)[1]
        assert card["induction_score_keys_cut"][lab] < 0.2 * card["head_scores"]["scores"]["induction"][1][h]
    # not the textbook circuit: better than one-token matching allows, so it matches more than one token
    assert loss["two_token_floor"] < base < loss["one_token_floor"]


def test_card_markdown_quotes_the_numbers(card: dict) -> None:
    text = zoo.card("induction-2l")
    ev = card["eval"]
    assert f"| first copy (targets 1..{ev['block_len']}) | {card['loss']['first_half']:.3f} |" in text
    assert f"| repeated copy (all targets but the repeat's first) | {card['loss']['repeated_half']:.3f} |" in text
    for lab in card["roles"]["previous_token"]:
        assert f"**{lab}, previous-token head" in text
    for lab in card["roles"]["induction"]:
        score = card["head_scores"]["scores"]["induction"][1][head(lab)[1]]
        assert f"**{lab}, induction head** (induction score {score:.3f}" in text
    assert "Not the textbook circuit" in text
    for lab in card["roles"]["pruned"]:
        assert lab in text.split("**Pruned in training: ")[1].split("**")[0]
    assert f"`{card['reproduce']}`" in text
    assert f"Seed {card['training']['seed']}, {card['training']['steps']} steps" in text
