"""The side panel's kernel-side server: the weak registry and the typed request handler (good and
malformed requests, views, snippets checked by running them). The comm wiring and a real kernel:
tests/test_server_kernel.py."""

from __future__ import annotations

import gc
import json
import re
import weakref
from typing import Any

import numpy as np
import pytest
import torch

import interp_widget as iw
from interp_widget.schema import decode, unpack
from interp_widget.server.handler import PanelServer
from interp_widget.server.messages import PanelEnvelope
from interp_widget.server.registry import REGISTRY, Registry, classify

pytestmark = pytest.mark.filterwarnings("ignore:HookedTransformer is deprecated:DeprecationWarning")

TEXT = "Jq7Xm2Rv9K Jq7Xm2Rv9K"
N_LAYERS, N_HEADS, D_MLP = 2, 4, 24


def _hooked(attn_only: bool) -> Any:
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    from interp_widget.zoo.tokenizer import build_tokenizer

    cfg = HookedTransformerConfig(n_layers=N_LAYERS, d_model=16, n_heads=N_HEADS, d_head=4, n_ctx=48, d_vocab=72,
                                  attn_only=attn_only, d_mlp=None if attn_only else D_MLP,
                                  act_fn=None if attn_only else "relu", seed=0, normalization_type="LN")
    ht = HookedTransformer(cfg)
    ht.set_tokenizer(build_tokenizer())
    return ht.eval()


@pytest.fixture(scope="module")
def model() -> iw.Model:
    return iw.load(_hooked(attn_only=False), name="tiny-mlp")


@pytest.fixture(scope="module")
def attn_model() -> iw.Model:
    return iw.load(_hooked(attn_only=True), name="tiny-attn")


class Namespace(dict):  # a user namespace that can be swapped per test
    pass


@pytest.fixture
def ns() -> Namespace:
    return Namespace()


@pytest.fixture
def server(ns: Namespace) -> PanelServer:
    return PanelServer(REGISTRY, namespace=lambda: ns)


def ask(server: PanelServer, data: Any, client: str = "c1") -> tuple[dict[str, Any], list[bytes]]:
    """Send ``data`` as the panel does; return the unpacked message (checked against the schema) and buffers."""
    out, buffers = server.handle(data, [], client=client)
    json.dumps(out, allow_nan=False)  # plain JSON besides the buffers
    assert set(out) == {"message", "buffer_paths"}
    msg = unpack(out["message"], out["buffer_paths"], buffers)
    PanelEnvelope.model_validate({"message": msg, "buffer_paths": out["buffer_paths"]})
    return msg, buffers


def ok(server: PanelServer, data: Any) -> dict[str, Any]:
    msg, _ = ask(server, data)
    assert msg["ok"] is True, msg
    assert msg["id"] == data["id"]
    return msg


def error(server: PanelServer, data: Any) -> dict[str, Any]:
    msg, buffers = ask(server, data)
    assert msg["ok"] is False and msg["type"] == "error", msg
    assert buffers == []
    return msg


# --- registry ---------------------------------------------------------------------------------
class Thing:
    pass


def test_registry_holds_weak_references_only() -> None:
    reg = Registry()
    heard: list[str] = []
    reg.subscribe(heard.append)
    a, b = Thing(), Thing()
    ida, idb = reg.track(a, "model"), reg.track(b, "result")
    assert (ida, idb) == ("model-1", "result-1")
    assert reg.track(a, "model") == ida  # same object, same id
    assert [e.id for e in reg.entries()] == [ida, idb]
    assert heard == ["track", "track"]
    ref = weakref.ref(a)
    version = reg.version
    del a
    gc.collect()
    assert ref() is None, "the registry kept a dead object alive"
    assert reg.version > version  # the weakref callback marked the change
    assert [e.id for e in reg.entries()] == [idb]
    with pytest.raises(LookupError, match=r"no entry 'model-1' in this kernel .*entries: result-1"):
        reg.get(ida)
    assert reg.get(idb).obj is b


def test_registry_refuses_unknown_kinds_and_skips_unreferenceable_objects() -> None:
    reg = Registry()
    with pytest.raises(ValueError, match="unknown entry kind 'widget'; kinds are: model, trace, result, view"):
        reg.track(Thing(), "widget")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown entry kind"):
        iw.server.track(Thing(), "widget")  # type: ignore[arg-type]
    assert reg.track(3, "result") is None  # ints cannot be weakly referenced: nothing registered
    assert iw.server.track((1, 2), "result") is None
    assert reg.entries() == []


