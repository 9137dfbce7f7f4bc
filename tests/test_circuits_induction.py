"""Circuit discovery on the zoo model induction-2l: the model card's circuit is found, and it is faithful.

Prompts: ``[BOS] + R + R`` (clean) and ``[BOS] + R' + R`` (corrupted: the first copy replaced, so the
second half's tokens are the same and only the earlier copy differs); metric: loss on the second copy
(from its third token on, where the model's two-token matching can work).
"""

from __future__ import annotations

import pytest
import torch

import interp_widget as iw
from interp_widget.analysis.circuits import CircuitGraph, circuit, faithfulness, faithfulness_curve
from interp_widget.analysis.metrics import loss
from interp_widget.models.model import Model

B, R = 8, 40
PREV = ("L0H0", "L0H2")
INDUCTION = ("L1H1", "L1H2", "L1H3")


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
    # every previous-token head -> induction head KEY edge, and every induction head -> logits edge
    for p in PREV:
        for h in INDUCTION:
            assert f"{p}->{h}.k" in names
    for h in INDUCTION:
        assert f"{h}->logits" in names
    # the previous-token heads reach the induction heads through their keys, not their values
    assert not any(f"{p}->{h}.v" in names for p in PREV for h in INDUCTION)
    assert acdc.clean_metric < 0.3 < 4.0 < acdc.corrupted_metric


def test_the_pruned_circuit_is_faithful_with_few_edges(model: Model, prompts: tuple[torch.Tensor, torch.Tensor],
                                                      acdc: CircuitGraph) -> None:
    clean, corrupted = prompts
    f = faithfulness(model, clean, corrupted, METRIC, acdc)
    assert f["n_edges"] == int(acdc.kept.sum())
    assert f["fraction"] >= 0.8, f
    # 81 edges in all: the circuit keeps under 30% of them (measured: 23 edges, 93% recovered)
    assert acdc.n_edges == 81 and f["n_edges"] <= 0.3 * acdc.n_edges, f
    assert acdc.faithfulness() == pytest.approx(f, abs=1e-6)  # the graph remembers its prompts and metric
    assert f["empty_metric"] == pytest.approx(acdc.corrupted_metric, abs=1e-4)
    # each kept edge changes the metric by more than the threshold when removed from the circuit
    assert acdc.effects is not None
    assert bool((acdc.effects[acdc.kept].abs() > acdc.meta["threshold"]).all())


def test_eap_ig_ranking_reaches_80_percent(model: Model, prompts: tuple[torch.Tensor, torch.Tensor]) -> None:
    clean, corrupted = prompts
    g = circuit(model, clean, corrupted, METRIC, method="eap-ig", ig_steps=5)
    top = set(g.top(12).edge_names())
    assert {f"{h}->logits" for h in INDUCTION} <= top
    assert any(f"{p}->{h}.k" in top for p in PREV for h in INDUCTION)
    curve = faithfulness_curve(model, clean, corrupted, METRIC, g, [0, 8, 16, 24, 32, 48, 81])
    assert curve.fractions[0] == pytest.approx(0.0, abs=1e-5) and curve.fractions[-1] == pytest.approx(1.0, abs=1e-5)
    n = curve.edges_for(0.8)
    assert n is not None and n <= 32, curve


def test_one_induction_head_cannot_carry_the_behaviour(model: Model, prompts: tuple[torch.Tensor, torch.Tensor],
                                                        acdc: CircuitGraph) -> None:
    """Why the issue's 10% target (8 of 81 edges recovering 80%) is out of reach on this model.

    One induction head's complete path takes 6-7 edges (input -> L0H0.v and L0H2.v, both previous-token
    heads into its keys, a value source, its logits edge), so 8 edges hold at most one induction head.
    Keeping *every* edge except two induction heads' logit edges recovers well under 80%, for either
    ablation: one head is not enough, whatever else the circuit holds."""
    clean, corrupted = prompts
    everything = [acdc.index.edge_name(e) for e in range(acdc.n_edges)]
    for keep in INDUCTION:
        drop = {f"{h}->logits" for h in INDUCTION if h != keep}
        for how in ("resample", "mean"):
            f = faithfulness(model, clean, corrupted, METRIC, [n for n in everything if n not in drop], ablation=how)
            assert f["n_edges"] == 79
            assert f["fraction"] < 0.8, (keep, how, f)
