"""Measure what ``induction-2l`` does and write its model card (``card.json`` + ``MODEL_CARD.md``).

Used by ``scripts/train_induction_2l.py`` (after training, or with ``--eval-only``). Everything is
computed with plain TransformerLens hooks on seeded data; ``tests/test_model_card.py`` recomputes
the numbers by other routes (the tracing backend, interventions, residual-stream patching) and checks
the claims the card makes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from interp_widget.analysis.heads import repeated_random_tokens, scores_from_patterns
from interp_widget.zoo.tokenizer import BOS_ID, CHAR_IDS

EVAL_SEED = 0
EVAL_PROMPTS = 100
EVAL_BLOCK = 50  # eval prompts are [BOS] + R + R with len(R) = 50
SCORE_KW = {"seq_len": 40, "n_prompts": 32, "seed": 0}  # = interp_widget.head_scores defaults
MAX_OFFSET = 6
MIN_EFFECT = 0.02  # a path or ablation "matters" above this fraction of the first-copy/repeat loss gap
INDUCTION_SCORE = 0.3
SPREAD = 0.1  # "looks back d tokens" lists every offset d >= 1 with at least this mean attention
REPRODUCE = "python scripts/train_induction_2l.py"

Hooks = list[tuple[str, Callable[..., Any]]]
Head = tuple[int, int]


def eval_tokens() -> torch.Tensor:
    return repeated_random_tokens(EVAL_PROMPTS, EVAL_BLOCK, CHAR_IDS, bos=BOS_ID, seed=EVAL_SEED)


def half_losses(ht: Any, tokens: torch.Tensor, hooks: Hooks | None = None) -> dict[str, float]:
    """Mean next-token loss on the first copy (targets 1..L) and on the repeat (targets L+2..2L).

    The repeat's first token (target L+1) is left out: nothing earlier predicts it.
    """
    n = EVAL_BLOCK
    with torch.no_grad():
        logits = ht.run_with_hooks(tokens, fwd_hooks=hooks or [])
    logp = logits[:, :-1].log_softmax(-1)
    nll = -logp.gather(-1, tokens[:, 1:, None])[..., 0]  # nll[:, t-1] is the loss on target t
    return {"first_half": nll[:, 0:n].mean().item(), "repeated_half": nll[:, n + 1:2 * n].mean().item()}


def matching_floor(tokens: torch.Tensor, context: int) -> float:
    """Loss on the repeat of a predictor that matches the last ``context`` tokens against earlier text.

    For target t it spreads probability evenly over the tokens that followed earlier occurrences of
    ``tokens[t-c:t]``, with ``c = context`` but at most the number of repeat tokens before t (the
    repeat's second token, target L+2, is matched on one token: its two-token context straddles the
    start of the repeat). So the earlier copy is always among the matches. ``context=1`` is textbook
    induction.
    """
    n = EVAL_BLOCK
    total, count = 0.0, 0
    for row in tokens.tolist():
        for t in range(n + 2, 2 * n + 1):
            c = min(context, t - (n + 1))
            ctx = row[t - c:t]
            nxt = [row[k + 1] for k in range(c, t - 1) if row[k - c + 1:k + 1] == ctx]
            total += -math.log(nxt.count(row[t]) / len(nxt))
            count += 1
    return total / count


def label(head: Head) -> str:
    return f"L{head[0]}H{head[1]}"


def parse(lab: str) -> Head:
    return int(lab[1:lab.index("H")]), int(lab[lab.index("H") + 1:])


def head_params(ht: Any, layer: int) -> tuple[torch.Tensor, ...]:
    """Layer ``layer``'s per-head parameters (W_Q, W_K, W_V, W_O, b_Q, b_K, b_V), indexed by head first."""
    attn = ht.blocks[layer].attn
    return attn.W_Q, attn.W_K, attn.W_V, attn.W_O, attn.b_Q, attn.b_K, attn.b_V


def is_pruned(ht: Any, head: Head) -> bool:
    """True if every weight and bias of the head is zero (pruned in training): it attends uniformly, writes 0."""
    return all(not w[head[1]].any() for w in head_params(ht, head[0]))