def test_hidden_entries_and_closed_widgets_are_not_listed(attn_model: iw.Model) -> None:
    reg = Registry()
    w = iw.attention(attn_model, "abcabc")
    t = Thing()
    reg.track(w, "view")
    reg.track(t, "result", hidden=True)
    assert [e.kind for e in reg.entries()] == ["view"]
    assert [e.kind for e in reg.entries(include_hidden=True)] == ["view", "result"]
    w.close()
    assert reg.entries() == []


def test_model_and_widget_register_themselves(attn_model: iw.Model) -> None:
    entry = REGISTRY.entry_of(attn_model)
    assert entry is not None and entry.kind == "model"
    w = iw.attention(attn_model, "abcabc")
    assert REGISTRY.entry_of(w) is not None and REGISTRY.entry_of(w).kind == "view"  # type: ignore[union-attr]
    assert iw.server.get(entry.id) is attn_model
    w.close()


def test_classify_and_scan(attn_model: iw.Model) -> None:
    from interp_widget.analysis.heads import HeadScores
    from interp_widget.analysis.metrics import logit_diff

    run = attn_model.run(TEXT, capture=["blocks.0.attn.hook_pattern"])
    scores = HeadScores(scores={"induction": torch.zeros(N_LAYERS, N_HEADS)}, n_layers=N_LAYERS, n_heads=N_HEADS)
    assert classify(attn_model) == "model"
    assert classify(run) == "trace"
    assert classify(scores) == "result"
    assert classify(logit_diff(" a", " b")) is None  # a metric is not a result
    assert classify(Thing()) is None and classify(np.zeros(3)) is None
    reg = Registry()
    assert reg.scan({"m": attn_model, "run": run, "scores": scores, "x": 3, "_": Thing()}) == 3
    assert reg.scan({"m": attn_model}) == 0
    assert [e.kind for e in reg.entries()] == ["model", "trace", "result"]


# --- requests -----------------------------------------------------------------------------------
def test_list_names_variables(server: PanelServer, ns: Namespace, model: iw.Model) -> None:
    ns.update(model=model, iw=iw, _hidden=model)
    msg = ok(server, {"id": "1", "type": "list"})
    assert msg["type"] == "entries" and msg["protocol"] == 1 and msg["package_version"] == iw.__version__
    mine = [e for e in msg["entries"] if e["id"] == REGISTRY.entry_of(model).id]  # type: ignore[union-attr]
    assert len(mine) == 1
    e = mine[0]
    assert e["kind"] == "model" and e["label"] == "tiny-mlp" and e["names"] == ["model"]
    assert "2 layers x 4 heads" in e["detail"] and f"d_mlp {D_MLP}" in e["detail"]


def test_describe_model_lists_its_sites(server: PanelServer, model: iw.Model) -> None:
    eid = REGISTRY.entry_of(model).id  # type: ignore[union-attr]
    d = ok(server, {"id": "d", "type": "describe", "entry": eid})["details"]
    assert d["kind"] == "model" and d["backend"] == "TransformerLensBackend"
    assert (d["n_layers"], d["n_heads"], d["d_mlp"], d["n_ctx"], d["d_vocab"]) == (N_LAYERS, N_HEADS, D_MLP, 48, 72)
    assert [s["hook_name"] for s in d["sites"]] == [i.site.hook_name for i in model.sites()]
    pattern = next(s for s in d["sites"] if s["hook_name"] == "blocks.1.attn.hook_pattern")
    assert pattern == {"hook_name": "blocks.1.attn.hook_pattern", "component": "attn.hook_pattern", "layer": 1,
                       "shape": ["batch", "head", "query_pos", "key_pos"]}


