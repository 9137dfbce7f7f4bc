"""The neuron view: top examples and histograms against a brute-force full scan, logit effects against
TransformerLens's own LayerNorm folding, on the tiny GPT-2 (both backends)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch

from interp_widget.analysis.neurons import (
    activation_histogram,
    logit_effects,
    neuron,
    scan,
    top_examples,
    unit,
)
from interp_widget.errors import BackendError, InputMismatchError, SiteIndexError, UnknownSiteError
from interp_widget.models.model import Model

pytestmark = pytest.mark.filterwarnings("ignore:HookedTransformer is deprecated:DeprecationWarning")

SITE = "blocks.1.mlp.hook_post"


@pytest.fixture(scope="module")
def data() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randint(2, 50, (37, 12), generator=g)  # 37 sequences: the last batch is partial


def full_values(model: Model, site: str, tokens: torch.Tensor, read: Any) -> torch.Tensor:
    """Brute force: the whole dataset in one run, ``[n, pos]`` values of the unit."""
    with torch.no_grad():
        return read(model.run(tokens, capture=[site]).cache[site].float())


def brute_top(vals: torch.Tensor, k: int, per_sequence: bool) -> list[tuple[float, int, int]]:
    """(value, sequence, position) of the k best, best first; ties to the earlier sequence / position."""
    cands = []
    for s in range(vals.shape[0]):
        row = vals[s].tolist()
        if per_sequence:
            best = max(row)
            cands.append((best, s, row.index(best)))
        else:
            cands.extend((v, s, p) for p, v in enumerate(row))
    cands.sort(key=lambda c: (-c[0], c[1], c[2]))
    return cands[:k]


@pytest.mark.parametrize("per_sequence", [True, False])
def test_top_examples_match_a_full_scan(tl: Model, data: torch.Tensor, per_sequence: bool) -> None:
    idx = 7
    top = top_examples(tl, f"{SITE}:{idx}", data, k=6, window=(3, 2), per_sequence=per_sequence,
                       batch_size=5, progress=None)
    vals = full_values(tl, SITE, data, lambda a: a[..., idx])
    want = brute_top(vals, 6, per_sequence)
    assert top.sequence.tolist() == [s for _, s, _ in want]
    assert top.position.tolist() == [p for _, _, p in want]
    torch.testing.assert_close(top.values, torch.tensor([v for v, _, _ in want]), rtol=1e-5, atol=1e-6)
    assert top.n_sequences == 37 and top.n_tokens == 37 * 12
    for i, (_, s, p) in enumerate(want):
        start = max(0, p - 3)
        stop = min(12, start + 6)
        n_real = stop - start
        assert int(top.start[i]) == start and int(top.focus[i]) == p - start
        assert top.tokens[i, :n_real].tolist() == data[s, start:stop].tolist()
        assert (top.tokens[i, n_real:] == -1).all() and top.acts[i, n_real:].isnan().all()
        torch.testing.assert_close(top.acts[i, :n_real], vals[s, start:stop], rtol=1e-5, atol=1e-6)
        assert top.str_tokens[i] == tl.to_str_tokens(data[s, start:stop])
    assert "TopExamples" in repr(top) and "[[" in repr(top)


def test_several_units_in_one_pass_and_directions(tl: Model, data: torch.Tensor) -> None:
    g = torch.Generator().manual_seed(1)
    dirs = torch.randn(3, 32, generator=g)
    units = [unit(tl, "blocks.0.hook_resid_mid", direction=d, name=f"dir{i}") for i, d in enumerate(dirs)]
    res = scan(tl, units, data, k=4, batch_size=8, progress=None)
    for (top, hist), d in zip(res, dirs, strict=True):
        vals = full_values(tl, "blocks.0.hook_resid_mid", data, lambda a, d=d: a @ d)
        want = brute_top(vals, 4, True)
        assert top.sequence.tolist() == [s for _, s, _ in want]
        torch.testing.assert_close(top.values, torch.tensor([v for v, _, _ in want]), rtol=1e-4, atol=1e-5)
        assert hist.exact and hist.n_total == vals.numel()
        assert hist.mean == pytest.approx(float(vals.double().mean()), rel=1e-5, abs=1e-6)
    assert res[1][0].unit.label == "dir1"


def test_histogram_is_exact_then_sampled(tl: Model, data: torch.Tensor) -> None:
    spec = f"{SITE}:3"
    vals = full_values(tl, SITE, data, lambda a: a[..., 3]).flatten()
    hist = activation_histogram(tl, spec, data, bins=10, batch_size=6, progress=None)
    edges = torch.linspace(float(vals.min()), float(vals.max()), 11)
    want = torch.bincount(torch.bucketize(vals, edges[1:-1], right=True), minlength=10)
    assert hist.exact and hist.n_values == vals.numel() == int(hist.counts.sum())
    assert hist.counts.tolist() == want.tolist()
    torch.testing.assert_close(hist.edges, edges)
    assert hist.frac_positive == pytest.approx(float((vals > 0).float().mean()))
    small = activation_histogram(tl, spec, data, bins=10, batch_size=6, max_values=50, progress=None)
    assert not small.exact and small.n_values == 50 == int(small.counts.sum()) and small.n_total == vals.numel()
    assert (small.min, small.max) == (pytest.approx(float(vals.min())), pytest.approx(float(vals.max())))
    assert small.mean == pytest.approx(float(vals.double().mean()), rel=1e-5)


def test_progress_is_reported_and_raising_cancels(tl: Model, data: torch.Tensor) -> None:
    calls: list[tuple[int, int]] = []
    top_examples(tl, f"{SITE}:0", data, batch_size=10, progress=lambda d, t: calls.append((d, t)))
    assert calls[0] == (0, 37) and calls[-1] == (37, 37) and len(calls) == 5

    def stop(done: int, total: int) -> None:
        if done >= 10:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        top_examples(tl, f"{SITE}:0", data, batch_size=10, progress=stop)


def test_text_datasets_of_different_lengths(tl: Model) -> None:
    texts = ["a b c d e", "f g", "h i j k l m n", "b c"]
    top = top_examples(tl, f"{SITE}:5", texts, k=4, batch_size=3, progress=None)
    for i in range(4):
        s = int(top.sequence[i])
        toks = tl.to_tokens(texts[s])[0]
        vals = full_values(tl, SITE, toks[None], lambda a: a[..., 5])[0]
        assert float(top.values[i]) == pytest.approx(float(vals.max()), rel=1e-5)


def test_nnsight_backend_gives_the_same_examples(tl: Model, nn: Model, data: torch.Tensor) -> None:
    a = top_examples(tl, f"{SITE}:9", data, k=5, batch_size=8, progress=None)
    b = top_examples(nn, f"{SITE}:9", data, k=5, batch_size=8, progress=None)
    assert a.sequence.tolist() == b.sequence.tolist() and a.position.tolist() == b.position.tolist()
    torch.testing.assert_close(a.acts, b.acts, rtol=1e-4, atol=1e-5, equal_nan=True)
    with pytest.raises(BackendError, match="TransformerLens model"):
        logit_effects(nn, f"{SITE}:9")


def folded_reference(ht: Any) -> Any:
    """TransformerLens's own folding: ln_final's weight into W_U, W_out and W_U centred."""
    ref = copy.deepcopy(ht)
    ref.process_weights_(fold_ln=True, center_writing_weights=True, center_unembed=True)
    return ref


def test_logit_effects_match_transformer_lens_folding(tl: Model, ht: Any) -> None:
    ref = folded_reference(ht)
    eff = logit_effects(tl, f"{SITE}:11", k=5)
    want = ref.blocks[1].mlp.W_out[11] @ ref.W_U
    want = want - want.mean()
    torch.testing.assert_close(eff.effect, want.detach(), rtol=1e-4, atol=1e-5)
    assert eff.top_ids.tolist() == torch.topk(want, 5).indices.tolist()
    assert eff.bottom_ids.tolist() == torch.topk(-want, 5).indices.tolist()
    assert eff.top_tokens == [tl.to_str_tokens(torch.tensor([i]))[0] for i in eff.top_ids.tolist()]
    assert (eff.bottom_values <= 0).all() and (eff.top_values >= 0).all()
    # a direction in neuron space writes its image through W_out; one at the residual writes itself
    d = torch.randn(128, generator=torch.Generator().manual_seed(2))
    eff_d = logit_effects(tl, unit(tl, SITE, direction=d))
    want_d = (d @ ref.blocks[1].mlp.W_out) @ ref.W_U
    torch.testing.assert_close(eff_d.effect, (want_d - want_d.mean()).detach(), rtol=1e-4, atol=1e-4)
    r = torch.randn(32, generator=torch.Generator().manual_seed(3))
    eff_r = logit_effects(tl, unit(tl, "blocks.1.hook_resid_post", direction=r))
    centred = r - r.mean()
    want_r = centred @ ref.W_U
    torch.testing.assert_close(eff_r.effect, (want_r - want_r.mean()).detach(), rtol=1e-4, atol=1e-4)


def test_neuron_view_bundles_everything(tl: Model, data: torch.Tensor) -> None:
    view = neuron(tl, f"{SITE}:2", data, k=3, progress=None)
    assert len(view.top) == 3 and view.histogram.n_total == data.numel() and view.logits is not None
    assert view.logits.unit is view.unit
    pre = neuron(tl, "blocks.1.mlp.hook_pre:2", data, k=3, progress=None)
    assert pre.logits is None  # no linear path from a pre-activation to the logits
    assert "NeuronView" in repr(view)


def test_bad_units_are_named(tl: Model) -> None:
    with pytest.raises(SiteIndexError, match=r"neuron 128 is out of range: blocks.1.mlp.hook_post has 128 units \(0..127\)"):
        unit(tl, f"{SITE}:128")
    with pytest.raises(InputMismatchError, match="cannot read a neuron index"):
        unit(tl, f"{SITE}:x")
    with pytest.raises(InputMismatchError, match=r"shape \[128\]"):
        unit(tl, SITE, direction=torch.ones(5))
    with pytest.raises(InputMismatchError, match="either a neuron index or a direction"):
        unit(tl, SITE)
    with pytest.raises(SiteIndexError, match="layer 7 is out of range"):
        unit(tl, "blocks.7.mlp.hook_post:1")
    with pytest.raises(UnknownSiteError):
        unit(tl, "blocks.0.mlp.hook_nope:1")
    with pytest.raises(InputMismatchError, match="no linear path to the logits"):
        logit_effects(tl, "blocks.1.mlp.hook_pre:1")
    with pytest.raises(InputMismatchError, match="share a site"):
        scan(tl, [f"{SITE}:1", "blocks.0.mlp.hook_post:1"], torch.zeros(1, 3, dtype=torch.long))