def mean_ablate_hooks(ht: Any, tokens: torch.Tensor, heads: list[Head]) -> Hooks:
    """Hooks replacing each head's ``hook_z`` by its mean over the batch (at each position)."""
    _, cache = ht.run_with_cache(tokens, names_filter=lambda n: n.endswith("hook_z"))
    hooks: Hooks = []
    for layer in sorted({h[0] for h in heads}):
        mean = cache[f"blocks.{layer}.attn.hook_z"].mean(0, keepdim=True)
        idx = [h for (lay, h) in heads if lay == layer]

        def hook(z: torch.Tensor, hook: Any, mean: torch.Tensor = mean, idx: list[int] = idx) -> torch.Tensor:
            z = z.clone()
            z[:, :, idx] = mean[:, :, idx].expand(z.shape[0], -1, -1, -1)
            return z
        hooks.append((f"blocks.{layer}.attn.hook_z", hook))
    return hooks


def path_ablate_hooks(ht: Any, tokens: torch.Tensor, heads0: list[int], target: str) -> Hooks:
    """Remove layer-0 heads' outputs (minus their means) from layer 1's ``target`` input only.

    ``target``: "k", "q" or "v"; the caller sets ``cfg.use_split_qkv_input``.
    """
    _, cache = ht.run_with_cache(tokens, names_filter="blocks.0.attn.hook_z")
    z0 = cache["blocks.0.attn.hook_z"]
    mean = z0.mean(0, keepdim=True)
    w_o = ht.blocks[0].attn.W_O  # [head, d_head, d_model]
    store: dict[str, torch.Tensor] = {}

    def grab(z: torch.Tensor, hook: Any) -> None:
        store["z"] = z

    def remove(x: torch.Tensor, hook: Any) -> torch.Tensor:  # x: [batch, pos, head, d_model]
        delta = torch.einsum("bphd,hdm->bpm", (store["z"] - mean)[:, :, heads0], w_o[heads0])
        return x - delta[:, :, None, :]
    return [("blocks.0.attn.hook_z", grab), (f"blocks.1.hook_{target}_input", remove)]


def path_losses(ht: Any, tokens: torch.Tensor, heads0: list[int]) -> dict[str, float]:
    ht.cfg.use_split_qkv_input = True
    try:
        return {t: half_losses(ht, tokens, path_ablate_hooks(ht, tokens, heads0, t))["repeated_half"] for t in "kqv"}
    finally:
        ht.cfg.use_split_qkv_input = False


def offsets(ht: Any, tokens: torch.Tensor) -> dict[str, list[float]]:
    """Mean attention from query q to key q - d (d = 0..MAX_OFFSET-1), over queries q >= MAX_OFFSET."""
    with torch.no_grad():
        _, cache = ht.run_with_cache(tokens, names_filter=lambda n: n.endswith("hook_pattern"))
    out = {}
    for layer in range(ht.cfg.n_layers):
        pat = cache[f"blocks.{layer}.attn.hook_pattern"]  # [b, h, q, k]
        q = torch.arange(MAX_OFFSET, pat.shape[-2])
        for h in range(ht.cfg.n_heads):
            out[label((layer, h))] = [round(pat[:, h, q, q - d].mean().item(), 4) for d in range(MAX_OFFSET)]
    return out


def pattern_scores(ht: Any, tokens: torch.Tensor, hooks: Hooks | None = None) -> dict[str, torch.Tensor]:
    with torch.no_grad(), ht.hooks(fwd_hooks=hooks or []):
        _, cache = ht.run_with_cache(tokens, names_filter=lambda n: n.endswith("hook_pattern"))
    pats = torch.stack([cache[f"blocks.{i}.attn.hook_pattern"] for i in range(ht.cfg.n_layers)], dim=1)
    return {k: v.nanmean(0) for k, v in scores_from_patterns(pats, tokens).items()}


