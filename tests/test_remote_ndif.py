"""Remote analyses against the real NDIF 0.1.2 server stack on 127.0.0.1 (see ``tests/ndif/stack.py``).

One stack per module: Redis, a Ray head, NDIF's controller, dispatcher and API, moto as S3, and a tiny
seeded GPT-2 saved here and deployed on the CPU. Every analysis runs remotely and is compared with a
local run of the same weights (within 1e-4). The errors are produced by the real server where it can
produce them: an unreachable host, version gating (``NDIF_MIN_NNSIGHT_VERSION``), authentication
(NDIF's own auth policy over an in-memory key table instead of Postgres: ``tests/ndif/iw_ndif_auth.py``),
code it cannot load, a wait past a timeout, and a cancel that kills the job on the server.
Teardown kills every process group; the last check is that nothing is left running.
"""

from __future__ import annotations

import logging
import shutil
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import _tiny_models as tiny
import pytest
import torch

import interp_widget as iw
from interp_widget.models.model import Model
from interp_widget.remote import (
    RemoteAuthError,
    RemoteCancelledError,
    RemoteJob,
    RemoteRefusedError,
    RemoteTimeoutError,
    RemoteUnreachableError,
    RemoteVersionError,
)
from interp_widget.tracing.nnsight_backend import NNsightBackend

sys.path.insert(0, str(Path(__file__).parent / "ndif"))
from stack import NdifStack, free_port

pytestmark = [pytest.mark.ndif, pytest.mark.timeout(600)]

KEY = f"iw-secret-{uuid.uuid4().hex}"  # auth is off on the main API: the key only travels (and must not show)
TOL = 1e-4


@pytest.fixture(scope="module")
def model_dir() -> Any:
    with tiny.saved_hf_gpt2() as d:
        yield d


@pytest.fixture(scope="module")
def stack(model_dir: str) -> Any:
    import importlib.util

    missing = [what for what, ok in (("redis-server", shutil.which("redis-server")),
                                     ("the ndif package", importlib.util.find_spec("ndif")),
                                     ("ray", importlib.util.find_spec("ray")),
                                     ("moto_server", importlib.util.find_spec("moto"))) if not ok]
    if missing:  # a failure, not a skip: CI must run these tests
        pytest.fail(f"the NDIF test stack needs {', '.join(missing)}: run `make install-test system-deps` "
                    "(the ndif-server extra, ndif==0.1.2 and Debian's redis-server)")
    s = NdifStack(model_dir).start()
    try:
        yield s
    finally:
        s.stop()
        left = s.leftovers()
        assert not left, f"processes left running after teardown: {left}"


@pytest.fixture(scope="module")
def remote(stack: NdifStack, model_dir: str) -> Model:
    m = iw.load(model_dir, remote=True, host=stack.host, api_key=KEY, timeout=300)
    m.backend.operator_redis_url = stack.redis_url  # a self-hosted server: cancel kills the job there
    return m


@pytest.fixture(scope="module")
def first_job(remote: Model) -> RemoteJob:
    """The module's first request deploys the model (its statuses include DEPLOYING)."""
    remote.run(remote.to_tokens("a b c"))
    assert remote.backend.last_job is not None
    return remote.backend.last_job


@pytest.fixture(scope="module")
def local() -> Model:
    return Model(NNsightBackend(tiny.hf_gpt2(), tokenizer=tiny.tokenizer()))


CLEAN, CORRUPTED = tiny.text(8, seed=1), tiny.text(8, seed=2)


def metric(logits: torch.Tensor) -> torch.Tensor:
    return logits[:, -1, 3] - logits[:, -1, 4]


def _close(a: torch.Tensor, b: torch.Tensor) -> None:
    assert a.shape == b.shape
    assert torch.allclose(a, b, atol=TOL, rtol=0, equal_nan=True), (a - b).abs().nan_to_num().max()


# --- analyses -------------------------------------------------------------------------------


