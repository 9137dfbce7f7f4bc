"""The circuit graph widget: the wire form of a CircuitGraph (checked edge by edge against the graph's own
names), pruning as the view does it (against CircuitGraph.prune / top), the commands (faithfulness against
the analysis function, a head's attention against TransformerLens's cache, error replies), traits, the
static snapshot and the notebook display of a CircuitGraph."""

from __future__ import annotations

import json
from typing import Any

import _tiny_models as tiny
import numpy as np
import pytest
import torch

import interp_widget as iw
from interp_widget.analysis.circuits import CircuitGraph, EdgeIndex, circuit, faithfulness
from interp_widget.analysis.metrics import logit_diff
from interp_widget.models.model import Model
from interp_widget.schema import decode, unpack
from interp_widget.schema.circuit import TARGETS, CircuitState
from interp_widget.tracing.tl import TransformerLensBackend
from interp_widget.widgets.attention import SNAPSHOT_MIME
from interp_widget.widgets.circuit import CircuitWidget, circuit_mimebundle, circuit_widget, graph_data

ANS, WRONG = 5, 9


def gpt2_small_graph(seed: int = 0, kept_fraction: float = 1.0) -> CircuitGraph:
    """GPT-2-small's edge graph (12 layers x 12 heads, MLPs) with seeded random scores."""
    ix = EdgeIndex.build(12, 12, True)
    g = torch.Generator().manual_seed(seed)
    n = len(ix.edges)
    scores = torch.randn(n, generator=g) * torch.rand(n, generator=g) ** 4
    kept = torch.rand(n, generator=g) < kept_fraction
    return CircuitGraph(ix, scores, kept, "eap", "logit diff", 2.0, 0.5)


@pytest.fixture(scope="module")
def big() -> CircuitGraph:
    return gpt2_small_graph()


@pytest.fixture(scope="module")
def tl() -> Model:
    ht = tiny.tl_gpt2()
    return Model(TransformerLensBackend(ht), raw=ht)


@pytest.fixture(scope="module")
def prompts() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    clean = torch.randint(0, tiny.D_VOCAB, (3, 10), generator=g)
    corrupted = clean.clone()
    corrupted[:, 3:6] = torch.randint(0, tiny.D_VOCAB, (3, 3), generator=g)
    return clean, corrupted


@pytest.fixture(scope="module")
def real(tl: Model, prompts: tuple[torch.Tensor, torch.Tensor]) -> CircuitGraph:
    clean, corrupted = prompts
    return circuit(tl, clean, corrupted, logit_diff(ANS, WRONG), method="eap")


def command(w: CircuitWidget, name: str, msg: Any) -> dict[str, Any]:
    """Send an anywidget command as the front end does; return the unpacked reply."""
    sent: list[tuple[dict[str, Any], list[bytes]]] = []
    w.send = lambda content, buffers=None: sent.append((content, list(buffers or [])))  # type: ignore[method-assign]
    w._handle_custom_msg({"kind": "anywidget-command", "id": f"req-{name}", "name": name, "msg": msg}, [])
    replies = [c for c in sent if c[0].get("kind") == "anywidget-command-response"]
    assert len(replies) == 1, sent
    content, buffers = replies[0]
    json.dumps(content)  # nothing but JSON besides the buffers
    env = content["response"]
    return unpack(env["reply"], env["buffer_paths"], buffers)


# --- the wire form ------------------------------------------------------------------------------------------
def test_a_gpt2_small_graph_travels_as_binary_edge_arrays(big: CircuitGraph) -> None:
    data = graph_data(big)
    assert len(data.nodes) == 158 and data.n_edges_total == big.n_edges == 32491
    snd, rcv, tgt, sc = (decode(p) for p in (data.senders, data.receivers, data.targets, data.scores))
    assert (data.senders.dtype, data.receivers.dtype, data.targets.dtype, data.scores.dtype) == (
        "uint16", "uint16", "uint8", "float32")
    assert len(sc) == 32491
    assert np.all(np.diff(np.abs(sc)) <= 0)  # strongest first
    # every shipped edge is the graph's edge with that score (brute force over the names)
    by_name = {big.index.edge_name(e): float(big.scores[e]) for e in range(big.n_edges)}
    shipped = {}
    for p in range(len(sc)):
        t = TARGETS[int(tgt[p])]
        name = f"{data.nodes[int(snd[p])].name}->{data.nodes[int(rcv[p])].name}{'.' + t if t else ''}"
        shipped[name] = float(sc[p])
    assert shipped.keys() == by_name.keys()
    for name, s in shipped.items():
        assert s == pytest.approx(by_name[name], abs=1e-7)
    # ~9 bytes per edge, all of it in binary buffers (nothing numeric in the JSON)
    w = circuit_widget(big)
    from interp_widget.schema import pack

    state = w.get_state()
    state.pop("_esm", None)
    stripped, paths, buffers = pack(state)
    assert sorted(map(tuple, paths)) == [("graph", k, "data") for k in ("receivers", "scores", "senders", "targets")]
    assert sum(len(b) for b in buffers) == 32491 * 9
    assert len(json.dumps(stripped)) < 20_000


