"""The attention widget (Python side): data against TransformerLens, trait validation, the
``get_pattern`` command and its typed error replies, what crosses the wire, the static snapshot."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

import numpy as np
import pytest
import torch
import traitlets

import interp_widget as iw
from interp_widget.errors import ContextLengthError, SiteIndexError
from interp_widget.schema import SCORE_KINDS, AttentionState, decode, pack, unpack
from interp_widget.widgets._patterns import maxpool2d, pool_edges
from interp_widget.widgets._static import BUNDLE
from interp_widget.widgets.attention import SNAPSHOT_MIME, AttentionWidget

pytestmark = pytest.mark.filterwarnings("ignore:HookedTransformer is deprecated:DeprecationWarning")

TEXT = "Jq7Xm2Rv9K Jq7Xm2Rv9K"  # BOS + 21 characters
N_LAYERS, N_HEADS = 2, 4


@pytest.fixture(scope="module")
def hooked() -> Any:
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    from interp_widget.zoo.tokenizer import build_tokenizer

    cfg = HookedTransformerConfig(n_layers=N_LAYERS, d_model=16, n_heads=N_HEADS, d_head=4, n_ctx=48, d_vocab=72,
                                  attn_only=True, act_fn=None, seed=0, normalization_type="LN")
    ht = HookedTransformer(cfg)
    ht.set_tokenizer(build_tokenizer())
    return ht.eval()


@pytest.fixture(scope="module")
def model(hooked: Any) -> iw.Model:
    return iw.load(hooked, name="tiny")


@pytest.fixture(scope="module")
def widget(model: iw.Model) -> AttentionWidget:
    return iw.attention(model, TEXT, prompts=["abcabcabc"], layer=1, head=2)


def command(w: AttentionWidget, name: str, msg: Any) -> dict[str, Any]:
    """Send an anywidget command as the front end does; return the unpacked reply."""
    sent: list[tuple[dict[str, Any], list[bytes]]] = []
    w.send = lambda content, buffers=None: sent.append((content, list(buffers or [])))  # type: ignore[method-assign]
    try:
        w._handle_custom_msg({"kind": "anywidget-command", "id": "req-1", "name": name, "msg": msg}, [])
    finally:
        del w.send
    replies = [c for c in sent if c[0].get("kind") == "anywidget-command-response"]
    assert len(replies) == 1, f"expected one reply, got {sent}"
    content, buffers = replies[0]
    assert content["id"] == "req-1"
    json.dumps(content)  # nothing but JSON besides the buffers
    env = content["response"]
    return unpack(env["reply"], env["buffer_paths"], buffers)


# --- data ---------------------------------------------------------------------------------
def test_patterns_match_transformer_lens(widget: AttentionWidget, hooked: Any) -> None:
    _, cache = hooked.run_with_cache(TEXT)
    data = widget.data
    assert data.tokens[0] == hooked.to_str_tokens(TEXT)
    for layer in range(N_LAYERS):
        ref = cache[f"blocks.{layer}.attn.hook_pattern"][0].numpy()
        got = data.patterns[0][layer].astype(np.float32)
        assert data.patterns[0].dtype == np.float16  # kept compactly
        np.testing.assert_allclose(got, ref, atol=1e-3)  # float16 rounding


def test_scores_match_scores_from_patterns(widget: AttentionWidget, hooked: Any) -> None:
    from interp_widget.analysis.heads import scores_from_patterns

    _, cache = hooked.run_with_cache(TEXT)
    pats = torch.stack([cache[f"blocks.{layer}.attn.hook_pattern"][0] for layer in range(N_LAYERS)])
    ref = scores_from_patterns(pats, hooked.to_tokens(TEXT)[0])
    got = {s["kind"]: decode(s["values"]) for s in widget.prompts[0]["scores"]}
    assert list(got) == list(SCORE_KINDS)
    for kind in SCORE_KINDS:
        np.testing.assert_allclose(got[kind], ref[kind].numpy(), atol=2e-3, equal_nan=True)


def test_thumbnails_are_max_pooled_patterns(widget: AttentionWidget) -> None:
    big = np.random.default_rng(0).random((2, 3, 70, 70)).astype(np.float16)
    w = AttentionWidget.from_patterns(big, [f"t{i}" for i in range(70)], thumb_size=16, scores=False)
    thumbs = decode(w.prompts[0]["thumbs"])
    assert thumbs.shape == (2, 3, 16, 16)
    edges = [*pool_edges(70, 16).tolist(), 70]
    for layer, head, i, j in [(0, 0, 0, 0), (1, 2, 5, 9), (1, 1, 15, 15)]:
        block = big[layer, head, edges[i]:edges[i + 1], edges[j]:edges[j + 1]].astype(np.float32)
        assert abs(thumbs[layer, head, i, j] - block.max()) <= 1 / 510 + 1e-6
    np.testing.assert_array_equal(maxpool2d(np.eye(3), 8, 8), np.eye(3))  # small inputs are not pooled
    # a short prompt keeps one pixel per token pair
    assert decode(widget.prompts[1]["thumbs"]).shape == (N_LAYERS, N_HEADS, 10, 10)


def test_accepts_token_ids_and_several_prompts(model: iw.Model, hooked: Any) -> None:
    ids = hooked.to_tokens(TEXT)[0]
    w = iw.attention(model, ["abc", TEXT], prompts=[ids])
    assert [len(t) for t in w.data.tokens] == [4, 22, 22]
    np.testing.assert_array_equal(w.data.patterns[1], w.data.patterns[2])


# --- errors -------------------------------------------------------------------------------
def test_text_longer_than_context(model: iw.Model, hooked: Any) -> None:
    with pytest.raises(ContextLengthError, match="48"):
        iw.attention(model, "x" * 60)
    with pytest.raises(ContextLengthError, match="context of 48"):
        iw.attention(model, torch.zeros(60, dtype=torch.long))


def test_bad_selection_names_the_range(model: iw.Model, widget: AttentionWidget) -> None:
    with pytest.raises(SiteIndexError, match=r"layer 2 is out of range: tiny has 2 layers \(0\.\.1\)"):
        iw.attention(model, "abc", layer=2)
    with pytest.raises(SiteIndexError, match=r"head 4 is out of range: .*4 heads per layer \(0\.\.3\)"):
        iw.attention(model, "abc", head=4)
    with pytest.raises(traitlets.TraitError, match=r"layer 5 is out of range: tiny has 2 layers \(0\.\.1\)"):
        widget.layer = 5
    with pytest.raises(SiteIndexError, match=r"head -1 is out of range"):
        widget.head = -1
    with pytest.raises(traitlets.TraitError, match=r"prompt 2 is out of range: the widget has 2 prompts \(0\.\.1\)"):
        widget.prompt = 2
    assert (widget.layer, widget.head, widget.prompt) == (1, 2, 0)
    with pytest.raises(ValueError, match="give a text"):
        iw.attention(model)


def test_unknown_model_name_fails_clearly() -> None:
    with pytest.raises(iw.ModelLoadError):
        iw.attention("no-such-model-anywhere-xyz", "abc")


# --- the get_pattern command ------------------------------------------------------------
def test_get_pattern_returns_the_window_as_a_buffer(widget: AttentionWidget) -> None:
    reply = command(widget, "get_pattern", {"prompt": 0, "layer": 1, "head": 3, "q0": 4, "q1": 12, "k0": 2, "k1": 9})
    assert reply["ok"] is True
    win = reply["window"]
    assert (win["layer"], win["head"], win["q0"], win["q1"], win["k0"], win["k1"]) == (1, 3, 4, 12, 2, 9)
    assert win["values"]["dtype"] == "float16"
    np.testing.assert_array_equal(decode(win["values"]), widget.data.patterns[0][1, 3, 4:12, 2:9])


def test_get_pattern_pools_and_clips(widget: AttentionWidget) -> None:
    reply = command(widget, "get_pattern", {"prompt": 0, "layer": 0, "head": 0, "q0": 0, "q1": 999, "k0": 0,
                                            "k1": 999, "max_size": 5, "precision": "uint8"})
    win = reply["window"]
    assert (win["q1"], win["k1"]) == (22, 22)  # clipped to the prompt
    vals = decode(win["values"])
    assert vals.shape == (5, 5)
    ref = maxpool2d(widget.data.patterns[0][0, 0].astype(np.float32), 5, 5)
    np.testing.assert_allclose(vals, ref, atol=1 / 510 + 1e-6)


@pytest.mark.parametrize(("msg", "type_name", "pattern"), [
    ({"prompt": 0, "layer": 7, "head": 0, "q0": 0, "q1": 2, "k0": 0, "k1": 2}, "SiteIndexError",
     r"layer 7 is out of range: tiny has 2 layers \(0\.\.1\)"),
    ({"prompt": 0, "layer": 0, "head": 0, "q0": 30, "q1": 32, "k0": 0, "k1": 2}, "SiteIndexError",
     r"q0=30.*22 tokens"),
    ({"prompt": 0, "layer": 0, "head": 0, "q0": 5, "q1": 5, "k0": 0, "k1": 2}, "ValidationError", "empty window"),
    ({"prompt": 0, "layer": 0}, "ValidationError", r"head: Field required"),
    ("not an object", "TypeError", "expects an object"),
])
def test_get_pattern_failures_reply_with_typed_errors(widget: AttentionWidget, msg: Any, type_name: str,
                                                      pattern: str) -> None:
    reply = command(widget, "get_pattern", msg)
    assert reply["ok"] is False
    assert reply["error"]["type_name"] == type_name
    assert re.search(pattern, reply["error"]["message"]), reply["error"]["message"]


def test_unknown_command_gets_an_error_reply(widget: AttentionWidget) -> None:
    reply = command(widget, "no_such_command", {})
    assert reply == {"ok": False, "error": {"type_name": "LookupError",
                                            "message": "unknown command 'no_such_command'; this widget has: get_pattern"}}


# --- what crosses the wire --------------------------------------------------------------------
def test_state_validates_and_tensors_travel_as_buffers(widget: AttentionWidget) -> None:
    state = widget.state_model()
    assert isinstance(state, AttentionState)
    assert (state.layer, state.head, state.n_layers, state.n_heads) == (1, 2, N_LAYERS, N_HEADS)
    assert state.window is not None and (state.window.layer, state.window.head) == (1, 2)
    wire = {k: v for k, v in widget.get_state().items() if k in AttentionState.model_fields}
    stripped, paths, buffers = pack(wire)
    assert ["window", "values", "data"] in paths
    assert ["prompts", 0, "thumbs", "data"] in paths
    assert ["prompts", 1, "scores", 2, "values", "data"] in paths
    text = json.dumps(stripped)
    assert not re.search(r"\[\s*(-?[\d.e+-]+\s*,\s*){5,}", text), "number lists leaked into the JSON state"
    sizes = widget.payload_size()
    assert sizes["buffers"] == sum(len(b) for b in buffers)
    assert sizes["total"] == sizes["buffers"] + sizes["json"] + sizes["esm"]


def test_initial_payload_is_small_for_long_inputs() -> None:
    """12 heads x 1,024 tokens: the first paint needs thumbnails and one window, not the patterns."""
    n = 1024
    pats = np.zeros((1, 12, n, n), dtype=np.float16)
    pats[..., 0] = 1.0
    w = AttentionWidget.from_patterns(pats, [f"w{i}" for i in range(n)], scores=False, snapshot=False)
    sizes = w.payload_size()
    assert sizes["buffers"] == 12 * 32 * 32 + 48 * 48 * 2  # uint8 thumbnails + the float16 window
    assert sizes["total"] < pats.nbytes / 50


# --- static snapshot --------------------------------------------------------------------------
def test_mimebundle_has_live_view_and_static_snapshot(widget: AttentionWidget) -> None:
    if not BUNDLE.is_file():
        pytest.skip("front end not built (npm run build)")
    data, _ = widget._repr_mimebundle_()
    assert data["application/vnd.jupyter.widget-view+json"]["model_id"] == widget.model_id
    assert data[SNAPSHOT_MIME] == {"version": 1, "html": "text/html"}
    html = data["text/html"]
    assert 'data-iw-static="attention"' in html and '<script type="module">' in html
    assert "data:image/png;base64," in html  # the script-free fallback
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), "the snapshot must not load anything"
    doc = json.loads(re.search(r'<script type="application/json" class="iw-static-data">(.*?)</script>', html, re.S)
                     .group(1).replace("<\\/", "</"))
    assert doc["state"]["layer"] == 1 and doc["patterns"][0] is not None  # small enough to embed everything
    w2 = AttentionWidget(widget.data, snapshot=False)
    assert "text/html" not in w2._repr_mimebundle_()[0]


def test_widget_module_does_not_import_torch() -> None:
    code = "import sys, interp_widget.widgets.attention; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