def roles(res: dict[str, Any], n_heads: int) -> dict[str, list[str]]:
    """Each head's role, from the measurements (see the card's "How heads are named")."""
    base, first = res["loss"]["repeated_half"], res["loss"]["first_half"]
    floor = MIN_EFFECT * (first - base)
    out: dict[str, list[str]] = {"previous_token": [], "token_value": [], "induction": [], "other": [], "unused": [],
                                 "pruned": list(res["pruned"])}
    for h in range(n_heads):
        lab = label((0, h))
        if lab in out["pruned"]:
            continue
        eff = {t: v - base for t, v in res["composition"][lab].items()}
        single = res["ablation"][lab]["repeated_half"] - base
        if max(eff.values()) > floor:
            out["previous_token" if max(eff, key=eff.__getitem__) in "kq" else "token_value"].append(lab)
        else:
            out["other" if single > floor else "unused"].append(lab)
    for h in range(n_heads):
        lab = label((1, h))
        if lab in out["pruned"]:
            continue
        single = res["ablation"][lab]["repeated_half"] - base
        if res["head_scores"]["scores"]["induction"][1][h] >= INDUCTION_SCORE:
            out["induction"].append(lab)
        else:
            out["other" if single > floor else "unused"].append(lab)
    return out


def evaluate(ht: Any) -> dict[str, Any]:
    """Every number in the card, from the weights in ``ht`` (deterministic: seeded data, no sampling)."""
    torch.set_grad_enabled(False)
    tokens = eval_tokens()
    n_layers, n_heads = ht.cfg.n_layers, ht.cfg.n_heads
    res: dict[str, Any] = {"loss": {**half_losses(ht, tokens), "uniform": math.log(len(CHAR_IDS)),
                                    "one_token_floor": matching_floor(tokens, 1),
                                    "two_token_floor": matching_floor(tokens, 2)}}
    stoks = repeated_random_tokens(SCORE_KW["n_prompts"], SCORE_KW["seq_len"], CHAR_IDS, bos=BOS_ID,
                                   seed=SCORE_KW["seed"])
    scores = pattern_scores(ht, stoks)
    res["head_scores"] = {"params": dict(SCORE_KW),
                          "scores": {k: [[round(x, 4) for x in row] for row in v.tolist()] for k, v in scores.items()}}
    res["attention_by_offset"] = offsets(ht, tokens)
    all_heads = [(lay, h) for lay in range(n_layers) for h in range(n_heads)]
    res["pruned"] = [label(h) for h in all_heads if is_pruned(ht, h)]
    res["ablation"] = {label(h): half_losses(ht, tokens, mean_ablate_hooks(ht, tokens, [h])) for h in all_heads}
    res["composition"] = {label((0, h)): path_losses(ht, tokens, [h]) for h in range(n_heads)}
    res["roles"] = roles(res, n_heads)
    res["heads"] = {"previous_token": res["roles"]["previous_token"], "induction": res["roles"]["induction"]}

    circuit = res["roles"]["previous_token"] + res["roles"]["induction"]
    groups = {
        "previous_token": res["roles"]["previous_token"],
        "induction": res["roles"]["induction"],
        "previous_token+induction": circuit,
        "token_value": res["roles"]["token_value"],
        "unused": res["roles"]["unused"],
        "all_other_heads": [label(h) for h in all_heads if label(h) not in circuit],
    }
    res["group_ablation"] = {
        k: {"heads": v, **half_losses(ht, tokens, mean_ablate_hooks(ht, tokens, [parse(x) for x in v]) if v else [])}
        for k, v in groups.items()
    }
    res["group_composition"] = {
        k: path_losses(ht, tokens, [parse(x)[1] for x in res["roles"][k]])
        for k in ("previous_token", "token_value") if res["roles"][k]
    }
    # induction scores when the previous-token heads are cut out of layer 1's keys only
    prev0 = [parse(x)[1] for x in res["roles"]["previous_token"]]
    if prev0:
        ht.cfg.use_split_qkv_input = True
        try:
            cut = pattern_scores(ht, stoks, path_ablate_hooks(ht, stoks, prev0, "k"))["induction"]
        finally:
            ht.cfg.use_split_qkv_input = False
        res["induction_score_keys_cut"] = {label((1, h)): round(cut[1, h].item(), 4) for h in range(n_heads)}
    res["eval"] = {"seed": EVAL_SEED, "n_prompts": EVAL_PROMPTS, "block_len": EVAL_BLOCK,
                   "prompt": "[BOS] + R + R, R uniform over the 70 character tokens (with replacement)",
                   "ablation": "mean ablation of hook_z: mean over the eval batch at each position",
                   "min_effect": MIN_EFFECT, "induction_score": INDUCTION_SCORE}
    torch.set_grad_enabled(True)
    return res