def test_describe_view_result_and_trace(server: PanelServer, attn_model: iw.Model) -> None:
    from interp_widget.analysis.results import SweepResult

    w = iw.attention(attn_model, TEXT, prompts=["abcabc"], layer=1, head=2)
    d = ok(server, {"id": "v", "type": "describe", "entry": REGISTRY.entry_of(w).id})["details"]  # type: ignore[union-attr]
    assert d == {"kind": "view", "widget_class": "AttentionWidget", "model_id": w.model_id, "model_name": "tiny-attn",
                 "selection": {"prompt": 0, "layer": 1, "head": 2}, "n_layers": 2, "n_heads": 4,
                 "prompts": [TEXT, "abcabc"]}
    res = SweepResult(values=torch.arange(8.0).reshape(2, 4), axes=("layer", "head"),
                      labels={"layer": ["0", "1"], "head": ["0", "1", "2", "3"]}, kind="activation_patching",
                      sites="heads", metric="logit_diff")
    rid = REGISTRY.track(res, "result")
    d = ok(server, {"id": "r", "type": "describe", "entry": rid})["details"]
    assert (d["result_kind"], d["axes"], d["shape"], d["metric"]) == ("activation_patching", ["layer", "head"], [2, 4], "logit_diff")
    run = attn_model.run(TEXT, capture=["blocks.0.attn.hook_pattern"])
    tid = REGISTRY.track(run, "trace")
    d = ok(server, {"id": "t", "type": "describe", "entry": tid})["details"]
    assert d["captured"] == [{"hook_name": "blocks.0.attn.hook_pattern", "shape": [1, N_HEADS, 22, 22], "dtype": "float32"}]
    assert d["logits_shape"] == [1, 22, 72]
    w.close()


def test_render_view_is_the_inline_widget(server: PanelServer, attn_model: iw.Model) -> None:
    w = iw.attention(attn_model, TEXT)
    msg = ok(server, {"id": "r", "type": "render", "entry": REGISTRY.entry_of(w).id})  # type: ignore[union-attr]
    assert msg["view"] == {"kind": "widget", "model_id": w.model_id, "owned": False}
    w.close()


def test_render_model_makes_an_owned_widget_and_release_closes_it(server: PanelServer, attn_model: iw.Model) -> None:
    eid = REGISTRY.entry_of(attn_model).id  # type: ignore[union-attr]
    msg = ok(server, {"id": "r", "type": "render", "entry": eid, "text": TEXT, "layer": 1, "head": 3})
    view = msg["view"]
    assert view["kind"] == "widget" and view["owned"] is True
    from ipywidgets.widgets.widget import _instances

    w = _instances[view["model_id"]]
    assert (w.layer, w.head, w.data.tokens[0]) == (1, 3, attn_model.to_str_tokens(TEXT))
    hidden = REGISTRY.entry_of(w)
    assert hidden is not None and hidden.hidden and hidden.kind == "view"
    assert hidden.id not in {e["id"] for e in ok(server, {"id": "l", "type": "list"})["entries"]}
    # another client cannot release it; its owner can, once
    assert server.handle({"id": "x", "type": "release", "model_ids": [view["model_id"]]}, client="other")[0]["message"]["released"] == []
    assert ok(server, {"id": "x", "type": "release", "model_ids": [view["model_id"]]})["released"] == [view["model_id"]]
    assert w.comm is None
    assert ok(server, {"id": "x", "type": "release", "model_ids": [view["model_id"]]})["released"] == []


def test_render_model_default_prompt_shows_induction_tokens(server: PanelServer, attn_model: iw.Model) -> None:
    from interp_widget.server.render import default_tokens

    ids = default_tokens(attn_model)
    assert ids[0] == 0 and len(ids) == 25 and ids[1:13] == ids[13:]  # BOS + R + R, R of 12 characters
    assert all(i >= 2 for i in ids[1:])  # no special tokens
    view = ok(server, {"id": "r", "type": "render", "entry": REGISTRY.entry_of(attn_model).id})["view"]  # type: ignore[union-attr]
    assert server.release_client("c1") == [view["model_id"]]


