"""TransformerLens vs nnsight on the same weights: every site, every intervention kind, gradients.

The source of truth is a tiny Hugging Face GPT-2 (random, seeded); the TransformerLens model gets its
weights through ``convert_gpt2_weights`` with all of TransformerLens's weight processing off.
"""

from __future__ import annotations

from collections.abc import Callable

import _tiny_models as tiny
import pytest
import torch

from interp_widget.models.model import Model
from interp_widget.tracing import interventions as iv
from interp_widget.tracing.base import Intervention, RunResult
from interp_widget.tracing.nnsight_backend import NNsightBackend
from interp_widget.tracing.sites import Site
from interp_widget.tracing.tl import TransformerLensBackend

ATOL = 1e-4


@pytest.fixture(scope="module")
def tl() -> Model:
    return Model(TransformerLensBackend(tiny.tl_gpt2()))


@pytest.fixture(scope="module")
def nn() -> Model:
    return Model(NNsightBackend(tiny.hf_gpt2(), tokenizer=tiny.tokenizer()))


@pytest.fixture(scope="module")
def tokens(tl: Model) -> torch.Tensor:
    return tl.to_tokens([tiny.text(12, seed=1), tiny.text(12, seed=2)])


def _tl_sites(model: Model) -> set[str]:
    return {i.site.hook_name for i in model.sites() if not i.site.is_module}


def _close(a: torch.Tensor, b: torch.Tensor, what: str) -> None:
    assert a.shape == b.shape, f"{what}: shapes {tuple(a.shape)} vs {tuple(b.shape)}"
    finite = torch.isfinite(a)
    assert torch.equal(finite, torch.isfinite(b)), f"{what}: masked entries differ"
    diff = (a[finite] - b[finite]).abs().max().item() if finite.any() else 0.0
    assert diff < ATOL, f"{what}: max difference {diff:.3g}"


def test_same_tokens_and_sites(tl: Model, nn: Model) -> None:
    texts = [tiny.text(5, seed=3), tiny.text(5, seed=4)]
    assert torch.equal(tl.to_tokens(texts), nn.to_tokens(texts))
    assert tl.to_str_tokens(texts[0]) == nn.to_str_tokens(texts[0])
    assert _tl_sites(tl) == _tl_sites(nn)
    assert len(_tl_sites(tl)) == 2 + 14 * tiny.N_LAYERS + 2  # embed, pos_embed, 14 per layer, ln_final, logits


def test_every_site_captures_the_same_tensor(tl: Model, nn: Model, tokens: torch.Tensor) -> None:
    names = sorted(_tl_sites(tl))
    a, b = tl.run(tokens, capture=names), nn.run(tokens, capture=names)
    assert set(a.cache) == set(b.cache) == set(names)
    for name in names:
        _close(a.cache[name], b.cache[name], name)
    assert a.logits is not None and b.logits is not None
    _close(a.logits, b.logits, "logits")
    # the pattern is a real, non-uniform attention pattern (the test would be weak otherwise)
    pattern = a.cache["blocks.0.attn.hook_pattern"]
    assert pattern.max() > 0.5 and torch.allclose(pattern.sum(-1), torch.ones(()), atol=1e-5)


def _clean(nn: Model, tokens: torch.Tensor) -> RunResult:
    return nn.run(tokens, capture=["blocks.1.hook_resid_pre", "blocks.0.attn.hook_z"])


CASES: dict[str, Callable[[RunResult], list[Intervention]]] = {
    "zero z L0H1 pos3": lambda c: [iv.zero("blocks.0.attn.hook_z", head=1, position=3)],
    "zero q L1H3": lambda c: [iv.zero("blocks.1.attn.hook_q", head=3)],
    "set k L0H0 pos -1": lambda c: [Intervention(Site("attn.hook_k", 0, 0, -1), "set", torch.ones(8))],
    "scale v L1 rows 0": lambda c: [iv.scale("blocks.1.attn.hook_v", 3.0, rows=[0])],
    "add scores L0H2": lambda c: [iv.add("blocks.0.attn.hook_attn_scores", torch.linspace(0, 2, 13), head=2)],
    "set pattern L1H2 q5": lambda c: [Intervention(Site("attn.hook_pattern", 1, 2, 5), "set",
                                                   torch.tensor([0.5, 0.5] + [0.0] * 11))],
    "scale result L1H0": lambda c: [iv.scale("blocks.1.attn.hook_result", 2.0, head=0)],
    "zero result L0H3 pos2": lambda c: [iv.zero("blocks.0.attn.hook_result", head=3, position=2)],
    "add attn_out L0": lambda c: [iv.add("blocks.0.hook_attn_out", torch.linspace(-1, 1, 32))],
    "add resid_mid L0": lambda c: [iv.add("blocks.0.hook_resid_mid", torch.linspace(-1, 1, 32), position=4)],
    "scale mlp_pre L1": lambda c: [iv.scale("blocks.1.mlp.hook_pre", 0.5)],
    "zero mlp_post L0 last": lambda c: [iv.zero("blocks.0.mlp.hook_post", position=-1)],
    "set mlp_out L1": lambda c: [iv.patch("blocks.1.hook_mlp_out", torch.zeros(1, 13, 32))],
    "zero embed pos2": lambda c: [iv.zero("hook_embed", position=2)],
    "scale pos_embed": lambda c: [iv.scale("hook_pos_embed", 0.0)],
    "patch resid_pre L1 row1": lambda c: [iv.patch("blocks.1.hook_resid_pre", c, rows=[1], source_rows=[0])],
    "patch z from clean": lambda c: [iv.patch("blocks.0.attn.hook_z", c, head=2)],
    "scale resid_post L0": lambda c: [iv.scale("blocks.0.hook_resid_post", 0.5, rows=slice(1, 2))],
    "scale ln_final": lambda c: [iv.scale("ln_final.hook_normalized", 0.5)],
    "add logits": lambda c: [iv.add("logits", 1.0, position=0)],
    "two at once": lambda c: [iv.zero("blocks.0.attn.hook_z", head=0), iv.scale("blocks.1.attn.hook_pattern", 0.5)],
}