# --------------------------------------------------------------------------- markdown
def _score(res: dict[str, Any], kind: str, lab: str) -> float:
    layer, head = parse(lab)
    return float(res["head_scores"]["scores"][kind][layer][head])


def _offsets_text(prof: list[float]) -> str:
    return ", ".join(f"{'self' if d == 0 else f'-{d}'}: {v:.2f}" for d, v in enumerate(prof))


def _lookback(prof: list[float]) -> int:
    return max(range(len(prof)), key=lambda d: prof[d])


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _list(labs: list[str]) -> str:
    return ", ".join(labs) if labs else "none"


def _redundant(res: dict[str, Any]) -> bool:
    """True if the token heads back each other up (each alone costs < half of the group's ablation)."""
    labs, base = res["roles"]["token_value"], res["loss"]["repeated_half"]
    group = res["group_ablation"]["token_value"]["repeated_half"] - base
    return len(labs) > 1 and all(res["ablation"][lab]["repeated_half"] - base < 0.5 * group for lab in labs)


def _compare(x: float, ref: float) -> str:
    return "above" if x > ref + 0.05 else "below" if x < ref - 0.05 else "about"


def mechanism_lines(res: dict[str, Any]) -> list[str]:
    """The mechanism, written from the measurements (the tests check every relation stated here)."""
    loss, comp, ga, roles_ = res["loss"], res["composition"], res["group_ablation"], res["roles"]
    offs = res["attention_by_offset"]
    base = loss["repeated_half"]
    out = []
    for lab in roles_["previous_token"]:
        back = [d for d in range(1, len(offs[lab])) if offs[lab][d] >= SPREAD]
        d = _lookback(offs[lab])
        looks = (f"looks back {d} token{'s' if d > 1 else ''}" if len(back) <= 1 else
                 f"looks back {_and([str(x) for x in back])} tokens, most at {d}")
        c = comp[lab]
        out.append(f"- **{lab}, previous-token head, {looks}** (previous-token score"
                   f" {_score(res, 'previous_token', lab):.3f}; attention by offset {_offsets_text(offs[lab])})."
                   f" Removed from layer 1's keys only, the repeat loss goes from {base:.3f} to {c['k']:.3f};"
                   f" from its queries only, to {c['q']:.3f}; from its values only, to {c['v']:.3f}.")
    for lab in roles_["token_value"]:
        d = _lookback(offs[lab])
        where = "its own position" if d == 0 else f"{d} tokens back"
        c = comp[lab]
        out.append(f"- **{lab}, token head feeding layer 1's values** (attends mostly to {where}: "
                   f"{_offsets_text(offs[lab])}; duplicate-token score {_score(res, 'duplicate_token', lab):.3f})."
                   f" Removed from layer 1's values only: {c['v']:.3f}; keys: {c['k']:.3f}; queries: {c['q']:.3f}.")
    for lab in roles_["induction"]:
        cut = res.get("induction_score_keys_cut", {}).get(lab)
        out.append(f"- **{lab}, induction head** (induction score {_score(res, 'induction', lab):.3f}; mean-ablated"
                   f" alone: repeat loss {res['ablation'][lab]['repeated_half']:.3f})"
                   + (f". With the previous-token heads cut out of layer 1's keys, its induction score is {cut:.3f}."
                      if cut is not None else "."))
    for lab in roles_["other"]:
        out.append(f"- **{lab}**: matters (mean-ablated alone: repeat loss {res['ablation'][lab]['repeated_half']:.3f})"
                   " but not through layer 1's keys, queries or values, and it is no induction head.")
    if roles_["pruned"]:
        out.append(f"- **Pruned in training: {_list(roles_['pruned'])}**: every weight and bias of these heads is zero,"
                   " so they attend uniformly and write nothing (see Training).")
    if roles_["unused"]:
        many = len(roles_["unused"]) > 1
        out.append(f"- **Unused: {_list(roles_['unused'])}**: mean-ablating {'them all' if many else 'it'} leaves the"
                   f" repeat loss at {ga['unused']['repeated_half']:.3f}.")
    prev = roles_["previous_token"]
    two_token = [lab for lab in prev if _lookback(offs[lab]) >= 2]
    queries = [lab for lab in prev if comp[lab]["q"] - base > 0.25 * (loss["first_half"] - base)]
    spread = [lab for lab in prev if sum(v >= SPREAD for v in offs[lab][1:]) > 1]
    out += [
        "",
        f"Mean-ablating the previous-token and induction heads together ({_list(ga['previous_token+induction']['heads'])})"
        f" takes the repeat loss to {ga['previous_token+induction']['repeated_half']:.3f}"
        f" ({_compare(ga['previous_token+induction']['repeated_half'], loss['first_half'])} the first copy's"
        f" {loss['first_half']:.3f}). Mean-ablating every other head ({_list(ga['all_other_heads']['heads'])}) gives"
        f" {ga['all_other_heads']['repeated_half']:.3f}"
        + (f"; of these, the token heads ({_list(roles_['token_value'])}) alone give"
           f" {ga['token_value']['repeated_half']:.3f} and, removed from layer 1's values only,"
           f" {res['group_composition']['token_value']['v']:.3f}: they carry each position's own token to the"
           " induction heads' values" + (", and they stand in for each other: each one alone costs less than half"
                                         " as much as all of them" if _redundant(res) else "") + "."
           if roles_["token_value"] else "."),
        "",
    ]
    not_textbook = (f"**Not the textbook circuit.** The repeat loss ({loss['repeated_half']:.3f}) is below the one-token"
                    f" matching floor ({loss['one_token_floor']:.3f}): the model finds the earlier copy by matching more"
                    " than the current token.")
    if not two_token and queries and spread and loss["repeated_half"] < loss["one_token_floor"]:
        out += [
            f"{not_textbook} {_list(spread)} spreads its attention over the last few tokens (see the offsets above), so"
            " layer 1's key at position k carries a blend of the tokens just before k, and its queries need the same"
            " head too (" + "; ".join(f"{lab} removed from the queries only: {comp[lab]['q']:.3f}" for lab in queries)
            + "), so the query carries the current token *and* a blend of the ones before it. The induction head matches that"
            " context against each key and copies the token at the key from the embeddings (its values need no"
            " layer-0 head). This is K-composition plus Q-composition. The two-token matching floor is"
            f" {loss['two_token_floor']:.3f}.",
        ]
    elif two_token and loss["repeated_half"] < loss["one_token_floor"]:
        out += [
            f"{not_textbook} Layer 1's keys at position k carry the tokens 1 and 2 back (from {_list(prev)}), and"
            " its queries carry the current token and the previous one (the previous-token head feeds the queries too:"
            " see the query column above), so the induction heads match the last *two* tokens against the two tokens"
            " before each key and copy the token at the key. This is still K-composition (the keys need the layer-0"
            f" heads), plus Q-composition. The two-token matching floor is {loss['two_token_floor']:.3f}.",
        ]
    else:
        out += [
            "This is the textbook circuit: the previous-token head(s) write the preceding token into each position;",
            "the induction heads match the current token (query) against it (key) and copy the token found (value).",
        ]
    return out