def test_render_static_sends_patterns_as_buffers(server: PanelServer, attn_model: iw.Model) -> None:
    w = iw.attention(attn_model, TEXT, layer=1, head=2)
    msg, buffers = ask(server, {"id": "s", "type": "render", "entry": REGISTRY.entry_of(w).id, "mode": "static"})  # type: ignore[union-attr]
    assert msg["ok"] and msg["view"]["kind"] == "static"
    doc = msg["view"]["document"]
    assert doc["kind"] == "attention" and (doc["state"]["layer"], doc["state"]["head"]) == (1, 2)
    assert buffers and all(isinstance(b, bytes) for b in buffers)
    full = decode(doc["patterns"][0])
    np.testing.assert_array_equal(full, w.data.patterns[0])  # the same float16 patterns as the inline widget
    assert decode(doc["state"]["prompts"][0]["thumbs"]).shape == decode(w.prompts[0]["thumbs"]).shape
    # a model's static view runs the model; nothing is left behind in the kernel
    before = len(REGISTRY.entries(include_hidden=True))
    msg, _ = ask(server, {"id": "s2", "type": "render", "entry": REGISTRY.entry_of(attn_model).id, "mode": "static",  # type: ignore[union-attr]
                          "text": TEXT, "layer": 1, "head": 2})
    np.testing.assert_array_equal(decode(msg["view"]["document"]["patterns"][0]), w.data.patterns[0])
    assert len(REGISTRY.entries(include_hidden=True)) == before
    w.close()


def test_render_result_is_its_display_data(server: PanelServer) -> None:
    class Shown:
        __module__ = "interp_widget.analysis.fake"

        def to_dict(self) -> dict[str, Any]:
            return {}

        def _repr_html_(self) -> str:
            return "<b>shown</b>"

    obj = Shown()
    rid = REGISTRY.track(obj, "result")
    server.formatter = lambda o: ({"text/html": o._repr_html_(), "text/plain": "Shown", "image/png": b"\x89PNG", "x": float("nan")}, {})
    view = ok(server, {"id": "r", "type": "render", "entry": rid})["view"]
    assert view == {"kind": "mime", "data": {"text/html": "<b>shown</b>", "text/plain": "Shown", "x": None}, "metadata": {}}
    msg = error(server, {"id": "r2", "type": "render", "entry": rid, "mode": "static"})
    assert msg["error"]["message"].startswith(f"{rid} is a result: only attention views have a static snapshot")


def test_render_result_that_displays_as_a_widget(server: PanelServer) -> None:
    from interp_widget.analysis.heads import HeadScores
    from interp_widget.widgets.heatmap import result_mimebundle

    scores = HeadScores(scores={"induction": torch.rand(2, 4, generator=torch.Generator().manual_seed(1))},
                        n_layers=2, n_heads=4, meta={"model": "tiny"})
    rid = REGISTRY.track(scores, "result")
    server.formatter = result_mimebundle  # what the notebook shows inline: the heatmap widget
    view = ok(server, {"id": "w", "type": "render", "entry": rid})["view"]
    assert view["kind"] == "widget" and view["owned"] is True  # made for the panel: hidden, and released by it
    from ipywidgets.widgets.widget import _instances

    widget = _instances[view["model_id"]]
    assert REGISTRY.entry_of(widget).hidden  # type: ignore[union-attr]
    assert view["model_id"] not in {e["id"] for e in ok(server, {"id": "l", "type": "list"})["entries"]}
    assert ok(server, {"id": "x", "type": "release", "model_ids": [view["model_id"]]})["released"] == [view["model_id"]]
    assert widget.comm is None


def test_render_trace_text_is_bounded(server: PanelServer, attn_model: iw.Model) -> None:
    from interp_widget.server.render import MAX_TEXT

    run = attn_model.run(TEXT, capture=["blocks.0.attn.hook_pattern"])
    tid = REGISTRY.track(run, "trace")
    server.formatter = lambda o: ({"text/plain": repr(o) * 50}, {})
    view = ok(server, {"id": "t", "type": "render", "entry": tid})["view"]
    assert view["kind"] == "mime" and len(view["data"]["text/plain"]) == MAX_TEXT


# --- snippets ---------------------------------------------------------------------------------------
def run_snippet(code: str, ns: dict[str, Any]) -> dict[str, Any]:
    env = dict(ns)
    exec(compile(code, "<snippet>", "exec"), env)  # the code the panel puts in a new cell
    return env