def test_status_goes_through_deploying_queued_running_completed(first_job: RemoteJob) -> None:
    states = first_job.states()
    for s in ("SUBMITTING", "RECEIVED", "DEPLOYING", "RUNNING", "COMPLETED"):
        assert s in states, states
    assert states.index("DEPLOYING") < states.index("RUNNING") < states.index("COMPLETED")
    assert "QUEUED" in states or "DISPATCHED" in states


def test_capture_and_attention_fetch(remote: Model, local: Model, first_job: RemoteJob) -> None:
    toks = local.to_tokens(CLEAN)
    sites = ["blocks.0.attn.hook_pattern", "blocks.1.attn.hook_pattern", "blocks.1.hook_resid_post"]
    r, r0 = remote.run(toks, capture=sites), local.run(toks, capture=sites)
    for s in sites:
        _close(r.cache[s], r0.cache[s])
    assert r.logits is not None and r0.logits is not None
    _close(r.logits, r0.logits)
    assert remote.backend.last_job.round_trips == 1


def test_head_scores(remote: Model, local: Model, first_job: RemoteJob) -> None:
    kw = {"seq_len": 6, "n_prompts": 4}
    res, ref = iw.remote.run(remote, iw.head_scores, **kw), iw.head_scores(local, **kw)
    assert res.kinds == ref.kinds
    for k in ref.kinds:
        _close(res[k], ref[k])
    assert remote.backend.last_job.round_trips == 1


def test_head_patching_sweep_is_one_request(remote: Model, local: Model, first_job: RemoteJob) -> None:
    seen: list[tuple[int, int]] = []
    res = iw.remote.run(remote, iw.patch, CLEAN, CORRUPTED, metric, sites="heads", max_batch=4,
                        progress=lambda d, t: seen.append((d, t)))
    ref = iw.patch(local, CLEAN, CORRUPTED, metric, sites="heads", max_batch=4)
    _close(res.values, ref.values)
    job = remote.backend.last_job
    assert job.round_trips == 1
    assert res.meta["forward_passes"] > 2  # several batched passes, all on the server
    assert job.bytes_received < 20_000  # the result, not the activations
    assert seen and seen[-1][0] == seen[-1][1] > 0  # progress came back from the server while it ran


def test_patching_widget_run_is_one_request_and_shows_the_server_states(remote: Model, local: Model,
                                                                        first_job: RemoteJob) -> None:
    from interp_widget.schema.patching import RunRequest, RunStatus
    from interp_widget.widgets import _patching_run as pr

    req = RunRequest(clean=CLEAN, corrupted=CORRUPTED, metric="kl", component="heads")
    statuses: list[RunStatus] = []
    before = len(remote.backend.jobs)
    job = pr.Job(1, remote, pr.prepare(remote, req), on_status=statuses.append, on_done=lambda _: None)
    job.start()
    assert job.join(timeout=300)
    assert job.error is None and job.result is not None and job.status.state == "done", job.error
    assert len(remote.backend.jobs) - before == 1  # the widget's sweep travelled as ONE request
    lines = [s.message for s in statuses if s.state == "running" and s.message]
    assert any(line.startswith("RUNNING") for line in lines) and lines[-1].startswith("COMPLETED"), lines
    _close(job.result.values, pr.execute(local, pr.prepare(local, req), lambda d, t: None).values)


def test_analyses_called_directly_run_one_request_per_pass(remote: Model, local: Model, first_job: RemoteJob) -> None:
    before = len(remote.backend.jobs)
    res = iw.patch(remote, CLEAN, CORRUPTED, metric, sites="heads", max_batch=4)
    _close(res.values, iw.patch(local, CLEAN, CORRUPTED, metric, sites="heads", max_batch=4).values)
    assert len(remote.backend.jobs) - before == res.meta["forward_passes"]