def test_only_kept_edges_are_shipped() -> None:
    g = gpt2_small_graph(seed=3, kept_fraction=0.01)
    data = graph_data(g)
    assert data.scores.shape == [int(g.kept.sum())]
    assert set(CircuitWidget(g).kept_edges(0.0, 0)) == set(g.edge_names())


def test_pruning_matches_the_graphs_own_prune_and_top(big: CircuitGraph) -> None:
    w = circuit_widget(big, top_k=0)
    thr = float(big.scores.abs().sort(descending=True).values[500])
    assert w.kept_edges(thr, 0) == big.prune(thr).edge_names()
    assert w.kept_edges(0.0, 37) == big.top(37).edge_names()
    assert set(w.kept_edges(thr, 100)) == set(big.prune(thr).top(100).edge_names())
    w.threshold, w.top_k = thr, 0
    assert len(w.kept_edges()) == len(big.prune(thr).edge_names())


def test_traits_are_checked(big: CircuitGraph) -> None:
    w = circuit_widget(big)
    with pytest.raises(Exception, match="threshold must be >= 0"):
        w.threshold = -1.0
    with pytest.raises(Exception, match="top_k must be >= 0"):
        w.top_k = -3
    with pytest.raises(Exception, match="max_drawn must be >= 1"):
        w.max_drawn = 0
    with pytest.raises(TypeError, match="needs a CircuitGraph"):
        circuit_widget({"edges": []})
    with pytest.raises(ValueError, match="missing: corrupted, metric"):
        circuit_widget(big, context={"model": None, "clean": "x"})
    CircuitState.model_validate(w.state_model().model_dump())


# --- commands -------------------------------------------------------------------------------------------------
def _selection(w: CircuitWidget, nodes: list[str], top_k: int) -> list[int]:
    """What the view sends: positions among the top_k edges whose ends are all selected."""
    names = set(nodes) | {"input", "logits"}
    out = []
    for p, name in enumerate(w.kept_edges(0.0, top_k)):
        s, r = name.split("->")
        if s in names and r.split(".")[0] in names:
            out.append(p)
    return out


def test_faithfulness_of_a_selection_matches_the_analysis(tl: Model, prompts: Any, real: CircuitGraph) -> None:
    clean, corrupted = prompts
    w = circuit_widget(real, top_k=40)
    assert w.has_context
    nodes = ["L0H0", "L0H1", "L1H0", "L1H1", "MLP0", "MLP1"]
    positions = _selection(w, nodes, 40)
    assert positions  # the selection holds some kept edges
    reply = command(w, "faithfulness", {"nodes": ["input", *nodes, "logits"], "edges": positions})
    assert reply["ok"] is True, reply
    names = [w.kept_edges(0.0, 40)[p] for p in positions]
    want = faithfulness(tl, clean, corrupted, logit_diff(ANS, WRONG), names)
    assert reply["fraction"] == pytest.approx(want["fraction"], abs=1e-5)
    assert reply["circuit_metric"] == pytest.approx(want["circuit_metric"], abs=1e-5)
    assert reply["n_edges"] == len(names) and reply["ablation"] == "resample"
    assert w.last_faithfulness is not None and w.last_faithfulness["edges"] == names
    # the Python API computes the same selection
    again = w.faithfulness_of(nodes, 0.0, 40)
    assert again["fraction"] == pytest.approx(reply["fraction"], abs=1e-6)


def test_faithfulness_with_an_explicit_context(tl: Model, prompts: Any, real: CircuitGraph) -> None:
    clean, corrupted = prompts
    bare = CircuitGraph(real.index, real.scores, real.kept, "eap", "m", 0.0, 0.0)
    m = logit_diff(ANS, WRONG)
    w = circuit_widget(bare, top_k=10, context={"model": tl, "clean": clean, "corrupted": corrupted, "metric": m,
                                                "ablation": "mean"})
    positions = list(range(10))
    nodes = sorted({n for e in w.kept_edges() for n in (e.split("->")[0], e.split("->")[1].split(".")[0])})
    reply = command(w, "faithfulness", {"nodes": nodes, "edges": positions})
    want = faithfulness(tl, clean, corrupted, m, w.kept_edges(), ablation="mean")
    assert reply["fraction"] == pytest.approx(want["fraction"], abs=1e-5)
    assert reply["ablation"] == "mean"