def test_head_snippet_computes_that_heads_pattern(server: PanelServer, ns: Namespace, model: iw.Model) -> None:
    ns.update(m=model, iw=iw)
    eid = REGISTRY.entry_of(model).id  # type: ignore[union-attr]
    msg = ok(server, {"id": "s", "type": "snippet", "entry": eid, "target": {"layer": 1, "head": 3, "text": TEXT}})
    assert "m.run('Jq7Xm2Rv9K Jq7Xm2Rv9K', capture=['blocks.1.attn.hook_pattern'])" in msg["code"]
    assert "iw.attention(m, 'Jq7Xm2Rv9K Jq7Xm2Rv9K', layer=1, head=3)" in msg["code"]
    env = run_snippet(msg["code"], ns)
    _, cache = model.raw.run_with_cache(TEXT)
    torch.testing.assert_close(env["pattern"], cache["blocks.1.attn.hook_pattern"][0, 3])


def test_neuron_snippet_without_a_variable(server: PanelServer, ns: Namespace, model: iw.Model) -> None:
    eid = REGISTRY.entry_of(model).id  # type: ignore[union-attr]
    msg = ok(server, {"id": "s", "type": "snippet", "entry": eid, "target": {"layer": 0, "neuron": 7}})
    assert msg["code"].startswith("import interp_widget as iw\n")
    assert f'iw.server.get("{eid}").run(tokens' in msg["code"]
    env = run_snippet(msg["code"], ns)
    tokens = env["tokens"]
    _, cache = model.raw.run_with_cache(tokens)
    torch.testing.assert_close(env["neuron"], cache["blocks.0.mlp.hook_post"][0, :, 7])


def test_site_snippet_with_head_and_position(server: PanelServer, ns: Namespace, model: iw.Model) -> None:
    ns.update(model=model)
    eid = REGISTRY.entry_of(model).id  # type: ignore[union-attr]
    target = {"site": "blocks.1.attn.hook_z", "head": 2, "position": 4, "text": TEXT}
    env = run_snippet(ok(server, {"id": "s", "type": "snippet", "entry": eid, "target": target})["code"], ns)
    _, cache = model.raw.run_with_cache(TEXT)
    torch.testing.assert_close(env["act"], cache["blocks.1.attn.hook_z"][0, 4, 2])


def test_view_result_and_trace_snippets(server: PanelServer, ns: Namespace, attn_model: iw.Model) -> None:
    from interp_widget.analysis.heads import HeadScores
    from interp_widget.analysis.results import SweepResult

    w = iw.attention(attn_model, TEXT)
    res = SweepResult(values=torch.arange(8.0).reshape(2, 4), axes=("layer", "head"),
                      labels={"layer": ["0", "1"], "head": ["a", "b", "c", "d"]}, kind="activation_patching",
                      sites="heads", metric="logit_diff")
    scores = HeadScores(scores={"induction": torch.rand(2, 4, generator=torch.Generator().manual_seed(0))},
                        n_layers=2, n_heads=4)
    run = attn_model.run(TEXT, capture=["blocks.0.attn.hook_pattern"])
    ns.update(w=w, res=res, scores=scores, run=run)
    ids = {k: REGISTRY.track(v, kind) for k, v, kind in
           (("w", w, "view"), ("res", res, "result"), ("scores", scores, "result"), ("run", run, "trace"))}

    def code(key: str, target: dict[str, Any]) -> str:
        return ok(server, {"id": key, "type": "snippet", "entry": ids[key], "target": target})["code"]

    env = run_snippet(code("w", {"layer": 1, "head": 2}), ns)
    assert (w.layer, w.head) == (1, 2)  # the snippet selects the head in the inline view
    np.testing.assert_array_equal(env["pattern"], w.data.patterns[0][1, 2])
    assert code("res", {"index": {"layer": 1, "head": 2}}) == "res.values[1, 2]  # layer=1, head=c\n"
    assert run_snippet(code("res", {"layer": 1, "head": 3}).replace("res.values", "out = res.values"), ns)["out"] == 7.0
    assert code("scores", {"layer": 1, "head": 0}) == "scores['induction'][1, 0]  # L1H0\n"
    env = run_snippet("out = " + code("run", {"site": "blocks.0.attn.hook_pattern", "head": 1}), ns)
    torch.testing.assert_close(env["out"], run.cache["blocks.0.attn.hook_pattern"][0, 1])
    w.close()


