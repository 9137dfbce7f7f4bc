"""Linear probes: a planted linearly decodable property, checked against closed-form least squares in numpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interp_widget.analysis.probes import ProbeResult, least_squares_probe, train_probes
from interp_widget.errors import InputMismatchError
from interp_widget.models.model import Model

PLANTED = "blocks.1.hook_resid_post"


def _planted(tl: Model, n: int = 240) -> tuple[torch.Tensor, torch.Tensor]:
    """Random prompts labelled by the sign of a fixed direction in the last token's layer-1 residual stream."""
    tokens = torch.randint(2, 50, (n, 8), generator=torch.Generator().manual_seed(0))
    resid = tl.run(tokens, capture=[PLANTED])[PLANTED][:, -1]
    v = torch.randn(resid.shape[-1], generator=torch.Generator().manual_seed(1))
    proj = resid @ v
    return tokens, (proj > proj.median()).long()


def test_least_squares_probe_is_the_normal_equations() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(50, 6, generator=g), torch.ones(50, 1)], 1)
    y = torch.randint(0, 3, (50,), generator=g)
    w = least_squares_probe(x, y, 3, l2=0.0)
    want, *_ = np.linalg.lstsq(x.double().numpy(), np.eye(3)[y.numpy()], rcond=None)
    np.testing.assert_allclose(w.numpy(), want, rtol=1e-4, atol=1e-5)


def test_planted_property_is_found_where_it_was_planted(tl: Model) -> None:
    tokens, labels = _planted(tl)
    res = train_probes(tl, tokens, labels, method="least_squares", l2=1e-3, progress=False)
    assert isinstance(res, ProbeResult)
    assert res.sites == ["blocks.0.hook_resid_pre[pos=-1]", "blocks.0.hook_resid_post[pos=-1]",
                         "blocks.1.hook_resid_post[pos=-1]"]
    assert res.best.startswith(PLANTED)
    assert res.accuracy[2] >= 0.85 and res.accuracy[2] > res.accuracy[0] + 0.2
    assert res.control_accuracy[2] < 0.75  # shuffled labels: near chance
    assert res.chance == pytest.approx(0.5, abs=0.15)
    # brute force: the same split, standardisation and ridge solved by numpy, accuracy by a loop
    test = set(res.test_sequences)
    cache = tl.run(tokens, capture=["blocks.0.hook_resid_pre", "blocks.0.hook_resid_post", PLANTED])
    for k, hook in enumerate(["blocks.0.hook_resid_pre", "blocks.0.hook_resid_post", PLANTED]):
        x = cache[hook][:, -1].double().numpy()
        tr = np.array([i not in test for i in range(len(tokens))])
        mean, std = x[tr].mean(0), np.maximum(x[tr].std(0, ddof=1), 1e-6)
        xs = np.concatenate([(x - mean) / std, np.ones((len(x), 1))], 1)
        ridge = np.sqrt(1e-3) * np.eye(xs.shape[1])[:-1]
        a = np.concatenate([xs[tr], ridge])
        b = np.concatenate([np.eye(2)[labels.numpy()[tr]], np.zeros((ridge.shape[0], 2))])
        w, *_ = np.linalg.lstsq(a, b, rcond=None)
        pred = (xs[~tr] @ w).argmax(1)
        correct = sum(int(p == t) for p, t in zip(pred, labels.numpy()[~tr], strict=True))
        assert res.accuracy[k] == pytest.approx(correct / (~tr).sum(), abs=1e-6), hook  # same count of correct predictions


def test_logistic_probe_and_control_task(tl: Model) -> None:
    tokens, labels = _planted(tl)
    res = train_probes(tl, tokens, labels, progress=False)
    assert res.method == "logistic" and res.accuracy[2] >= 0.85 and res.selectivity[2] > 0.25
    # per-token labels (token parity): readable at the embeddings, and a control task that memorises
    # token identity reads it too, so selectivity is low (Hewitt & Liang)
    parity = tokens % 2
    ctl = train_probes(tl, tokens, parity, sites=["blocks.0.hook_resid_pre"], control="control_task",
                       progress=False)
    assert ctl.accuracy[0] > 0.7 and ctl.control_accuracy[0] > 0.7 and abs(ctl.selectivity[0]) < 0.3
    with pytest.raises(InputMismatchError, match="labels"):
        train_probes(tl, tokens, labels[:5], progress=False)
    with pytest.raises(InputMismatchError, match="single class"):
        train_probes(tl, tokens, torch.zeros(len(tokens), dtype=torch.long), progress=False)
