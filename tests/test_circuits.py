"""Circuit discovery on tiny TransformerLens models: the edge graph, EAP against exact edge patching,
edge patching against path patching (through Model.run), faithfulness end points, exact pruning."""

from __future__ import annotations

import warnings

import _tiny_models as tiny
import pytest
import torch

from interp_widget.analysis.circuits import (
    CircuitGraph,
    EdgeIndex,
    EdgeRunner,
    circuit,
    edge_patch,
    faithfulness,
    faithfulness_curve,
)
from interp_widget.analysis.circuits.eap import eap_scores
from interp_widget.analysis.circuits.faithfulness import reference
from interp_widget.analysis.metrics import bind_metric, logit_diff
from interp_widget.analysis.path_patching import path_patch
from interp_widget.errors import BackendError
from interp_widget.models.model import Model
from interp_widget.tracing.nnsight_backend import NNsightBackend
from interp_widget.tracing.tl import TransformerLensBackend

ANS, WRONG = 5, 9


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    ra, rb = a.argsort().argsort().double(), b.argsort().argsort().double()
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra * rb).sum() / (ra.norm() * rb.norm()))


@pytest.fixture(scope="module")
def tl() -> Model:
    ht = tiny.tl_gpt2()
    return Model(TransformerLensBackend(ht), raw=ht)


@pytest.fixture(scope="module")
def gpt2_shaped() -> Model:
    """A small GPT-2-shaped model (LN, GELU MLPs) with TransformerLens's own seeded initialisation."""
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    cfg = HookedTransformerConfig(n_layers=3, d_model=64, n_heads=4, d_head=16, d_mlp=256, n_ctx=32, d_vocab=50,
                                  act_fn="gelu_new", normalization_type="LN", seed=0, model_name="gpt2-shaped")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ht = HookedTransformer(cfg).eval()
    return Model(TransformerLensBackend(ht), raw=ht)


