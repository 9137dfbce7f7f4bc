"""The result heatmap and the patching widget (Python side): results as heatmap data, the display
hook, the widget's commands and their typed error replies, runs in a worker thread (progress, cancel,
result replacing the old one), a head's attention on the clean and corrupted prompt, the snapshot."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import types
from typing import Any

import numpy as np
import pytest
import torch
import traitlets
from _widget_comm import Sent, command

import interp_widget as iw
from interp_widget.analysis.heads import head_scores
from interp_widget.analysis.metrics import kl_divergence, logit_diff, loss, probability
from interp_widget.analysis.patching import patch
from interp_widget.analysis.path_patching import path_patch
from interp_widget.schema import decode, pack
from interp_widget.schema.patching import HeatmapData, PatchingState
from interp_widget.widgets import _patching_run
from interp_widget.widgets._display import register
from interp_widget.widgets._patching_run import model_lock, split_prompts
from interp_widget.widgets.attention import SNAPSHOT_MIME
from interp_widget.widgets.heatmap import BUNDLE, choose_axes, heatmap_data, result_mimebundle
from interp_widget.widgets.patching import PatchingWidget, patching_widget

pytestmark = pytest.mark.filterwarnings("ignore:HookedTransformer is deprecated:DeprecationWarning")

CLEAN, CORRUPTED = "abcdefgabcdefg", "abcdefgabczefg"  # BOS + 14 characters; they differ at position 11


def _hooked(attn_only: bool, seed: int) -> Any:
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    from interp_widget.zoo.tokenizer import build_tokenizer

    cfg = HookedTransformerConfig(n_layers=2, d_model=16, n_heads=4, d_head=4, n_ctx=48, d_vocab=72,
                                  attn_only=attn_only, d_mlp=None if attn_only else 32,
                                  act_fn=None if attn_only else "gelu", seed=seed, normalization_type="LN")
    ht = HookedTransformer(cfg)
    ht.set_tokenizer(build_tokenizer())
    return ht.eval()


@pytest.fixture(scope="module")
def hooked() -> Any:
    return _hooked(attn_only=True, seed=0)


@pytest.fixture(scope="module")
def model(hooked: Any) -> iw.Model:
    return iw.load(hooked, name="tiny")


@pytest.fixture(scope="module")
def mlp_model() -> iw.Model:
    return iw.load(_hooked(attn_only=False, seed=1), name="tiny-mlp")


def request(**kw: Any) -> dict[str, Any]:
    return {"clean": CLEAN, "corrupted": CORRUPTED, "answer": "e", "wrong": "z", "component": "heads", **kw}


# --- results as heatmaps -------------------------------------------------------------------------
def test_sweep_result_as_heatmap(model: iw.Model) -> None:
    res = patch(model, CLEAN, CORRUPTED, logit_diff("e", "z"), sites="heads")
    data = heatmap_data(res)
    assert data.axes == ["layer", "head"] and (data.rows, data.cols) == (0, 1)
    assert data.labels == [["0", "1"], ["0", "1", "2", "3"]]
    assert data.values.dtype == "float32"
    np.testing.assert_array_equal(decode(data.values), res.values.numpy().astype(np.float32))
    assert data.clean_metric == pytest.approx(res.clean_metric)
    assert data.corrupted_metric == pytest.approx(res.corrupted_metric)
    assert data.scale == "diverging" and data.center == pytest.approx(res.corrupted_metric)  # the unpatched run
    assert "forward passes" in data.note
    norm = heatmap_data(patch(model, CLEAN, CORRUPTED, logit_diff("e", "z"), sites="heads", normalize=True))
    assert norm.normalized and norm.center == 0.0
    noise = heatmap_data(patch(model, CLEAN, CORRUPTED, logit_diff("e", "z"), sites="heads", direction="noise"))
    assert noise.center == pytest.approx(noise.clean_metric)  # noising starts from the clean run


def test_axes_choice_and_slices(model: iw.Model) -> None:
    by_pos = heatmap_data(patch(model, CLEAN, CORRUPTED, logit_diff("e", "z"), sites="heads_by_pos"))
    assert by_pos.axes == ["layer", "pos", "head"]
    assert (by_pos.rows, by_pos.cols) == (0, 2) and by_pos.slice[1] == len(CLEAN)  # the last position first
    assert by_pos.labels[1][11] == "11:z"  # positions are labelled with the patched (corrupted) run's tokens
    resid = heatmap_data(patch(model, CLEAN, CORRUPTED, logit_diff("e", "z"), sites="resid_pre"))
    assert (resid.axes, resid.rows, resid.cols) == (["layer", "pos"], 0, 1)
    paths = heatmap_data(path_patch(model, CLEAN, CORRUPTED, logit_diff("e", "z"), receivers=["L1H0.k", "logits"]))
    assert paths.axes == ["receiver", "layer", "head"] and (paths.rows, paths.cols) == (1, 2)
    assert np.isnan(decode(paths.values)[0, 1]).all()  # senders in the receiver's layer do not exist
    assert choose_axes(["site"]) == (0, None)
    assert choose_axes(["a", "b", "c"]) == (1, 2)
    with pytest.raises(ValueError, match="two different axes"):
        HeatmapData.model_validate({**resid.model_dump(), "cols": 0})
    with pytest.raises(TypeError, match="SweepResult or HeadScores"):
        heatmap_data(object())


def test_head_scores_as_heatmap(model: iw.Model) -> None:
    scores = head_scores(model, seq_len=8, n_prompts=4)
    data = heatmap_data(scores)
    assert data.axes == ["score", "layer", "head"] and (data.rows, data.cols) == (1, 2)
    assert data.labels[0] == ["previous token", "induction", "duplicate token"]
    assert data.scale == "sequential"
    got = decode(data.values)
    for i, kind in enumerate(scores.kinds):
        np.testing.assert_allclose(got[i], scores[kind].numpy(), rtol=0, atol=0, equal_nan=True)


def test_results_display_as_heatmap_widgets(model: iw.Model) -> None:
    from IPython.core.formatters import DisplayFormatter

    shell = types.SimpleNamespace(display_formatter=DisplayFormatter())
    assert register(shell)
    res = patch(model, CLEAN, CORRUPTED, logit_diff("e", "z"), sites="heads")
    data, _ = shell.display_formatter.format(res)
    assert data["text/plain"] == repr(res)
    view = data["application/vnd.jupyter.widget-view+json"]
    from ipywidgets.widgets.widget import _instances

    w = _instances[view["model_id"]]
    assert isinstance(w, PatchingWidget) and w.last_result is res and not w.controls
    np.testing.assert_array_equal(decode(w.result["values"]), res.values.numpy())
    scores = head_scores(model, seq_len=8, n_prompts=2)
    data, _ = shell.display_formatter.format(scores)
    assert data["text/plain"] == repr(scores) and "application/vnd.jupyter.widget-view+json" in data
    assert register(None) is False or "IPython" in sys.modules  # outside IPython: nothing registered


def test_snapshot_of_a_result(model: iw.Model) -> None:
    if not BUNDLE.is_file():
        pytest.skip("front end not built (npm run build)")
    res = patch(model, CLEAN, CORRUPTED, logit_diff("e", "z"), sites="resid_pre")
    data, _ = result_mimebundle(res)
    assert data[SNAPSHOT_MIME] == {"version": 1, "html": "text/html"}
    html = data["text/html"]
    assert 'data-iw-static="heatmap"' in html and '<script type="module">' in html
    assert "data:image/png;base64," in html  # the script-free fallback
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), "the snapshot must not load anything"
    doc = json.loads(re.search(r'<script type="application/json" class="iw-static-data">(.*?)</script>', html, re.S)
                     .group(1).replace("<\\/", "</"))
    assert doc["kind"] == "heatmap" and doc["state"]["controls"] is False
    np.testing.assert_array_equal(decode(doc["state"]["result"]["values"]), res.values.numpy())  # base64 there
    w = PatchingWidget.from_result(res, snapshot=False)
    assert "text/html" not in w._repr_mimebundle_()[0]


# --- the widget's state ------------------------------------------------------------------------------
def test_state_and_binary_buffers(model: iw.Model) -> None:
    w = patching_widget(model, CLEAN, CORRUPTED, answer="e", wrong="z")
    res = w.wait()
    assert w.status["state"] == "done" and w.status["done"] == w.status["total"] > 0
    ref = patch(model, CLEAN, CORRUPTED, logit_diff("e", "z"), sites="heads")
    torch.testing.assert_close(res.values, ref.values, rtol=0, atol=1e-6)
    state = w.state_model()
    assert isinstance(state, PatchingState) and state.result is not None and state.controls
    assert not state.has_mlp and (state.n_layers, state.n_heads) == (2, 4)
    _, paths, buffers = pack(w.get_state())
    assert ["result", "values", "data"] in paths  # float32 values travel as a binary buffer
    assert len(buffers[paths.index(["result", "values", "data"])]) == 2 * 4 * 4
    assert "logit diff 'e' − 'z'" in w.result["title"]
    assert w.last_result is res and "showing" in repr(w)
    with pytest.raises(traitlets.TraitError, match="metric"):
        w.metric = "accuracy"
    with pytest.raises(traitlets.TraitError, match="component"):
        w.component = "neurons"


def test_result_with_its_model_and_prompts_opens_heads(model: iw.Model) -> None:
    res = patch(model, CLEAN, CORRUPTED, logit_diff("e", "z"), sites="heads")
    w = iw.show(res, model, clean=CLEAN, corrupted=CORRUPTED, answer="e", wrong="z")
    assert w.controls and w.last_result is res and not w.running  # shown, not re-run
    reply = command(w, "open_head", {"layer": 0, "head": 3})
    assert reply["ok"] is True and reply["prompts"][1]["tokens"][11] == "z"
    assert command(iw.show(res, model, clean=" \n"), "open_head", {"layer": 0, "head": 0})["ok"] is False


def test_prompts_one_per_line(model: iw.Model) -> None:
    assert split_prompts("ab\r\n\n  \ncd") == ["ab", "cd"]
    w = patching_widget(model, ["abcabc", "xyzxyz"], ["abcabd", "xyzxyw"], answer="c", wrong="d")
    assert w.clean == "abcabc\nxyzxyz"
    res = w.wait()
    ref = patch(model, ["abcabc", "xyzxyz"], ["abcabd", "xyzxyw"], logit_diff("c", "d"), sites="heads")
    torch.testing.assert_close(res.values, ref.values, rtol=0, atol=1e-6)
    assert res.meta["n_prompts"] == 2
    with pytest.raises(iw.InputMismatchError, match="newline"):
        PatchingWidget(model, clean=["a\nb"])


# --- commands ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("component", "sweep", "metric"), [
    ("heads", "heads", {"metric": "logit_diff"}),
    ("resid", "resid_pre", {"metric": "probability"}),
    ("attn", "attn_out", {"metric": "kl"}),
    ("heads", "heads", {"metric": "loss", "normalize": True}),
])
def test_start_run_matches_patch(model: iw.Model, component: str, sweep: str, metric: dict[str, Any]) -> None:
    w = PatchingWidget(model)
    reply = command(w, "start_run", request(component=component, **metric))
    assert reply["ok"] is True and reply["n_prompts"] == 1 and reply["n_tokens"] == len(CLEAN) + 1
    res = w.wait()
    m = {"logit_diff": logit_diff("e", "z"), "probability": probability("e"), "kl": kl_divergence(),
         "loss": loss()}[metric["metric"]]
    ref = patch(model, CLEAN, CORRUPTED, m, sites=sweep, normalize=metric.get("normalize", False))
    assert res.sites == ref.sites and res.is_normalized == ref.is_normalized
    torch.testing.assert_close(res.values, ref.values, rtol=0, atol=1e-5)
    np.testing.assert_allclose(decode(w.result["values"]), ref.values.numpy(), atol=1e-5)
    sts = w._test_sent.statuses()  # type: ignore[attr-defined]
    assert sts[0]["state"] == "running" and sts[-1]["state"] == "done" and w.status == sts[-1]
    assert all(s["run_id"] == reply["run_id"] and s["unit"] == "runs" for s in sts)
    assert [s["done"] for s in sts] == sorted(s["done"] for s in sts)  # progress only goes forward


def test_path_patching_run(model: iw.Model) -> None:
    w = PatchingWidget(model)
    reply = command(w, "start_run", request(component="path", receiver="L1H2.k"))
    assert reply["ok"] is True
    res = w.wait()
    ref = path_patch(model, CLEAN, CORRUPTED, logit_diff("e", "z"), receivers="L1H2.k")
    assert res.kind == "path_patching" and res.meta["receivers"] == ref.meta["receivers"]
    assert w.status["unit"] == "permille" and w.status["done"] == w.status["total"] == 1000  # two sweeps
    torch.testing.assert_close(res.values, ref.values, rtol=0, atol=1e-5, equal_nan=True)


def test_mlp_component(model: iw.Model, mlp_model: iw.Model) -> None:
    w = PatchingWidget(mlp_model)
    assert w.has_mlp
    assert command(w, "start_run", request(component="mlp"))["ok"] is True
    ref = patch(mlp_model, CLEAN, CORRUPTED, logit_diff("e", "z"), sites="mlp_out")  # while the sweep may run
    torch.testing.assert_close(w.wait().values, ref.values, rtol=0, atol=1e-5)
    reply = command(PatchingWidget(model), "start_run", request(component="mlp"))
    assert reply["ok"] is False and reply["error"]["type_name"] == "UnknownSiteError"
    assert "attention-only" in reply["error"]["message"]


@pytest.mark.parametrize(("msg", "type_name", "pattern"), [
    (request(corrupted=CORRUPTED + "x"), "InputMismatchError",
     rf"clean has {len(CLEAN) + 1} tokens, corrupted has {len(CLEAN) + 2}"),
    (request(clean="abc\nabd", corrupted="xyz"), "InputMismatchError", "2 clean prompt.* but 1 corrupted"),
    (request(clean="abc\nabcd", corrupted="abc\nabcd"), "InputMismatchError", "line 1: 4, line 2: 5"),
    (request(answer="ab"), "InputMismatchError", "'ab' is 2 tokens"),
    (request(wrong=""), "InputMismatchError", "answer token and a wrong token"),
    (request(metric="probability", answer=""), "InputMismatchError", "probability needs an answer"),
    (request(component="path", receiver="L7H0.k"), "SiteIndexError", "layer 7 is out of range"),
    (request(metric="accuracy"), "ValidationError", "metric"),
    (request(clean=""), "ValidationError", "clean"),
    (request(clean="x" * 60, corrupted="y" * 60), "ContextLengthError", "48"),
    ("not an object", "TypeError", "expects an object"),
])
def test_bad_runs_reply_with_typed_errors(model: iw.Model, msg: Any, type_name: str, pattern: str) -> None:
    w = PatchingWidget(model)
    reply = command(w, "start_run", msg)
    assert reply["ok"] is False
    assert reply["error"]["type_name"] == type_name
    assert re.search(pattern, reply["error"]["message"]), reply["error"]["message"]
    assert not w.running and w.status["state"] == "idle"  # nothing started: the kernel is free
    assert command(w, "start_run", request())["ok"] is True  # and the widget still works
    w.wait()


def test_unknown_command_and_no_model(model: iw.Model) -> None:
    w = PatchingWidget(model)
    sent = Sent(w)
    w._handle_custom_msg({"kind": "anywidget-command", "id": "x", "name": "explode", "msg": {}}, [])
    (content, _), = sent.messages
    assert content["response"]["reply"]["error"]["type_name"] == "LookupError"
    assert "start_run" in content["response"]["reply"]["error"]["message"]
    res = patch(model, CLEAN, CORRUPTED, logit_diff("e", "z"), sites="heads")
    bare = PatchingWidget.from_result(res)
    reply = command(bare, "start_run", request())
    assert reply["error"]["type_name"] == "InputMismatchError" and "no model attached" in reply["error"]["message"]
    reply = command(bare, "open_head", {"layer": 0, "head": 0})
    assert reply["error"]["type_name"] == "InputMismatchError" and "no model attached" in reply["error"]["message"]


def test_a_second_run_while_one_runs_is_refused(model: iw.Model) -> None:
    w = PatchingWidget(model)
    lock = model_lock(model)
    lock.acquire()  # the worker waits for the model
    try:
        assert command(w, "start_run", request())["ok"] is True
        reply = command(w, "start_run", request())
        assert reply["error"]["type_name"] == "InputMismatchError" and "already in progress" in reply["error"]["message"]
    finally:
        lock.release()
    assert w.wait() is not None and w.status["state"] == "done"


def test_cancel_stops_a_run_midway(model: iw.Model, monkeypatch: pytest.MonkeyPatch) -> None:
    w = PatchingWidget(model, max_batch=1)  # one patched run per chunk: a progress call after each
    first = command(w, "start_run", request())
    w.wait()
    old = w.last_result
    reached, go_on = threading.Event(), threading.Event()
    real = _patching_run.execute

    def gated(model: Any, p: Any, progress: Any, **kw: Any) -> Any:
        def gate(done: int, total: int) -> None:
            if done == 2:
                reached.set()
                go_on.wait(10)
            progress(done, total)

        return real(model, p, gate, **kw)

    monkeypatch.setattr(_patching_run, "execute", gated)
    started = command(w, "start_run", request(component="resid"))
    assert started["run_id"] > first["run_id"]
    assert reached.wait(10)
    assert w.running
    reply = command(w, "cancel_run", {"run_id": started["run_id"]})
    assert reply == {"ok": True, "run_id": started["run_id"], "cancelled": True}
    go_on.set()
    assert w.wait() is old  # the old result stays on screen
    assert w.status["state"] == "cancelled" and w.status["done"] == 2 and w.status["total"] > 2
    assert "cancelled after 2 of" in w.status["message"]
    assert w.result["sites"] == "heads"
    assert command(w, "cancel_run", {"run_id": None}) == {"ok": True, "run_id": started["run_id"], "cancelled": False}
    assert command(w, "cancel_run", {"run_id": 999})["cancelled"] is False


def test_python_run_and_cancel_api(model: iw.Model) -> None:
    w = PatchingWidget(model)
    assert w.cancel() is False
    with pytest.raises(iw.InputMismatchError, match="same number of tokens"):
        w.run(clean="abc", corrupted="abcd", answer="a", wrong="b")
    with pytest.raises(TypeError, match="unknown field"):
        w.run(colour="red")
    w.run(wait=True, clean=CLEAN, corrupted=CORRUPTED, answer="e", wrong="z", component="resid")
    assert w.last_result.sites == "resid_pre" and w.component == "resid"
    lock = model_lock(model)
    lock.acquire()
    try:
        w.run()
        assert w.cancel() is True
    finally:
        lock.release()
    assert w.wait().sites == "resid_pre" and w.status["state"] == "cancelled"
    assert "before it started" in w.status["message"]


def test_failed_run_reports_error_status(model: iw.Model, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        msg = "out of memory on purpose"
        raise RuntimeError(msg)

    w = PatchingWidget(model)
    monkeypatch.setattr(_patching_run, "execute", boom)
    assert command(w, "start_run", request())["ok"] is True
    with pytest.raises(RuntimeError, match="on purpose"):
        w.wait()
    assert w.status["state"] == "error" and w.status["error_type"] == "RuntimeError"
    assert w.status["message"] == "out of memory on purpose" and w.result is None


# --- a head's attention -----------------------------------------------------------------------------
def test_open_head_gives_clean_and_corrupted_patterns(model: iw.Model, hooked: Any) -> None:
    w = patching_widget(model, CLEAN, CORRUPTED, answer="e", wrong="z")
    w.wait()
    reply = command(w, "open_head", {"layer": 1, "head": 2, "window_size": 8})
    assert reply["ok"] is True and reply["names"] == ["clean", "corrupted"]
    assert [p["tokens"] for p in reply["prompts"]] == [hooked.to_str_tokens(CLEAN), hooked.to_str_tokens(CORRUPTED)]
    for i, text in enumerate((CLEAN, CORRUPTED)):
        _, cache = hooked.run_with_cache(text)
        ref = cache["blocks.1.attn.hook_pattern"][0, 2].numpy()
        win = reply["windows"][i]
        assert (win["prompt"], win["layer"], win["head"], win["q1"], win["k1"]) == (i, 1, 2, 8, 8)
        np.testing.assert_allclose(decode(win["values"]).astype(np.float32), ref[:8, :8], atol=1e-3)
        more = command(w, "get_pattern", {"prompt": i, "layer": 1, "head": 2, "q0": 8, "q1": 15, "k0": 0, "k1": 15,
                                          "precision": "float32"})
        np.testing.assert_allclose(decode(more["window"]["values"]), ref[8:15, :15], atol=1e-3)
    bad = command(w, "open_head", {"layer": 1, "head": 4})
    assert bad["error"]["type_name"] == "SiteIndexError" and "head 4 is out of range" in bad["error"]["message"]
    # a new run with other prompts: the head's patterns follow the result on screen
    w.run(wait=True, clean="xyzxyz", corrupted="xyzxyw", answer="z", wrong="w")
    assert command(w, "open_head", {"layer": 0, "head": 0})["prompts"][1]["tokens"][-1] == "w"


def test_the_model_runs_correctly_from_a_cell_during_a_sweep(mlp_model: iw.Model,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A cell runs the model while the worker sweeps it: the forward passes take turns, both are right."""
    w = PatchingWidget(mlp_model, max_batch=1)
    reached, go_on = threading.Event(), threading.Event()
    real = _patching_run.execute

    def gated(model: Any, p: Any, progress: Any, **kw: Any) -> Any:
        def gate(done: int, total: int) -> None:
            if done == 3:
                reached.set()
                go_on.wait(10)
            progress(done, total)

        return real(model, p, gate, **kw)

    monkeypatch.setattr(_patching_run, "execute", gated)
    assert command(w, "start_run", request(component="resid"))["ok"] is True
    assert reached.wait(10)
    go_on.set()  # the sweep goes on in the worker while this thread (the "cell") runs the model
    during = patch(mlp_model, CLEAN, CORRUPTED, logit_diff("e", "z"), sites="mlp_out", max_batch=1)
    heads = command(w, "open_head", {"layer": 1, "head": 0})  # the attention view's forward passes too
    res = w.wait()
    monkeypatch.undo()
    after = patch(mlp_model, CLEAN, CORRUPTED, logit_diff("e", "z"), sites="mlp_out")
    torch.testing.assert_close(during.values, after.values, rtol=0, atol=1e-5)
    ref = patch(mlp_model, CLEAN, CORRUPTED, logit_diff("e", "z"), sites="resid_pre")
    torch.testing.assert_close(res.values, ref.values, rtol=0, atol=1e-5)
    assert heads["ok"] is True
    assert getattr(mlp_model.backend, "_iw_run_lock", None) is not None


def test_widget_modules_do_not_import_torch() -> None:
    code = ("import sys, interp_widget as iw, interp_widget.widgets.patching, interp_widget.widgets.heatmap; "
            "iw.patching_widget; iw.show; assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