def _pruning_lines(t: dict[str, Any]) -> list[str]:
    """The training bullet on head pruning (Michel et al. 2019), from what the training run recorded."""
    p, rule = t.get("pruning"), t.get("prune_rule")
    if not p or not rule:
        return []
    imp = ", ".join(f"{k} {v:+.2f}" for k, v in p["importance"].items())
    return [
        f"- Head pruning: once the repeat loss on a separate batch of `[BOS] + R + R` prompts (seed 1) fell below"
        f" {rule['below_repeat_loss']} (checked every {rule['every']} steps; it was {p['probe_repeat_loss']:.3f} at"
        f" step {p['step']}), each layer kept its {rule['keep_per_layer']} most important head"
        f"{'s' if rule['keep_per_layer'] > 1 else ''} ({_list(p['kept'])}) and the others ({_list(p['pruned'])})"
        " were zeroed and held at zero for the rest of training, so the kept heads take over the whole job."
        f" Importance = rise of that batch's repeat loss when the head is mean-ablated, at the pruning step: {imp}."
        " Trained without pruning (the model shipped up to commit 58ee43a), the same recipe spreads induction over"
        " three interchangeable layer-1 heads fed by two previous-token heads and two token heads, and no small set of edges carries the behaviour; the"
        " pruned model has one known circuit, which is what a default model for checking circuit discovery needs.",
    ]


