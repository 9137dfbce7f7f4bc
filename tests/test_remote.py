"""Remote tracing without a server: configuration, the key's secrecy, error messages, and analyses
through nnsight's ``remote="local"`` path (the same serialise / deserialise as a real request).

The real NDIF server is exercised in ``test_remote_ndif.py``.
"""

from __future__ import annotations

import pickle
import sys
from typing import Any

import _tiny_models as tiny
import pytest
import torch

import interp_widget as iw
from interp_widget.models.model import Model
from interp_widget.remote import (
    RemoteAuthError,
    RemoteCancelledError,
    RemoteJobError,
    RemoteRefusedError,
    RemoteTimeoutError,
    RemoteUnreachableError,
    RemoteVersionError,
    Secret,
)
from interp_widget.remote.errors import classify
from interp_widget.remote.status import RemoteJob, parse_progress
from interp_widget.tracing.nnsight_backend import NNsightBackend

KEY = "iw-unit-secret-5f0c1d2e"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> Any:
    from nnsight import CONFIG

    for var in ("NDIF_HOST", "NDIF_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    host, key = CONFIG.API.HOST, CONFIG.API.APIKEY
    CONFIG.API.HOST, CONFIG.API.APIKEY = iw.remote.DEFAULT_HOST, None
    yield
    CONFIG.API.HOST, CONFIG.API.APIKEY = host, key


# --- configuration ---------------------------------------------------------------------------


def test_arguments_then_environment_read_at_call_time_then_nnsight_config(monkeypatch: pytest.MonkeyPatch) -> None:
    from nnsight import CONFIG

    assert iw.remote.resolve().host == iw.remote.DEFAULT_HOST
    CONFIG.API.HOST, CONFIG.API.APIKEY = "http://from-config:1", "cfg-key"
    cfg = iw.remote.resolve()
    assert (cfg.host, cfg.host_from, cfg.api_key.reveal(), cfg.key_from) == ("http://from-config:1", "nnsight config",
                                                                              "cfg-key", "nnsight config")
    monkeypatch.setenv("NDIF_HOST", "http://from-env:2/")  # set after nnsight was imported: still used
    monkeypatch.setenv("NDIF_API_KEY", KEY)
    cfg = iw.remote.resolve()
    assert (cfg.host, cfg.api_key.reveal(), cfg.key_from) == ("http://from-env:2", KEY, "NDIF_API_KEY")
    cfg = iw.remote.resolve("http://arg:3", "arg-key")
    assert (cfg.host, cfg.api_key.reveal(), cfg.host_from) == ("http://arg:3", "arg-key", "argument")


def test_configure_applies_to_nnsight_after_import(monkeypatch: pytest.MonkeyPatch) -> None:
    from nnsight import CONFIG

    monkeypatch.setenv("NDIF_API_KEY", KEY)
    iw.remote.configure(host="http://127.0.0.1:9")
    assert (CONFIG.API.HOST, CONFIG.API.APIKEY) == ("http://127.0.0.1:9", KEY)


def test_bad_host_is_named() -> None:
    with pytest.raises(ValueError, match=r"'api.ndif.us' \(argument\) must start with http"):
        iw.remote.resolve("api.ndif.us")


def test_the_key_never_prints_or_pickles() -> None:
    cfg = iw.remote.resolve("http://h:1", KEY)
    for text in (repr(cfg), str(cfg), repr(cfg.api_key), str(cfg.api_key), f"{cfg.api_key}", f"{cfg}"):
        assert KEY not in text
    with pytest.raises(TypeError, match="not pickled"):
        pickle.dumps(cfg)
    assert cfg.api_key == Secret(KEY) and cfg.api_key.reveal() == KEY


# --- errors ------------------------------------------------------------------------------------
# the messages are NDIF 0.1.2's own (services/api/auth.py, versioning.py, modeling/base.py)


@pytest.mark.parametrize(("message", "code", "kind", "advice"), [
    ("Invalid API key.", 403, RemoteAuthError, "NDIF_API_KEY"),
    ("Missing or invalid API key. Please visit https://login.ndif.us/ to create a new one.", 401, RemoteAuthError,
     "login.ndif.us"),
    ("Client nnsight version 0.8.1 is below the minimum supported 99.0. Please `pip install --upgrade nnsight`.",
     400, RemoteVersionError, "pip install --upgrade nnsight"),
    ("Your job exceeded the execution timeout of 30.0s.", None, RemoteTimeoutError, "smaller request"),
    ("Your job was cancelled or preempted by the server.", None, RemoteCancelledError, "cancelled"),
    ("Service temporarily unavailable: compute backend is reconnecting.", 503, RemoteUnreachableError, "Try again"),
    ("ModuleNotFoundError: No module named 'mine'", None, RemoteRefusedError, "nnsight.register"),
    ("ZeroDivisionError: division by zero", None, RemoteJobError, "division by zero"),
])
def test_errors_name_what_to_do(message: str, code: int | None, kind: type, advice: str) -> None:
    err = classify(message, "http://h:1", status_code=code)
    assert type(err) is kind and advice in str(err) and "http://h:1" in str(err)


def test_a_malformed_key_echoed_by_the_server_is_redacted() -> None:
    err = classify(f"Invalid API key format: '{KEY}'. API keys must be in the format: x", "http://h", status_code=400)
    assert isinstance(err, RemoteAuthError) and KEY not in str(err)


def test_progress_lines_and_job_states() -> None:
    assert parse_progress("noise\niw-progress 3/12\n") == (3, 12)
    assert parse_progress("nothing") is None
    job = RemoteJob("http://h")
    for s in ("RECEIVED", "QUEUED", "QUEUED", "RUNNING"):
        job.record(s)
    job.record("RUNNING", done=2, total=5)
    assert job.states() == ["RECEIVED", "QUEUED", "RUNNING"] and job.status.line().startswith("RUNNING 2/5")
    job.cancel()
    assert job.cancelled


# --- remote="local": the serialised path, in-process ---------------------------------------


@pytest.fixture(scope="module")
def model_dir() -> Any:
    with tiny.saved_hf_gpt2() as d:
        yield d


@pytest.fixture(scope="module")
def sim(model_dir: str) -> Model:
    return iw.load(model_dir, remote=True, mode="local")


@pytest.fixture(scope="module")
def local() -> Model:
    return Model(NNsightBackend(tiny.hf_gpt2(), tokenizer=tiny.tokenizer()))


CLEAN, CORRUPTED = tiny.text(7, seed=3), tiny.text(7, seed=4)


def metric(logits: torch.Tensor) -> torch.Tensor:
    return logits[:, -1, 5] - logits[:, -1, 6]


def test_load_remote_makes_a_remote_model(sim: Model) -> None:
    assert iw.remote.is_remote(sim) and sim.spec.n_layers == 2 and sim.spec.n_heads == 4
    assert "RemoteNNsightBackend" in repr(sim)


def test_capture_through_the_serialised_path(sim: Model, local: Model) -> None:
    toks = local.to_tokens(CLEAN)
    r, r0 = sim.run(toks, capture=["blocks.1.attn.hook_pattern"]), local.run(toks, capture=["blocks.1.attn.hook_pattern"])
    torch.testing.assert_close(r["blocks.1.attn.hook_pattern"], r0["blocks.1.attn.hook_pattern"], atol=1e-5, rtol=0)


def test_whole_analyses_in_one_call(sim: Model, local: Model) -> None:
    res = iw.remote.run(sim, iw.patch, CLEAN, CORRUPTED, metric, sites="heads", max_batch=4)
    torch.testing.assert_close(res.values, iw.patch(local, CLEAN, CORRUPTED, metric, sites="heads", max_batch=4).values,
                               atol=1e-5, rtol=0)
    assert sim.backend.last_job.round_trips == 1
    att = iw.remote.run(sim, iw.attribute, CLEAN, CORRUPTED, metric)
    torch.testing.assert_close(att.values, iw.attribute(local, CLEAN, CORRUPTED, metric).values, atol=1e-5, rtol=0)


def test_circuit_discovery_in_one_call(sim: Model, local: Model) -> None:
    g = iw.remote.run(sim, iw.circuit, CLEAN, CORRUPTED, metric, method="eap")
    ref = iw.circuit(local, CLEAN, CORRUPTED, metric, method="eap")
    torch.testing.assert_close(g.scores, ref.scores, atol=1e-5, rtol=0)
    assert sim.backend.last_job.round_trips == 1


def test_run_remote_is_a_plain_call_on_a_local_model(local: Model) -> None:
    res = iw.remote.run(local, iw.patch, CLEAN, CORRUPTED, metric, sites="heads")
    assert res.values.shape == (2, 4)


def test_shipped_sources_install_and_leave_the_process_as_it_was(local: Model) -> None:
    """What the server does with the shipped package: import it from source, run, restore sys.modules."""
    from interp_widget.tracing.remote import _bootstrap, _server, _ship

    before = {k: id(v) for k, v in sys.modules.items() if k.startswith("interp_widget")}
    src = dict(_ship.for_call(_server.run))
    src["__digest__"] = "not-the-running-copy"
    assert "interp_widget.widgets" not in src and "anywidget" not in src["interp_widget"][1]
    toks = local.to_tokens(CLEAN)
    call = _ship.dumps_call(_server.run, "m", (toks,), {"capture": ["blocks.0.hook_resid_post"]}, "n1",
                            "not-the-running-copy")
    nonce, out = pickle.loads(_bootstrap.serve(local.backend.root, src, call))
    assert nonce == "n1"
    torch.testing.assert_close(out.cache["blocks.0.hook_resid_post"],
                               local.run(toks, capture=["blocks.0.hook_resid_post"]).cache["blocks.0.hook_resid_post"])
    after = {k: id(v) for k, v in sys.modules.items() if k.startswith("interp_widget")}
    assert after == before


def test_wrapping_an_existing_nnsight_model(local: Model) -> None:
    import nnsight

    lm = nnsight.LanguageModel(tiny.hf_gpt2(), tokenizer=tiny.tokenizer())
    wrapped = iw.load(lm, remote=True, mode="local", tokenizer=tiny.tokenizer())
    assert iw.remote.is_remote(wrapped)
    toks = local.to_tokens(CLEAN)
    torch.testing.assert_close(wrapped.run(toks).logits, local.run(toks).logits, atol=1e-5, rtol=0)


def test_a_remote_model_refuses_to_be_pickled(sim: Model) -> None:
    with pytest.raises(TypeError, match="not pickled"):
        pickle.dumps(sim.backend)


def test_wrapping_something_that_is_not_a_hub_model_is_refused() -> None:
    with pytest.raises(iw.InterpWidgetError, match="cannot be sent"):
        iw.load(torch.nn.Linear(2, 2), remote=True)


def test_a_patching_widget_run_on_a_remote_model_is_one_request(sim: Model, local: Model) -> None:
    from interp_widget.schema.patching import RunRequest, RunStatus
    from interp_widget.widgets import _patching_run as pr

    req = RunRequest(clean=CLEAN, corrupted=CORRUPTED, metric="kl", component="heads")
    statuses: list[RunStatus] = []
    job = pr.Job(1, sim, pr.prepare(sim, req), on_status=statuses.append, on_done=lambda _: None)
    job.start()
    assert job.join(timeout=120)
    assert job.error is None and job.result is not None and job.status.state == "done"
    assert sim.backend.last_job.round_trips == 1  # the whole sweep travelled as one request
    assert statuses and statuses[0].state == "running"
    ref = pr.execute(local, pr.prepare(local, req), lambda done, total: None)
    torch.testing.assert_close(job.result.values, ref.values, atol=1e-5, rtol=0)
