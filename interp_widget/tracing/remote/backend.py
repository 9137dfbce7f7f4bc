"""The remote nnsight backend: every run, or a whole analysis, as ONE request to an NDIF server.

:class:`RemoteNNsightBackend` describes the model from a local (meta-device) nnsight model, and runs
nothing locally. :meth:`RemoteNNsightBackend.call` ships ``fn(model, *args, **kwargs)`` to the server
in one nnsight session: the server installs the ``interp_widget`` modules it needs from shipped
source (see :mod:`._bootstrap`), wraps its own copy of the model as a :class:`~interp_widget.Model`,
runs ``fn`` there (an analysis: every forward pass of a batched sweep happens on the server) and
sends back only the pickled result (a reduced result object: values, labels; no activations unless
``fn`` returns them). :meth:`RemoteNNsightBackend.run` is ``call`` of one ``Backend.run``, so any
analysis works on a remote model unchanged, one request per forward pass; :func:`remote_call` and
:func:`interp_widget.remote.run` put a whole analysis in one request.

Set ``IW_REMOTE_DEBUG=1`` to print what the server's code prints (NDIF streams it back as LOG updates).

``mode="local"`` uses nnsight's ``LocalSimulationBackend``: the same serialise / deserialise path,
in-process (for tests without a server). Status updates, cancel and errors: :mod:`interp_widget.remote`.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Literal

import cloudpickle
import nnsight
from nnsight.intervention.backends.remote import RemoteBackend
from nnsight.intervention.backends.remote import RemoteError as NNsightRemoteError
from nnsight.schema.response import ResponseModel, Status

from interp_widget.errors import BackendError
from interp_widget.remote.config import RemoteConfig, Secret, resolve
from interp_widget.remote.errors import RemoteCancelledError, RemoteTimeoutError, classify, unreachable
from interp_widget.remote.status import RemoteJob, parse_progress
from interp_widget.tracing.base import Intervention, Metric, RunResult
from interp_widget.tracing.nnsight_backend import NNsightBackend
from interp_widget.tracing.remote import _bootstrap, _server, _ship
from interp_widget.tracing.sites import Site

cloudpickle.register_pickle_by_value(_bootstrap)  # stdlib-only: rebuilt on the server from its pickled code

Mode = Literal["remote", "local"]
StatusCallback = Callable[[RemoteJob], Any]
_POLL_S = 0.2


class _TrackedBackend(RemoteBackend):
    """nnsight's blocking remote backend, plus: status callbacks, progress, cancel, a wait limit,
    bytes counted, and errors classified (see :mod:`interp_widget.remote.errors`)."""

    def __init__(self, model_key: str, cfg: RemoteConfig, env: dict[str, Any], job: RemoteJob, *,
                 on_status: StatusCallback | None, progress: Callable[[int, int], Any] | None,
                 timeout: float | None, operator_redis_url: str | None) -> None:
        key = cfg.api_key.reveal() if cfg.api_key is not None else None
        super().__init__(model_key, host=cfg.host, api_key=key, env=env)
        self.display.enabled = False  # statuses go to on_status (a widget, a log), not nnsight's spinner
        self.job, self.on_status, self.progress = job, on_status, progress
        self.timeout, self.operator_redis_url = timeout, operator_redis_url
        self._downloaded = 0

    def __repr__(self) -> str:
        return f"<_TrackedBackend {self.host}>"

    def _emit(self) -> None:
        if self.on_status is not None:
            self.on_status(self.job)

    def note(self, response: ResponseModel) -> bool:
        self.job.job_id = response.id or self.job.job_id
        text = response.description or ""
        if response.status == Status.LOG:
            if os.environ.get("IW_REMOTE_DEBUG"):
                print("[server]", text, flush=True)
            prog = parse_progress(text)
            if prog is not None:
                self.job.record("RUNNING", self.job.status.message, done=prog[0], total=prog[1])
                self._emit()
                if self.progress is not None:
                    try:
                        self.progress(*prog)  # a widget's cancel raises here
                    except BaseException:
                        self._kill()
                        raise
            return False
        self.job.record(response.status.name, text)
        self._emit()
        if response.status == Status.ERROR:
            raise classify(text, self.host) from None
        return response.status == Status.COMPLETED

    def _post(self, request: Any, blob: bytes) -> ResponseModel:
        import httpx

        try:
            return super()._post(request, blob)
        except NNsightRemoteError as exc:
            cause = exc.__cause__
            if isinstance(cause, httpx.HTTPStatusError):
                try:
                    detail = str(cause.response.json().get("detail", cause.response.text))
                except ValueError:
                    detail = cause.response.text
                raise classify(detail, self.host, status_code=cause.response.status_code) from None
            raise unreachable(self.host, f"{type(cause).__name__}: {cause}" if cause else str(exc)) from None

    def finalize(self, content: bytes) -> Any:
        self._downloaded = len(content)
        return super().finalize(content)

    def download_result(self, url: Any) -> Any:
        out = super().download_result(url)
        if isinstance(url, str):
            self.job.bytes_received += self._downloaded  # a large result fetched from the object store
        return out

    def _kill(self) -> None:
        """Stop the job on the server too, where we have operator access to its Redis (self-hosted NDIF)."""
        if self.operator_redis_url and self.job.job_id:
            try:
                from ndif.cli.lib.events import kill_request

                kill_request(self.job.job_id, self.operator_redis_url)
            except Exception:  # the client side stops waiting regardless
                return

    def request(self, request: Any, tracer: Any) -> Any:
        import websocket

        blob = self._serialize(tracer)
        self.job.bytes_sent += len(blob)
        self.job.round_trips += 1
        self.job.record("SUBMITTING", f"{len(blob):,} bytes")
        self._emit()
        try:
            conn = websocket.create_connection(f"{self.ws_host}/subscribe", timeout=10,
                                               header={"ndif-api-key": self.api_key} if self.api_key else None)
        except (OSError, websocket.WebSocketException) as exc:
            raise unreachable(self.host, f"{type(exc).__name__}: {exc}") from None
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        try:
            request.session_id = json.loads(conn.recv())["session_id"]
            self.send(request, blob)
            conn.settimeout(_POLL_S)
            while True:
                if self.job.cancelled:
                    self._kill()
                    self.job.record("CANCELLED", "cancelled by the caller")
                    self._emit()
                    msg = f"remote job {self.job.job_id or '(not started)'} on {self.host} was cancelled"
                    raise RemoteCancelledError(msg)
                if deadline is not None and time.monotonic() > deadline:
                    self._kill()
                    self.job.record("TIMEOUT", f"no result after {self.timeout} s")
                    self._emit()
                    msg = (f"remote job {self.job.job_id} on {self.host} gave no result within {self.timeout} s "
                           f"(last status: {self.job.history[-2].state if len(self.job.history) > 1 else '-'}); "
                           "pass a larger timeout=, or a smaller request (max_batch= / fewer sites)")
                    raise RemoteTimeoutError(msg)
                try:
                    message = conn.recv()
                except websocket.WebSocketTimeoutException:
                    continue
                except (OSError, websocket.WebSocketException) as exc:
                    raise unreachable(self.host, f"the connection closed while waiting ({exc})") from None
                self.job.bytes_received += len(message)
                response = self.parse(message)
                result = self.handle(response)
                if response.status == Status.COMPLETED:
                    return result
        finally:
            conn.close()


class RemoteNNsightBackend(NNsightBackend):
    """An nnsight backend whose runs happen on an NDIF server (see the module docstring)."""

    remote = True

    def __init__(self, model: Any, *, model_key: str, tokenizer: Any = None, name: str = "",
                 host: str | None = None, api_key: str | Secret | None = None, mode: Mode = "remote",
                 timeout: float | None = None, operator_redis_url: str | None = None,
                 on_status: StatusCallback | None = None) -> None:
        if mode not in ("remote", "local"):
            msg = f"mode must be 'remote' (an NDIF server) or 'local' (nnsight's in-process simulation), not {mode!r}"
            raise ValueError(msg)
        super().__init__(model, tokenizer=tokenizer, name=name)
        self.model_key, self.mode, self.timeout = model_key, mode, timeout
        self.operator_redis_url, self.on_status = operator_redis_url, on_status
        self._host, self._api_key = host, (Secret(api_key) if isinstance(api_key, str) else api_key)
        self.last_job: RemoteJob | None = None
        self.jobs: list[RemoteJob] = []

    def __repr__(self) -> str:
        return f"<RemoteNNsightBackend {self._name!r} on {self.config.host} ({self.mode})>"

    @property
    def config(self) -> RemoteConfig:
        """Host and key, resolved now (arguments given when loading, then environment, then nnsight's config)."""
        return resolve(self._host, self._api_key)

    def __getstate__(self) -> Any:
        msg = "a remote model is not pickled (it holds an API key); load it again where it is needed"
        raise TypeError(msg)

    # --- running -----------------------------------------------------------------------------
    def run(self, tokens: Any, *, capture: Sequence[Site | str] = (), interventions: Sequence[Intervention] = (),
            grads: Sequence[Site | str] = (), metric: Metric | None = None, attention_mask: Any = None) -> RunResult:
        """One forward (and backward) pass on the server, in one request."""
        kw: dict[str, Any] = {"capture": list(capture), "interventions": list(interventions), "grads": list(grads),
                              "metric": metric}
        if attention_mask is not None:
            kw["attention_mask"] = attention_mask
        return self.call(_server.run, tokens, **kw)

    def call(self, fn: Callable[..., Any], *args: Any, on_status: StatusCallback | None = None,
             timeout: float | None = None, client_model: Any = None, **kwargs: Any) -> Any:
        """``fn(server_model, *args, **kwargs)`` on the server, in one request; returns its (pickled) result.

        ``progress=`` (a callable ``(done, total)``) stays here and is fed from the server's progress lines;
        raising from it cancels the job. ``on_status(job)`` gets every status update. A result that refers to
        the server's model gets ``client_model`` in its place."""
        progress = kwargs.get("progress")
        if callable(progress):
            kwargs["progress"] = _server.PROGRESS
        sources = _ship.for_call(fn)
        nonce = uuid.uuid4().hex
        call = _ship.dumps_call(fn, self._name, args, kwargs, nonce, str(sources["__digest__"]))
        cfg = self.config
        job = RemoteJob(cfg.host if self.mode == "remote" else "local simulation")
        self.last_job = job
        self.jobs.append(job)
        root = self.root
        if self.mode == "local":
            from nnsight.intervention.backends.local import LocalSimulationBackend

            backend: Any = LocalSimulationBackend(root)
            job.round_trips += 1
        else:
            backend = _TrackedBackend(self.model_key, cfg, _env(root), job, on_status=on_status or self.on_status,
                                      progress=progress if callable(progress) else None,
                                      timeout=timeout if timeout is not None else self.timeout,
                                      operator_redis_url=self.operator_redis_url)
        serve = _bootstrap.serve
        with root.session(backend=backend):
            out = nnsight.save(serve(root, sources, call))
        job.bytes_received = max(job.bytes_received, len(out))
        got, result = _Unpickler(io.BytesIO(out), client_model).load()
        if got != nonce:  # never hand back the answer to another request
            msg = f"the server answered another request ({got}, expected {nonce}); run it again"
            raise BackendError(msg)
        return result


def _env(root: Any) -> dict[str, Any]:
    getter = getattr(root, "_remoteable_get_env", None)
    env = dict(getter()) if callable(getter) else {}
    env["attn_implementation"] = "eager"  # attention patterns exist only in eager attention
    return env


def remote_call(model: Any, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(model, *args, **kwargs)`` as ONE request when ``model`` is remote; a plain call otherwise."""
    backend = getattr(model, "backend", None)
    if isinstance(backend, RemoteNNsightBackend):
        return backend.call(fn, *args, client_model=model, **kwargs)
    return fn(model, *args, **kwargs)


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: Any, model: Any) -> None:
        super().__init__(file)
        self._model = model

    def persistent_load(self, pid: Any) -> Any:
        if pid == _server.MODEL_REF:
            return self._model
        msg = f"unknown reference {pid!r} in a remote result"
        raise pickle.UnpicklingError(msg)


# --- loading ---------------------------------------------------------------------------------


def model_key(root: Any) -> str:
    """nnsight's model key for ``root``, without asking the Hub when that cannot or need not be done.

    nnsight canonicalises a repo id through the Hub (``HfApi().model_info``) when it mints a key; for a
    local directory, offline (``HF_HUB_OFFLINE``) or with no Hub in reach the id is used as given."""
    from nnsight.modeling.huggingface import _ID_CACHE

    repo = getattr(root, "repo_id", None)
    if isinstance(repo, str) and repo not in _ID_CACHE:
        from interp_widget.models.loading import _hub_reachable, _offline

        if os.path.isdir(repo) or _offline() or not _hub_reachable(timeout=2.0):
            _ID_CACHE[repo] = repo
    try:
        return str(root.to_model_key())
    except Exception as exc:
        msg = (f"cannot name {type(root).__name__} for NDIF ({exc}); remote runs need an nnsight model loaded "
               "from a Hugging Face repo id (e.g. nnsight.LanguageModel('openai-community/gpt2'))")
        raise BackendError(msg) from exc


def load_remote(obj: Any, *, name: str | None = None, host: str | None = None, api_key: str | Secret | None = None,
                tokenizer: Any = None, mode: Mode = "remote", **kw: Any) -> Any:
    """A :class:`~interp_widget.Model` whose runs execute on NDIF: ``obj`` is a Hugging Face repo id (or a
    local directory holding the same checkpoint the server deploys) or an nnsight model. Nothing is
    downloaded but the config and tokenizer: the local copy lives on the meta device."""
    from nnsight.intervention.envoy import Envoy

    from interp_widget.models.loading import _hf_tokenizer

    timeout = kw.pop("timeout", None)
    from interp_widget.models.model import Model

    if isinstance(obj, str):
        from nnsight import TransformersModel

        tokenizer = tokenizer if tokenizer is not None else _hf_tokenizer(obj, local_only=False)
        if tokenizer is None:
            msg = f"no tokenizer found for {obj!r}; pass tokenizer= (a Hugging Face tokenizer)"
            raise BackendError(msg)
        if mode == "local":
            kw.setdefault("dispatch", True)  # the in-process "server" needs the weights
        root = TransformersModel(obj, task="text-generation", tokenizer=tokenizer, **kw)
    elif isinstance(obj, Envoy):
        root = obj
    else:
        msg = (f"a remote model is a Hugging Face repo id or an nnsight model, not a {type(obj).__name__} "
               "(NDIF runs the checkpoints it hosts; a local module cannot be sent)")
        raise BackendError(msg)
    label = name or (obj if isinstance(obj, str) else type(obj).__name__)
    key = model_key(root) if mode == "remote" else ""
    backend = RemoteNNsightBackend(root, model_key=key, tokenizer=tokenizer, name=label, host=host,
                                   api_key=api_key, mode=mode, timeout=timeout)
    return Model(backend, name=label, raw=root)
