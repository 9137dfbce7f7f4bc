"""Metrics: known answers on hand-made logits, TransformerLens's loss, and the per-run contract."""

from __future__ import annotations

import warnings

import _tiny_models as tiny
import pytest
import torch

from interp_widget.analysis.metrics import (
    CallableMetric,
    Metric,
    as_metric,
    kl_divergence,
    logit_diff,
    loss,
    probability,
)
from interp_widget.errors import InputMismatchError
from interp_widget.models.model import Model
from interp_widget.tracing.tl import TransformerLensBackend


@pytest.fixture(scope="module")
def logits() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randn(4, 5, 10, generator=g)


@pytest.fixture(scope="module")
def model() -> Model:
    return Model(TransformerLensBackend(tiny.tl_gpt2()))


def test_logit_diff(logits: torch.Tensor) -> None:
    v = logit_diff(3, 7)(logits)
    assert torch.allclose(v, logits[:, -1, 3] - logits[:, -1, 7])
    v2 = logit_diff(3, 7, position=2)(logits)
    assert torch.allclose(v2, logits[:, 2, 3] - logits[:, 2, 7])
    # one answer pair per prompt (2 prompts), tiled over the 4 rows of 2 runs
    per = logit_diff([1, 2], [3, 4])(logits)
    want = torch.stack([logits[0, -1, 1] - logits[0, -1, 3], logits[1, -1, 2] - logits[1, -1, 4],
                        logits[2, -1, 1] - logits[2, -1, 3], logits[3, -1, 2] - logits[3, -1, 4]])
    assert torch.allclose(per, want)
    assert torch.allclose(logit_diff([1, 2], [3, 4]).per_run(logits, 2), want.reshape(2, 2).mean(1))


def test_probability_and_log_probability(logits: torch.Tensor) -> None:
    p = probability(6)(logits)
    assert torch.allclose(p, logits[:, -1].softmax(-1)[:, 6])
    lp = probability(6, log=True)(logits)
    assert torch.allclose(lp, logits[:, -1].log_softmax(-1)[:, 6])


def test_kl_divergence(logits: torch.Tensor) -> None:
    ref = logits[:2]
    assert torch.allclose(kl_divergence(ref)(ref), torch.zeros(2), atol=1e-6)
    other = logits[2:]
    want = torch.nn.functional.kl_div(other[:, -1].log_softmax(-1), ref[:, -1].log_softmax(-1), log_target=True,
                                      reduction="none").sum(-1)
    assert torch.allclose(kl_divergence(ref)(other), want, atol=1e-6)
    all_pos = kl_divergence(ref, position=None)(other)
    want_all = torch.nn.functional.kl_div(other.log_softmax(-1), ref.log_softmax(-1), log_target=True,
                                          reduction="none").sum(-1).mean(-1)
    assert torch.allclose(all_pos, want_all, atol=1e-6)
    with pytest.raises(InputMismatchError, match="reference"):
        kl_divergence()(other)


def test_loss_matches_transformer_lens(model: Model) -> None:
    tokens = model.to_tokens([tiny.text(9, seed=1), tiny.text(9, seed=2)])
    ht = model.backend.model  # type: ignore[attr-defined]
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logits = ht(tokens)
        per_token = ht(tokens, return_type="loss", loss_per_token=True)
    assert torch.allclose(loss(targets=tokens)(logits), per_token.mean(-1), atol=1e-5)
    assert torch.allclose(loss(slice(5, None), targets=tokens)(logits), per_token[:, 5:].mean(-1), atol=1e-5)
    bound = loss().bind(model, tokens=tokens)
    assert torch.allclose(bound(logits), per_token.mean(-1), atol=1e-5)
    with pytest.raises(InputMismatchError, match="select nothing"):
        loss(positions=[9], targets=tokens)(logits)


def test_string_answers_are_tokenized(model: Model) -> None:
    m = logit_diff("a", "b").bind(model)
    ids = model.to_tokens("a b", prepend_bos=False)[0].tolist()
    assert m.answer == [ids[0]] and m.wrong == [ids[1]]  # type: ignore[attr-defined]
    with pytest.raises(InputMismatchError, match="exactly one token"):
        logit_diff("a b", "c").bind(model)
    with pytest.raises(InputMismatchError, match="bind the metric"):
        logit_diff("a", "b")(torch.zeros(1, 2, tiny.D_VOCAB))
    with pytest.raises(InputMismatchError, match="out of range"):
        logit_diff(10_000, 1).bind(model)


def test_callable_metrics(logits: torch.Tensor) -> None:
    def per_row(x: torch.Tensor) -> torch.Tensor:
        return x[:, -1, 0]

    def batch_mean(x: torch.Tensor) -> torch.Tensor:
        return x[:, -1, 0].mean()

    assert torch.allclose(as_metric(per_row)(logits), logits[:, -1, 0])
    # a batch-reducing function is evaluated on each run's rows, as TransformerLens does
    assert torch.allclose(as_metric(batch_mean).per_run(logits, 2), logits[:, -1, 0].reshape(2, 2).mean(1))
    assert torch.allclose(as_metric(batch_mean)(logits), logits[:, -1, 0])
    assert isinstance(as_metric(per_row), CallableMetric) and as_metric(per_row).name == "per_row"
    with pytest.raises(InputMismatchError, match="returned shape"):
        as_metric(lambda x: x[:, -1, :2])(logits)
    with pytest.raises(ValueError, match="unknown metric name"):
        as_metric("accuracy")
    with pytest.raises(TypeError):
        as_metric(3)  # type: ignore[arg-type]
    assert isinstance(as_metric("loss"), Metric)


def test_position_out_of_range(logits: torch.Tensor) -> None:
    with pytest.raises(InputMismatchError, match="position 7 is out of range for 5 tokens"):
        logit_diff(1, 2, position=7)(logits)
    with pytest.raises(InputMismatchError, match="cannot be split"):
        logit_diff(1, 2).per_run(logits, 3)