def card_markdown(res: dict[str, Any], training: dict[str, Any]) -> str:
    loss, sp, ev = res["loss"], res["head_scores"]["params"], res["eval"]
    t = training
    lines = [
        "# induction-2l",
        "",
        "A 2-layer, attention-only TransformerLens `HookedTransformer` (d_model 128, 4 heads x d_head 32 per layer,",
        "n_ctx 128, LayerNorm, learned positional embeddings, no MLPs) over a 72-token character vocabulary",
        "(`<bos>`, `<unk>`, space, newline, a-z, A-Z, 0-9, `.,!?'-`; other characters become `<unk>`). It is",
        "interp-widget's default model: small, with a known and checked circuit. Every number here is in `card.json`",
        "and `tests/test_model_card.py` recomputes it from the shipped weights.",
        "",
        "## Training",
        "",
        f"- Data: {t['seq_len']}-token sequences, `<bos>` + characters drawn uniformly from the 70 character tokens,",
        f"  with one random block repeated once. For every sequence the block length (uniform in {t['min_block']}.."
        f"{t['max_block']}) and the positions of both copies are drawn afresh, so the distance between the copies"
        " varies and no head can find the earlier copy by position alone. Loss: next-token cross-entropy on every"
        " position.",
        f"- Seed {t['seed']}, {t['steps']} steps, batch {t['batch']}, {t['optimizer']}, peak lr {t['lr']},"
        f" {t['schedule']} ({t['warmup']} warm-up steps), gradient clipping {t['grad_clip']}, {t['threads']} CPU thread"
        + (f"; {t['train_seconds'] / 60:.0f} min of training on a 2-core machine shared with other jobs."
           if "train_seconds" in t
           else "."),
        *_pruning_lines(t),
        f"- Reproduce: `{REPRODUCE}` writes `interp_widget/zoo/induction_2l/`; `{REPRODUCE} --eval-only`"
        " recomputes this card from the weights.",
        "",
        "## Loss",
        "",
        f"On {ev['n_prompts']} prompts `[BOS] + R + R`, `R` = {ev['block_len']} random characters (seed {ev['seed']}):",
        "",
        "| | loss (nats) |",
        "|---|---|",
        f"| first copy (targets 1..{ev['block_len']}) | {loss['first_half']:.3f} |",
        f"| repeated copy (all targets but the repeat's first) | {loss['repeated_half']:.3f} |",
        f"| uniform guess, ln 70 | {loss['uniform']:.3f} |",
        f"| one-token matching floor (textbook induction) | {loss['one_token_floor']:.3f} |",
        f"| two-token matching floor | {loss['two_token_floor']:.3f} |",
        "",
        "The repeat cannot reach zero loss: with 70 characters the current character often occurred earlier more than",
        "once, so the token after its earlier copy is ambiguous. The floors are the exact losses of predictors that",
        "spread their guess evenly over the tokens that followed every earlier occurrence of the last one (or two)",
        "tokens.",
        "",
        "## Head scores",
        "",
        f"`iw.head_scores(model)` (prompts `[BOS] + R + R`, len(R) = {sp['seq_len']}, {sp['n_prompts']} prompts,"
        f" seed {sp['seed']}; mean attention on the target where one exists):",
        "",
        "| head | previous-token | induction | duplicate-token |",
        "|---|---|---|---|",
    ]
    for lab in res["ablation"]:
        lines.append(f"| {lab} | {_score(res, 'previous_token', lab):.3f} | {_score(res, 'induction', lab):.3f} | "
                     f"{_score(res, 'duplicate_token', lab):.3f} |")
    lines += ["", "## Mechanism (checked by ablation and path patching)", "", *mechanism_lines(res), ""]
    lines += ["### Mean-ablating one head", "", "Each head's `hook_z` replaced by its mean over the eval batch at each"
              " position:", "", "| head | first-copy loss | repeat loss |", "|---|---|---|",
              f"| none | {loss['first_half']:.3f} | {loss['repeated_half']:.3f} |"]
    lines += [f"| {lab} | {v['first_half']:.3f} | {v['repeated_half']:.3f} |" for lab, v in res["ablation"].items()]
    lines += ["", "### Mean-ablating groups", "", "| group | heads | first-copy loss | repeat loss |", "|---|---|---|---|"]
    lines += [f"| {k} | {_list(v['heads'])} | {v['first_half']:.3f} | {v['repeated_half']:.3f} |"
              for k, v in res["group_ablation"].items()]
    lines += ["", "### What layer 1 needs from each layer-0 head", "",
              "Repeat loss when a layer-0 head's output (minus its mean) is removed from layer 1's key, query or value",
              "input only (`use_split_qkv_input`; everything else untouched):", "",
              "| layer-0 head(s) | keys | queries | values |", "|---|---|---|---|"]
    lines += [f"| {lab} | {v['k']:.3f} | {v['q']:.3f} | {v['v']:.3f} |" for lab, v in res["composition"].items()]
    lines += [f"| {_list(res['roles'][k])} ({k}) | {v['k']:.3f} | {v['q']:.3f} | {v['v']:.3f} |"
              for k, v in res["group_composition"].items()]
    lines += ["", "### Attention by offset", "", "Mean attention from each query to the keys 0..5 positions back:", "",
              "| head | offsets |", "|---|---|"]
    lines += [f"| {lab} | {_offsets_text(p)} |" for lab, p in res["attention_by_offset"].items()]
    lines += [
        "",
        "### How heads are named",
        "",
        f"A layer-0 head whose removal from layer 1's keys, queries or values raises the repeat loss by more than"
        f" {MIN_EFFECT:.0%} of the gap between first-copy and repeat loss is a *previous-token head* when the keys or"
        " queries need it most and a *token head* when the values do. A layer-1 head with an induction score of at"
        f" least {INDUCTION_SCORE} is an *induction head*. Other heads are *unused* when mean-ablating them moves the"
        f" repeat loss by less than {MIN_EFFECT:.0%} of that gap.",
        "",
        "## Limits",
        "",
        "- Trained on random characters only: on natural text it behaves as a copying machine.",
        "- Characters outside the vocabulary become `<unk>`, which it never saw in training.",
        "- Context: 128 tokens.",
        "",
    ]
    return "\n".join(lines)


def write_card(out: Path, res: dict[str, Any], training: dict[str, Any]) -> None:
    card_json = out / "card.json"
    if "train_seconds" not in training and card_json.is_file():  # --eval-only keeps what training recorded
        old = json.loads(card_json.read_text()).get("training", {})
        training = {**training, **{k: old[k] for k in ("train_seconds", "pruning") if k in old}}
    data = {"model": "induction-2l", "reproduce": REPRODUCE, "training": training, **res}
    card_json.write_text(json.dumps(data, indent=1) + "\n")
    (out / "MODEL_CARD.md").write_text(card_markdown(res, training))