@pytest.mark.parametrize("case", list(CASES))
def test_same_interventions_give_the_same_run(tl: Model, nn: Model, tokens: torch.Tensor, case: str) -> None:
    clean = _clean(nn, tokens)
    corrupted = torch.roll(tokens, 1, dims=1)
    ivs = CASES[case](clean)
    watch = ["blocks.0.attn.hook_pattern", "blocks.1.hook_resid_post", ivs[0].site.with_().hook_name]
    a, b = tl.run(corrupted, capture=watch, interventions=ivs), nn.run(corrupted, capture=watch, interventions=ivs)
    base = nn.run(corrupted)
    assert a.logits is not None and b.logits is not None and base.logits is not None
    _close(a.logits, b.logits, f"{case}: logits")
    assert (b.logits - base.logits).abs().max() > 1e-3, f"{case}: the intervention changed nothing"
    for name in watch:
        _close(a.cache[name], b.cache[name], f"{case}: {name}")


def test_zero_ablating_one_head_at_one_position(tl: Model, nn: Model, tokens: torch.Tensor) -> None:
    """Zero-ablate head 1 of layer 0 at position 3: the same downstream logits in both backends."""
    ablate = [iv.zero("blocks.0.attn.hook_z", head=1, position=3)]
    a, b = tl.run(tokens, interventions=ablate), nn.run(tokens, interventions=ablate)
    assert a.logits is not None and b.logits is not None
    _close(a.logits, b.logits, "logits")
    clean = tl.run(tokens)
    assert clean.logits is not None
    changed = (a.logits - clean.logits).abs().amax(dim=(0, 2))
    assert torch.all(changed[:3] < 1e-6) and torch.all(changed[3:] > 1e-4)  # causal: only positions >= 3 move


def test_gradients_match(tl: Model, nn: Model, tokens: torch.Tensor) -> None:
    sites = ["hook_embed", "blocks.0.hook_resid_pre", "blocks.0.attn.hook_q", "blocks.0.attn.hook_attn_scores",
             "blocks.0.attn.hook_pattern", "blocks.0.attn.hook_z", "blocks.0.attn.hook_result",
             "blocks.0.hook_resid_mid", "blocks.1.mlp.hook_pre", "blocks.1.hook_mlp_out", "ln_final.hook_normalized",
             "logits"]

    def metric(logits: torch.Tensor) -> torch.Tensor:
        return logits[:, -1, 5].sum() - logits[:, -1, 7].sum()

    ivs = [iv.scale("blocks.0.attn.hook_v", 0.5, head=1)]
    a = tl.run(tokens, grads=sites, metric=metric, interventions=ivs)
    b = nn.run(tokens, grads=sites, metric=metric, interventions=ivs)
    assert a.metric is not None and b.metric is not None and abs(a.metric - b.metric) < ATOL
    for name in sites:
        ga, gb = a.grads[name], b.grads[name]
        ga, gb = ga.masked_fill(~torch.isfinite(ga), 0), gb.masked_fill(~torch.isfinite(gb), 0)
        assert ga.abs().max() > 0, name
        _close(ga, gb, f"grad {name}")


@pytest.mark.parametrize("which", ["tl", "nn"])
def test_batched_rows_equal_single_runs(tl: Model, nn: Model, which: str) -> None:
    """A sweep with a different head ablated in each batch row equals one run per head."""
    model = tl if which == "tl" else nn
    prompt = model.to_tokens(tiny.text(10, seed=5))
    batch = prompt.repeat(tiny.N_HEADS, 1)
    sweep = model.run(batch, interventions=[iv.zero("blocks.0.attn.hook_z", head=h, rows=[h])
                                            for h in range(tiny.N_HEADS)])
    assert sweep.logits is not None
    for h in range(tiny.N_HEADS):
        single = model.run(prompt, interventions=[iv.zero("blocks.0.attn.hook_z", head=h)])
        assert single.logits is not None
        _close(sweep.logits[h : h + 1], single.logits, f"head {h}")