@pytest.mark.parametrize(("target", "type_name", "message"), [
    ({"layer": 2, "head": 0}, "SiteIndexError", r"layer 2 is out of range: tiny-attn has 2 layers \(0\.\.1\)"),
    ({"layer": 0, "head": 4}, "SiteIndexError", r"head 4 is out of range: tiny-attn has 4 heads per layer \(0\.\.3\)"),
    ({"layer": 0, "neuron": 1}, "UnknownSiteError", "tiny-attn has no MLP neurons"),
    ({"site": "blocks.0.attn.hook_nope"}, "UnknownSiteError", "unknown site component 'attn.hook_nope'"),
    ({}, "ValueError", "say what to write code for"),
    ({"layer": -1, "head": 0}, "ValidationError", r"target\.layer: Input should be greater than or equal to 0"),
    ({"head": 0, "colour": "red"}, "ValidationError", r"target\.colour: Extra inputs are not permitted"),
])
def test_bad_snippet_targets_get_typed_errors(server: PanelServer, attn_model: iw.Model, target: dict[str, Any],
                                               type_name: str, message: str) -> None:
    eid = REGISTRY.entry_of(attn_model).id  # type: ignore[union-attr]
    msg = error(server, {"id": "q", "type": "snippet", "entry": eid, "target": target})
    assert msg["id"] == "q" and msg["error"]["type_name"] == type_name
    assert re.search(message, msg["error"]["message"]), msg["error"]["message"]


# --- malformed requests -------------------------------------------------------------------------------
@pytest.mark.parametrize(("data", "rid", "type_name", "message"), [
    (None, None, "RequestError", "a panel request is a JSON object with 'id' and 'type'; got NoneType"),
    ([1, 2], None, "RequestError", "got list"),
    ("list", None, "RequestError", "got str"),
    ({}, None, "RequestError", "unknown request type None; known types: list, describe, render, snippet, release"),
    ({"id": "a", "type": "explode"}, "a", "RequestError", "unknown request type 'explode'"),
    ({"id": "a", "type": ["list"]}, "a", "RequestError", "unknown request type ['list']"),
    ({"type": "list"}, None, "ValidationError", "list.id: Field required"),
    ({"id": 5, "type": "list"}, None, "ValidationError", "list.id: Input should be a valid string"),
    ({"id": "x" * 500, "type": "list"}, None, "ValidationError", "String should have at most 128 characters"),
    ({"id": "a", "type": "list", "extra": 1}, "a", "ValidationError", "list.extra: Extra inputs are not permitted"),
    ({"id": "a", "type": "describe"}, "a", "ValidationError", "describe.entry: Field required"),
    ({"id": "a", "type": "describe", "entry": "../etc"}, "a", "ValidationError", "describe.entry: String should match pattern"),
    ({"id": "a", "type": "describe", "entry": "model-999999"}, "a", "EntryNotFoundError", "no entry 'model-999999' in this kernel"),
    ({"id": "a", "type": "render", "entry": "model-1", "mode": "3d"}, "a", "ValidationError", "render.mode: Input should be 'live' or 'static'"),
    ({"id": "a", "type": "render", "entry": "model-1", "layer": "one"}, "a", "ValidationError", "render.layer: Input should be a valid integer"),
    ({"id": "a", "type": "release", "model_ids": "abc"}, "a", "ValidationError", "release.model_ids: Input should be a valid list"),
])
def test_malformed_requests_get_typed_error_replies(server: PanelServer, data: Any, rid: str | None, type_name: str,
                                                    message: str) -> None:
    msg = error(server, data)
    assert msg["id"] == rid
    assert msg["error"]["type_name"] == type_name
    assert message in msg["error"]["message"], msg["error"]["message"]


def test_a_failing_formatter_is_an_error_reply_not_an_exception(server: PanelServer) -> None:
    class Broken:
        __module__ = "interp_widget.analysis.fake"

        def to_dict(self) -> dict[str, Any]:
            return {}

    obj = Broken()
    rid = REGISTRY.track(obj, "result")

    def boom(_: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        raise RuntimeError("display exploded")

    server.formatter = boom
    msg = error(server, {"id": "b", "type": "render", "entry": rid})
    assert msg["error"] == {"type_name": "RuntimeError", "message": "display exploded"}
    del obj
    gc.collect()
    msg = error(server, {"id": "c", "type": "describe", "entry": rid})
    assert msg["error"]["type_name"] == "EntryNotFoundError"