def test_commands_reply_with_errors(big: CircuitGraph, real: CircuitGraph) -> None:
    w = circuit_widget(big)
    assert not w.has_context
    reply = command(w, "faithfulness", {"nodes": ["input", "L0H0", "logits"], "edges": [0]})
    assert reply["ok"] is False
    first = w.kept_edges(0.0, 1)[0]
    s, r = first.split("->")
    reply = command(w, "faithfulness", {"nodes": [s, r.split(".")[0]], "edges": [0]})
    assert reply["error"]["type_name"] == "InputMismatchError" and "no model context" in reply["error"]["message"]
    reply = command(w, "open_head", {"layer": 0, "head": 0})
    assert reply["error"]["type_name"] == "InputMismatchError" and "attention patterns need" in reply["error"]["message"]
    wr = circuit_widget(real)
    reply = command(wr, "faithfulness", {"nodes": ["L9H9"], "edges": []})
    assert reply["error"]["message"] == "no node 'L9H9' in this graph"
    reply = command(wr, "faithfulness", {"nodes": ["input"], "edges": [10**6]})
    assert "edge position 1000000 is out of range" in reply["error"]["message"]
    first = wr.kept_edges(0.0, 1)[0]
    reply = command(wr, "faithfulness", {"nodes": ["input"], "edges": [0]})
    assert reply["error"]["message"] == f"edge {first} does not join two selected nodes"
    reply = command(wr, "faithfulness", {"nodes": [], "edges": []})
    assert reply["error"]["type_name"] == "ValidationError"
    reply = command(wr, "explode", {})
    assert reply["error"]["type_name"] == "LookupError" and "faithfulness" in reply["error"]["message"]


def test_open_head_shows_the_heads_attention_on_the_clean_prompt(tl: Model, prompts: Any, real: CircuitGraph) -> None:
    clean, _ = prompts
    w = circuit_widget(real)
    reply = command(w, "open_head", {"layer": 1, "head": 2, "window_size": 48})
    assert reply["ok"] is True and reply["names"] == ["clean"]
    assert (reply["layer"], reply["head"]) == (1, 2)
    window = reply["windows"][0]
    got = decode(window["values"]).astype(np.float32)
    _, cache = tl.raw.run_with_cache(clean[:1])
    want = cache["blocks.1.attn.hook_pattern"][0, 2].detach().numpy()
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=2e-3)  # float16 on the wire
    reply = command(w, "open_head", {"layer": 5, "head": 0})
    assert reply["ok"] is False and "layer" in reply["error"]["message"]


# --- snapshot and display -----------------------------------------------------------------------------------
def test_snapshot_html_embeds_the_graph_and_an_svg_fallback(big: CircuitGraph) -> None:
    w = circuit_widget(big)
    w.snapshot_edges = 3000
    data, _ = w._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in data
    assert data[SNAPSHOT_MIME] == {"version": 1, "html": "text/html"}
    html = data["text/html"]
    assert 'data-iw-static="circuit"' in html and "<svg" in html and 'class="iw-static-data"' in html
    assert "http://" not in html.replace("http://www.w3.org", "")  # no network
    start = html.index('class="iw-static-data">') + len('class="iw-static-data">')
    doc = json.loads(html[start:html.index("</script>", start)])
    assert doc["kind"] == "circuit" and doc["state"]["graph"]["scores"]["shape"] == [3000]
    assert "the strongest 3000 of 32491" in doc["state"]["graph"]["note"]
    assert html.count("<rect") >= 158  # every node in the fallback SVG


def test_a_circuit_graph_displays_as_the_widget(real: CircuitGraph) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    from interp_widget.widgets._display import register

    shell = InteractiveShell.instance()
    assert register(shell)
    data, _ = shell.display_formatter.format(real)
    assert "application/vnd.jupyter.widget-view+json" in data
    assert data["text/plain"] == repr(real)
    assert 'data-iw-static="circuit"' in data["text/html"]
    bundle, _ = circuit_mimebundle(real)
    assert SNAPSHOT_MIME in bundle
    assert iw.circuit_widget is circuit_widget and iw.CircuitWidget is CircuitWidget