def test_attribution_patching(remote: Model, local: Model, first_job: RemoteJob) -> None:
    res = iw.remote.run(remote, iw.attribute, CLEAN, CORRUPTED, metric, sites="heads")
    ref = iw.attribute(local, CLEAN, CORRUPTED, metric, sites="heads")
    _close(res.values, ref.values)
    assert remote.backend.last_job.round_trips == 1


def test_ablation(remote: Model, local: Model, first_job: RemoteJob) -> None:
    comps = ["blocks.0.attn.hook_z.0", "blocks.1.attn.hook_z.2"]
    for method in ("zero", "mean"):
        kw = {"method": method, "reference": CORRUPTED} if method == "mean" else {"method": method}
        res = iw.remote.run(remote, iw.ablate, CLEAN, metric, [(0, 0), (1, 2)], **kw)
        ref = iw.ablate(local, CLEAN, metric, [(0, 0), (1, 2)], **kw)
        assert abs(res.baseline - ref.baseline) < TOL and abs(res.ablated - ref.ablated) < TOL, (method, comps)


def test_circuit_discovery(remote: Model, local: Model, first_job: RemoteJob) -> None:
    g = iw.remote.run(remote, iw.circuit, CLEAN, CORRUPTED, metric, method="eap")
    _close(g.scores, iw.circuit(local, CLEAN, CORRUPTED, metric, method="eap").scores)
    assert remote.backend.last_job.round_trips == 1
    assert g.context is not None and g.context.model is remote  # later faithfulness checks go to the server


# --- status, cancel and errors ------------------------------------------------------------


def _sleep_then_sum(model: Model, seconds: float) -> int:
    time.sleep(seconds)
    return 1 + 1


def test_timeout_names_what_to_do(remote: Model, first_job: RemoteJob) -> None:
    with pytest.raises(RemoteTimeoutError, match="larger timeout="):
        iw.remote.run(remote, _sleep_then_sum, 3.0, timeout=1.0)


def test_cancel_while_running_kills_the_server_job(remote: Model, first_job: RemoteJob) -> None:
    def cancel_when_running(job: RemoteJob) -> None:
        if job.status.state == "RUNNING":
            job.cancel()

    t0 = time.monotonic()
    with pytest.raises(RemoteCancelledError):
        iw.remote.run(remote, _sleep_then_sum, 20.0, on_status=cancel_when_running)
    assert time.monotonic() - t0 < 15
    # the server is free again well before the 20 s job would have ended
    t1 = time.monotonic()
    assert iw.remote.run(remote, _sleep_then_sum, 0.0) == 2
    assert time.monotonic() - t0 < 19, time.monotonic() - t1


def test_unreachable_host(model_dir: str) -> None:
    off = iw.load(model_dir, remote=True, host=f"http://127.0.0.1:{free_port()}", api_key=KEY)
    with pytest.raises(RemoteUnreachableError, match=r"cannot reach the NDIF server at http://127\.0\.0\.1.*Check the host"):
        off.run(off.to_tokens("a b"))


def test_code_the_server_cannot_load_is_refused(remote: Model, first_job: RemoteJob, tmp_path: Path) -> None:
    (tmp_path / "iw_local_helper.py").write_text(textwrap.dedent("""
        def twice(model, x):
            return 2 * x
    """))
    sys.path.insert(0, str(tmp_path))
    try:
        import iw_local_helper

        with pytest.raises(RemoteRefusedError, match=r"nnsight\.register"):
            iw.remote.run(remote, iw_local_helper.twice, 21)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("iw_local_helper", None)


def test_version_mismatch_from_the_server(stack: NdifStack, model_dir: str, first_job: RemoteJob) -> None:
    url = stack.extra_api("api-versioned", NDIF_MIN_NNSIGHT_VERSION="99.0")
    m = iw.load(model_dir, remote=True, host=url, api_key=KEY)
    with pytest.raises(RemoteVersionError, match=r"below the minimum supported 99\.0.*pip install --upgrade nnsight"):
        m.run(m.to_tokens("a b"))