def _pair(d_vocab: int, n: int = 4, pos: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    clean = torch.randint(0, d_vocab, (n, pos), generator=g)
    corrupted = clean.clone()
    corrupted[:, 3:6] = torch.randint(0, d_vocab, (n, 3), generator=g)
    return clean, corrupted


def test_edge_index_counts_and_graph_views(tl: Model) -> None:
    ix = EdgeIndex.build(n_layers=2, n_heads=4, has_mlp=True)
    # senders: input, L0 heads, MLP0, L1 heads, MLP1 = 11; head inputs of layer L see 1 + 5L senders
    assert len(ix.senders) == 11
    want = 3 * 4 * 1 + 1 * 5 + 3 * 4 * 6 + 1 * 10 + 11
    assert len(ix.edges) == want
    assert ix.find("L0H1->L1H2.k") == ix.edges.index((2, next(r for r, rec in enumerate(ix.receivers)
                                                                   if rec.name == "L1H2.k")))
    with pytest.raises(KeyError, match=r"no edge 'L1H0->L0H0\.q'"):
        ix.find("L1H0->L0H0.q")
    attn_only = EdgeIndex.build(n_layers=2, n_heads=4, has_mlp=False)
    assert len(attn_only.edges) == 12 * 1 + 12 * 5 + 9

    clean, corrupted = _pair(tiny.D_VOCAB)
    g = circuit(tl, clean, corrupted, logit_diff(ANS, WRONG), method="eap")
    assert g.n_edges == want and bool(g.kept.all())
    top = g.top(5)
    assert int(top.kept.sum()) == 5
    assert top.edges[0]["name"] == g.index.edge_name(int(g.ranking()[0]))
    thr = float(g.scores.abs().sort(descending=True).values[9])
    assert int(g.prune(thr).kept.sum()) == 10
    assert int(g.top(5).prune(thr).kept.sum()) == 5  # pruning narrows what is kept
    d = g.top(3).to_dict()
    assert len(d["nodes"]) == 12 and len(d["edges"]) == want and sum(e["kept"] for e in d["edges"]) == 3
    ends = {x for e in g.top(3).edges for x in (e["sender"], e["receiver"])}
    assert set(g.top(3).nodes_in_circuit()) == ends


def test_full_and_empty_circuits_give_clean_and_corrupted(tl: Model) -> None:
    clean, corrupted = _pair(tiny.D_VOCAB)
    m = logit_diff(ANS, WRONG)
    ht = tl.raw
    with torch.no_grad():
        want_clean = (ht(clean)[:, -1, ANS] - ht(clean)[:, -1, WRONG]).mean().item()
        want_corr = (ht(corrupted)[:, -1, ANS] - ht(corrupted)[:, -1, WRONG]).mean().item()
    g = circuit(tl, clean, corrupted, m, method="eap")
    full = faithfulness(tl, clean, corrupted, m, g)
    empty = faithfulness(tl, clean, corrupted, m, [])
    assert full["circuit_metric"] == pytest.approx(want_clean, abs=1e-4)
    assert empty["circuit_metric"] == pytest.approx(want_corr, abs=1e-4)
    assert full["fraction"] == pytest.approx(1.0, abs=1e-5) and empty["fraction"] == pytest.approx(0.0, abs=1e-5)
    # mean ablation of every edge: the logits read the mean (over prompts) of the final residual stream
    _, cache = ht.run_with_cache(clean)
    resid = cache[f"blocks.{ht.cfg.n_layers - 1}.hook_resid_post"].mean(0, keepdim=True).expand(clean.shape[0], -1, -1)
    with torch.no_grad():
        lg = ht.unembed(ht.ln_final(resid))
    want_mean = (lg[:, -1, ANS] - lg[:, -1, WRONG]).mean().item()
    assert faithfulness(tl, clean, corrupted, m, [], ablation="mean")["circuit_metric"] == pytest.approx(want_mean,
                                                                                                       abs=1e-4)
    # the split-input switches are restored after every run
    assert not ht.cfg.use_split_qkv_input and not ht.cfg.use_attn_result


def test_graph_carries_its_context_for_sub_circuit_faithfulness(tl: Model) -> None:
    clean, corrupted = _pair(tiny.D_VOCAB)
    m = logit_diff(ANS, WRONG)
    g = circuit(tl, clean, corrupted, m, method="eap", ablation="mean")
    assert g.context is not None and g.context.ablation == "mean"
    assert torch.equal(g.context.clean, clean) and torch.equal(g.context.corrupted, corrupted)
    top = g.top(6).prune(0.0)
    assert top.context is g.context  # carried by top() and prune()
    names = top.edge_names()
    want = faithfulness(tl, clean, corrupted, m, names, ablation="mean")
    assert top.faithfulness() == pytest.approx(want, abs=1e-6)  # default: the kept edges
    assert g.faithfulness(names[:2]) == pytest.approx(faithfulness(tl, clean, corrupted, m, names[:2],
                                                                   ablation="mean"), abs=1e-6)
    assert g.faithfulness()["fraction"] == pytest.approx(1.0, abs=1e-5)
    assert g.faithfulness([])["fraction"] == pytest.approx(0.0, abs=1e-5)
    with pytest.raises(KeyError, match="no edge 'L9H9->logits'"):
        g.faithfulness(["L9H9->logits"])
    bare = CircuitGraph(g.index, g.scores, g.kept, "eap", "m", 0.0, 0.0)
    with pytest.raises(ValueError, match="has no context"):
        bare.faithfulness()


def test_edge_patching_matches_path_patching(tl: Model) -> None:
    """Edge patching vs Wang et al.'s path patching (implemented on Model.run's interventions): for a
    layer-0 sender and a layer-1 receiver input, or the logits, the two are the same experiment."""
    clean, corrupted = _pair(tiny.D_VOCAB)
    m = logit_diff(ANS, WRONG)
    names = [f"L0H{h}->L1H{j}.{t}" for h in range(4) for j in (0, 3) for t in "qkv"]
    names += [f"L0H{h}->logits" for h in range(4)] + [f"L1H{h}->logits" for h in range(4)]
    names += ["MLP0->logits", "MLP1->logits"]
    ep = edge_patch(tl, clean, corrupted, m, names)
    clean_m = circuit(tl, clean, corrupted, m).clean_metric
    senders = [f"L{layer}H{h}" for layer in range(2) for h in range(4)]
    to_logits = path_patch(tl, clean, corrupted, m, "logits", [*senders, "MLP0", "MLP1"], direction="noise")
    flat = dict(zip([*senders, "MLP0", "MLP1"], to_logits.values.flatten().tolist(), strict=True))
    for s in [*senders, "MLP0", "MLP1"]:
        assert ep[f"{s}->logits"] == pytest.approx(clean_m - flat[s], abs=1e-4), s
    recv = [f"L1H{j}.{t}" for j in (0, 3) for t in "qkv"]
    pp = path_patch(tl, clean, corrupted, m, recv, [f"L0H{h}" for h in range(4)], direction="noise")
    for ri, r in enumerate(recv):
        for h in range(4):
            assert ep[f"L0H{h}->{r}"] == pytest.approx(clean_m - float(pp.values[ri, h]), abs=1e-4), (h, r)


def test_eap_scores_are_the_first_order_edge_effect(tl: Model) -> None:
    """A finite difference of edge patching (the edge moved a small step towards its corrupted value)
    agrees with the EAP score: gradients (autograd) vs forward patching (hooks) are separate code paths."""
    clean, corrupted = _pair(tiny.D_VOCAB)
    run = EdgeRunner(tl)
    _, clean_acts = run.capture(clean)
    _, corr_acts = run.capture(corrupted)
    m = bind_metric(logit_diff(ANS, WRONG), tl, tokens=clean)
    scores = eap_scores(run, clean, m, clean_acts, corr_acts)
    eps = 1e-3
    pick = scores.abs().argsort(descending=True)[:12].tolist()
    masks = torch.zeros(len(pick), run.n_edges, dtype=torch.bool)
    for i, e in enumerate(pick):
        masks[i, e] = True
    up = run.ablated_metric(clean, m, clean_acts + eps * (corr_acts - clean_acts), masks)
    down = run.ablated_metric(clean, m, clean_acts - eps * (corr_acts - clean_acts), masks)
    fd = -(up - down) / (2 * eps)
    assert torch.allclose(fd, scores[pick], rtol=0.05, atol=2e-3 * float(scores.abs().max())), (fd, scores[pick])


@pytest.mark.parametrize("method", ["eap", "eap-ig"])
def test_eap_ranks_edges_like_brute_force_edge_patching(gpt2_shaped: Model, method: str) -> None:
    clean, corrupted = _pair(50)
    m = logit_diff(ANS, WRONG)
    g = circuit(gpt2_shaped, clean, corrupted, m, method=method)
    sel = torch.randperm(g.n_edges, generator=torch.Generator().manual_seed(0))[:60].tolist()
    names = [g.index.edge_name(e) for e in sel]
    exact = edge_patch(gpt2_shaped, clean, corrupted, m, names)
    # brute force, one sequential run per edge, for the first few: the batched edge patching agrees
    run = EdgeRunner(gpt2_shaped)
    _, k_acts = run.capture(corrupted)
    bm = bind_metric(m, gpt2_shaped, tokens=clean)
    for e, name in zip(sel[:5], names[:5], strict=True):
        mask = torch.zeros(1, run.n_edges, dtype=torch.bool)
        mask[0, e] = True
        one = run.ablated_metric(clean, bm, k_acts, mask)
        assert g.clean_metric - float(one[0]) == pytest.approx(exact[name], abs=1e-4)
    ex = torch.tensor([exact[n] for n in names])
    rho = spearman(g.scores[sel], ex)
    assert rho >= 0.8, rho


def test_exact_pruning_keeps_only_edges_that_matter(tl: Model) -> None:
    clean, corrupted = _pair(tiny.D_VOCAB)
    m = logit_diff(ANS, WRONG)
    g = circuit(tl, clean, corrupted, m, method="acdc", threshold=0.05)
    thr = g.meta["threshold"]
    kept = g.edge_names()
    assert 0 < len(kept) < g.n_edges
    # measured again, in one batch: the circuit, and the circuit without each of its edges
    run = EdgeRunner(tl)
    _, c_acts = run.capture(clean)
    _, k_acts = run.capture(corrupted)
    ids = [run.ix.find(n) for n in kept]
    masks = torch.zeros(len(ids) + 1, run.n_edges, dtype=torch.bool)
    masks[:, ids] = True
    for i, e in enumerate(ids):
        masks[i + 1, e] = False
    vals = run.ablated_metric(clean, bind_metric(m, tl, tokens=clean), reference(c_acts, k_acts, "resample"), ~masks)
    base = float(vals[0])
    assert base == pytest.approx(faithfulness(tl, clean, corrupted, m, kept)["circuit_metric"], abs=1e-5)
    assert g.effects is not None
    for name, e, without in zip(kept, ids, vals[1:].tolist(), strict=True):
        assert abs(base - without) > thr, (name, base, without)
        assert float(g.effects[e]) == pytest.approx(base - without, abs=1e-4)
    # and the pruning did prune: the removed candidates moved the metric by little in total
    assert abs(base - g.clean_metric) < 0.5 * abs(g.clean_metric - g.corrupted_metric)


def test_refuses_other_backends_and_bad_arguments(tl: Model) -> None:
    bert = Model(NNsightBackend(tiny.hf_bert(), tokenizer=tiny.tokenizer()))
    clean, corrupted = _pair(tiny.D_VOCAB)
    with pytest.raises(BackendError, match=r"supports TransformerLens HookedTransformer models and Hugging Face "
                                           r"GPT-2 .* a 'bert' model"):
        circuit(bert, clean, corrupted, logit_diff(ANS, WRONG))
    with pytest.raises(ValueError, match="method must be 'eap', 'eap-ig' or 'acdc'"):
        circuit(tl, clean, corrupted, logit_diff(ANS, WRONG), method="magic")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ablation must be 'resample' or 'mean'"):
        faithfulness(tl, clean, corrupted, logit_diff(ANS, WRONG), [], ablation="zero")  # type: ignore[arg-type]


def test_hooks_and_switches_are_restored_after_an_error(tl: Model) -> None:
    clean, corrupted = _pair(tiny.D_VOCAB)
    ht = tl.raw

    def broken(logits: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("metric failed on purpose")

    with pytest.raises(RuntimeError, match="metric failed on purpose"):
        circuit(tl, clean, corrupted, broken, method="eap")
    assert not ht.cfg.use_split_qkv_input and not ht.cfg.use_attn_result and not ht.cfg.use_hook_mlp_in
    assert all(not hp._forward_hooks for hp in ht.hook_dict.values())
    # and the model still runs as before
    g = circuit(tl, clean, corrupted, logit_diff(ANS, WRONG), method="eap")
    assert g.n_edges == len(g.index.edges)


def test_progress_reports_and_stops_long_work(tl: Model) -> None:
    """``progress(done, total)`` climbs to its total for exact pruning, edge patching and the curve; raising from
    it stops the work (the sweeps' cancel protocol) with hooks removed, and a rerun gives the same circuit."""
    clean, corrupted = _pair(tiny.D_VOCAB)
    m = logit_diff(ANS, WRONG)
    seen: list[tuple[int, int]] = []
    g = circuit(tl, clean, corrupted, m, method="acdc", threshold=0.05, chunk=8,
                progress=lambda d, t: seen.append((d, t)))
    total = 1 + g.n_edges + 1  # attribution, every candidate, the verification
    assert seen[0] == (0, total) and seen[-1] == (total, total)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and len(seen) > 4

    class Stop(Exception):
        pass

    def stop_midway(done: int, total: int) -> None:
        if done > total // 2:
            raise Stop

    with pytest.raises(Stop):
        circuit(tl, clean, corrupted, m, method="acdc", threshold=0.05, chunk=8, progress=stop_midway)
    ht = tl.raw
    assert not ht.cfg.use_split_qkv_input and not ht.cfg.use_attn_result
    assert all(not hp._forward_hooks for hp in ht.hook_dict.values())
    again = circuit(tl, clean, corrupted, m, method="acdc", threshold=0.05, chunk=8)
    assert again.edge_names() == g.edge_names()

    rows: list[tuple[int, int]] = []
    exact = edge_patch(tl, clean, corrupted, m, max_bytes=1, progress=lambda d, t: rows.append((d, t)))
    assert rows[-1] == (len(exact), len(exact)) and len(rows) == len(exact)  # max_bytes=1: one edge per call
    pts: list[tuple[int, int]] = []
    faithfulness_curve(tl, clean, corrupted, m, g, [0, 5, g.n_edges], progress=lambda d, t: pts.append((d, t)))
    assert pts[-1] == (5, 5)
