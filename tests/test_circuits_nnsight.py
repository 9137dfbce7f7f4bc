"""Circuit discovery through nnsight on Hugging Face GPT-2: the same numbers as on TransformerLens.

``tl`` and ``nn`` (tests/conftest.py) hold the same tiny GPT-2 weights, as a ``HookedTransformer`` and as
a ``GPT2LMHeadModel`` wrapped in nnsight. The nnsight adapter recomputes ``c_attn`` per head from edited
copies of the residual stream, so every score, patched metric and faithfulness must agree."""

from __future__ import annotations

import _tiny_models as tiny
import pytest
import torch

from interp_widget.analysis.circuits import circuit, edge_patch, faithfulness
from interp_widget.analysis.metrics import logit_diff, loss
from interp_widget.errors import BackendError
from interp_widget.models.model import Model
from interp_widget.tracing.nnsight_backend import NNsightBackend

ANS, WRONG = 5, 9


def _pair() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    clean = torch.randint(0, tiny.D_VOCAB, (3, 10), generator=g)
    corrupted = clean.clone()
    corrupted[:, 2:5] = torch.randint(0, tiny.D_VOCAB, (3, 3), generator=g)
    return clean, corrupted


@pytest.mark.parametrize("method", ["eap", "eap-ig"])
def test_attribution_scores_match_transformer_lens(tl: Model, nn: Model, method: str) -> None:
    clean, corrupted = _pair()
    m = logit_diff(ANS, WRONG)
    a = circuit(tl, clean, corrupted, m, method=method, ig_steps=3)
    b = circuit(nn, clean, corrupted, m, method=method, ig_steps=3)
    assert a.n_edges == b.n_edges == 3 * 4 + 5 + 3 * 4 * 6 + 10 + 11
    assert b.clean_metric == pytest.approx(a.clean_metric, abs=1e-4)
    assert b.corrupted_metric == pytest.approx(a.corrupted_metric, abs=1e-4)
    assert float(a.scores.abs().max()) > 1e-2  # not trivially zero
    assert torch.allclose(a.scores, b.scores, atol=1e-4), (a.scores - b.scores).abs().max()
    assert b.meta["forward_passes"] == a.meta["forward_passes"]


def test_edge_patching_and_faithfulness_match_transformer_lens(tl: Model, nn: Model) -> None:
    clean, corrupted = _pair()
    m = loss(positions=slice(4, None))
    a = circuit(tl, clean, corrupted, m, method="eap")
    names = [a.index.edge_name(int(e)) for e in a.ranking()[:20]]
    ea = edge_patch(tl, clean, corrupted, m, names)
    eb = edge_patch(nn, clean, corrupted, m, names)
    assert max(abs(ea[n]) for n in names) > 1e-2
    for n in names:
        assert eb[n] == pytest.approx(ea[n], abs=1e-4), n
    for how in ("resample", "mean"):
        fa = faithfulness(tl, clean, corrupted, m, names[:8], ablation=how)
        fb = faithfulness(nn, clean, corrupted, m, names[:8], ablation=how)
        for k in ("circuit_metric", "clean_metric", "empty_metric"):
            assert fb[k] == pytest.approx(fa[k], abs=1e-4), (how, k)


def test_exact_pruning_and_graph_context_through_nnsight(tl: Model, nn: Model) -> None:
    clean, corrupted = _pair()
    m = logit_diff(ANS, WRONG)
    a = circuit(tl, clean, corrupted, m, method="acdc", threshold=0.05, max_candidates=40)
    b = circuit(nn, clean, corrupted, m, method="acdc", threshold=0.05, max_candidates=40)
    assert b.edge_names() == a.edge_names() and 0 < len(b.edge_names()) < b.n_edges
    assert b.faithfulness()["fraction"] == pytest.approx(a.faithfulness()["fraction"], abs=1e-4)


def test_remote_models_are_refused_with_the_reason() -> None:
    backend = NNsightBackend(tiny.hf_gpt2(), tokenizer=tiny.tokenizer())
    backend.remote = True  # type: ignore[attr-defined]  # what RemoteNNsightBackend sets
    clean, corrupted = _pair()
    with pytest.raises(BackendError, match=r"runs locally only: .* runs on NDIF"):
        circuit(Model(backend), clean, corrupted, logit_diff(ANS, WRONG))