def test_authentication_failures_from_the_server(stack: NdifStack, model_dir: str, first_job: RemoteJob) -> None:
    good = str(uuid.uuid4())
    url = stack.extra_api("api-auth", app="iw_ndif_auth:app", IW_NDIF_KEYS=good,
                          NDIF_POSTGRES_URL="postgresql://unused")
    for key in (None, str(uuid.uuid4()), KEY):  # missing, unknown, malformed
        m = iw.load(model_dir, remote=True, host=url, api_key=key)
        with pytest.raises(RemoteAuthError, match=r"refused the API key.*NDIF_API_KEY") as err:
            m.run(m.to_tokens("a b"))
        assert KEY not in str(err.value) and (key is None or key not in str(err.value))
    ok = iw.load(model_dir, remote=True, host=url, api_key=good)
    assert ok.run(ok.to_tokens("a b")).logits is not None


def test_ndif_services_listen_on_loopback_only(stack: NdifStack, first_job: RemoteJob) -> None:
    """Redis, the API, the S3 store, the dashboard and the Ray client server answer on 127.0.0.1 only. (Ray's
    internal gRPC services and workers listen on every interface whatever the node address is: see
    docs/self_hosting_ndif.md.)"""
    listening = stack.listening()
    assert listening, "ss found no listening sockets of the stack"
    for name in ("redis", "api", "s3", "ray client", "ray dashboard"):
        port = stack.ports[name]
        addrs = [a for a in listening if a.rsplit(":", 1)[1] == str(port)]
        assert addrs, f"{name} (port {port}) is not listening"
        assert all(a.rsplit(":", 1)[0] in ("127.0.0.1", "[::ffff:127.0.0.1]") for a in addrs), (name, addrs)


# --- the key never shows ----------------------------------------------------------------------


def test_api_key_never_in_logs_reprs_state_or_results(remote: Model, first_job: RemoteJob, caplog: Any,
                                                      capfd: Any) -> None:
    import pickle

    from interp_widget.widgets.patching import patching_widget

    caplog.set_level(logging.DEBUG)
    res = iw.remote.run(remote, iw.patch, CLEAN, CORRUPTED, metric, sites="heads")
    texts = [repr(remote), repr(remote.backend), repr(remote.backend.config), str(remote.backend.config.api_key),
             repr(remote.backend.last_job), repr(res), caplog.text]
    out = capfd.readouterr()
    texts += [out.out, out.err]
    w = patching_widget(remote, CLEAN, CORRUPTED, answer="a", wrong="b")
    texts.append(repr(w.get_state()))
    texts.append(repr(pickle.dumps(res)))
    for t in texts:
        assert KEY not in t
    with pytest.raises(TypeError, match="not pickled"):
        pickle.dumps(remote.backend)
    assert remote.backend.config.api_key is not None and remote.backend.config.api_key.reveal() == KEY


def test_docs_notebook_against_the_local_stack_keeps_the_key_out(stack: NdifStack, model_dir: str,
                                                                 first_job: RemoteJob, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/remote_ndif.ipynb, pointed at this stack by environment variables, executed and saved."""
    import nbformat
    from nbclient import NotebookClient

    repo = Path(__file__).resolve().parents[1]
    monkeypatch.setenv("PYTHONPATH", str(repo))
    monkeypatch.setenv("NDIF_HOST", stack.host)
    monkeypatch.setenv("NDIF_API_KEY", KEY)
    monkeypatch.setenv("IW_REMOTE_MODEL", model_dir)
    nb = nbformat.read(repo / "docs" / "remote_ndif.ipynb", as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    saved = tmp_path / "executed.ipynb"
    nbformat.write(nb, saved)
    text = saved.read_text()
    assert "target: " + stack.host in text  # it ran against the stack, not the offline fallback
    assert KEY not in text
