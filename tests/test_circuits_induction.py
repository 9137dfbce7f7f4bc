"""Circuit discovery on the zoo model induction-2l: the model card's circuit is found, and it is faithful.

Prompts: ``[BOS] + R + R`` (clean) and ``[BOS] + R' + R`` (corrupted: the first copy replaced, so the
second half's tokens are the same and only the earlier copy differs); metric: loss on the second copy
(from its third token on, where the model's multi-token matching can work). The heads come from the model
card (``card.json``), which ``tests/test_model_card.py`` checks against the weights.
"""

from __future__ import annotations

import json

import pytest
import torch

import interp_widget as iw
from interp_widget import zoo
from interp_widget.analysis.circuits import CircuitGraph, circuit, faithfulness, faithfulness_curve
from interp_widget.analysis.metrics import loss
from interp_widget.models.model import Model

B, R = 8, 40
_CARD = json.loads((zoo.path("induction-2l") / "card.json").read_text())
(PREV,) = _CARD["heads"]["previous_token"]  # the card names one of each (L0H0, L1H3)
(INDUCTION,) = _CARD["heads"]["induction"]


@pytest.fixture(scope="module")
def model() -> Model:
    return iw.load("induction-2l")


@pytest.fixture(scope="module")
def prompts() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    first = torch.randint(2, 72, (B, R), generator=g)
    other = torch.randint(2, 72, (B, R), generator=g)
    bos = torch.zeros(B, 1, dtype=torch.long)
    return torch.cat([bos, first, first], 1), torch.cat([bos, other, first], 1)


METRIC = loss(positions=slice(R + 3, None))


@pytest.fixture(scope="module")
def acdc(model: Model, prompts: tuple[torch.Tensor, torch.Tensor]) -> CircuitGraph:
    clean, corrupted = prompts
    return circuit(model, clean, corrupted, METRIC, method="acdc", threshold=0.2)


def test_exact_pruning_finds_the_model_cards_circuit(acdc: CircuitGraph) -> None:
    names = set(acdc.edge_names())
    # the previous-token head -> induction head KEY edge, and the induction head -> logits edge
    assert f"{PREV}->{INDUCTION}.k" in names and f"{INDUCTION}->logits" in names
    # the previous-token head reaches the induction head through its keys, not its values; the values read the
    # embeddings; the previous-token head reads the clean first copy through its own values
    assert f"{PREV}->{INDUCTION}.v" not in names
    assert {f"input->{INDUCTION}.v", f"input->{PREV}.v"} <= names
    # nothing from a pruned head (they write exactly zero)
    assert not any(n.split("->")[0] in _CARD["roles"]["pruned"] for n in names)
    assert acdc.clean_metric < 0.4 < 4.0 < acdc.corrupted_metric


def test_at_most_10_percent_of_the_edges_recover_80_percent(model: Model, prompts: tuple[torch.Tensor, torch.Tensor],
                                                             acdc: CircuitGraph) -> None:
    """The issue's criterion, measured: the exact-pruned circuit keeps <= 8 of the 81 edges and recovers >= 80%."""
    clean, corrupted = prompts
    f = faithfulness(model, clean, corrupted, METRIC, acdc)
    assert f["n_edges"] == int(acdc.kept.sum())
    assert acdc.n_edges == 81 and f["n_edges"] <= 0.1 * acdc.n_edges, f  # measured: 4 edges
    assert f["fraction"] >= 0.8, f  # measured: 0.98
    assert acdc.faithfulness() == pytest.approx(f, abs=1e-6)  # the graph remembers its prompts and metric
    assert f["empty_metric"] == pytest.approx(acdc.corrupted_metric, abs=1e-4)
    # each kept edge changes the metric by more than the threshold when removed from the circuit
    assert acdc.effects is not None
    assert bool((acdc.effects[acdc.kept].abs() > acdc.meta["threshold"]).all())
    # and the circuit is not just "anything small": dropping any one of its edges loses most of the recovery
    for name in acdc.edge_names():
        rest = [n for n in acdc.edge_names() if n != name]
        assert faithfulness(model, clean, corrupted, METRIC, rest)["fraction"] < 0.5, name


def test_mean_ablation_needs_the_query_side_too(model: Model, prompts: tuple[torch.Tensor, torch.Tensor]) -> None:
    """Under mean ablation the second half's tokens are not kept for free: exact pruning then also keeps the
    previous-token head's edge into the induction head's QUERIES (the card's Q-composition), still within 10%."""
    clean, corrupted = prompts
    g = circuit(model, clean, corrupted, METRIC, method="acdc", threshold=0.2, ablation="mean")
    names = set(g.edge_names())
    assert {f"{PREV}->{INDUCTION}.k", f"{PREV}->{INDUCTION}.q", f"{INDUCTION}->logits"} <= names
    f = faithfulness(model, clean, corrupted, METRIC, g, ablation="mean")
    assert f["n_edges"] <= 0.1 * g.n_edges and f["fraction"] >= 0.8, f


def test_eap_ig_ranking_reaches_80_percent_within_10_percent(model: Model,
                                                             prompts: tuple[torch.Tensor, torch.Tensor]) -> None:
    clean, corrupted = prompts
    g = circuit(model, clean, corrupted, METRIC, method="eap-ig", ig_steps=5)
    top = set(g.top(4).edge_names())
    assert {f"{INDUCTION}->logits", f"{PREV}->{INDUCTION}.k"} <= top
    curve = faithfulness_curve(model, clean, corrupted, METRIC, g, [0, 2, 4, 8, 16, 81])
    assert curve.fractions[0] == pytest.approx(0.0, abs=1e-5) and curve.fractions[-1] == pytest.approx(1.0, abs=1e-5)
    n = curve.edges_for(0.8)
    assert n is not None and n <= 8, curve  # measured: the top 4 recover 98%
