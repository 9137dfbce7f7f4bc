"""Running a patching request for the patching widget: checks, the sweep in a worker thread, cancel.

:func:`prepare` turns a :class:`~interp_widget.schema.patching.RunRequest` into tokens and a bound
metric without running the model, so bad inputs (prompts of different token lengths, an answer that
is not one token, an MLP sweep on an attention-only model) are refused at once with the analysis
layer's own error. :class:`Job` then runs the sweep in a worker thread: the kernel stays free to
receive the ``cancel`` command (and to run cells), progress comes back through a callback, and a
cancel takes effect at the next batched chunk (the analysis functions stop when ``progress`` raises).

A model is not safe to run from two threads at once (TransformerLens hooks live on the modules, so
a forward pass would see another thread's hooks). :func:`serialize_runs` makes every forward pass of
a model take turns, whichever thread and whichever code (a widget sweep, a cell) runs it: a cell run
while a sweep goes on waits for the sweep's current chunk, and both get correct results. On top of
that, one widget sweep of a model runs at a time (:func:`model_lock`).

Imports torch only when a request is prepared.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from interp_widget.errors import InputMismatchError, InterpWidgetError, UnknownSiteError
from interp_widget.schema.patching import COMPONENT_SWEEPS, RunRequest, RunStatus

if TYPE_CHECKING:
    import torch

    from interp_widget.analysis.metrics import Metric
    from interp_widget.analysis.results import SweepResult
    from interp_widget.models.model import Model

log = logging.getLogger(__name__)

_LOCKS: weakref.WeakKeyDictionary[Any, threading.Lock] = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


class RunCancelledError(InterpWidgetError):
    """A run stopped by ``cancel``."""


def model_lock(model: Model) -> threading.Lock:
    """The lock that serialises the widgets' runs of ``model``."""
    with _LOCKS_GUARD:
        lock = _LOCKS.get(model)
        if lock is None:
            lock = _LOCKS[model] = threading.Lock()
        return lock


def serialize_runs(model: Model) -> None:
    """Make ``model.backend.run`` take a lock, so forward passes from several threads take turns.

    Idempotent. The analyses call ``model.backend.run`` for every batched forward pass, so wrapping it
    on the backend instance covers them, ``Model.run`` and the attention view alike.
    """
    backend = model.backend
    if getattr(backend, "_iw_run_lock", None) is not None:
        return
    lock = threading.RLock()
    run = backend.run

    @functools.wraps(run)
    def locked_run(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return run(*args, **kwargs)

    try:
        setattr(backend, "run", locked_run)  # noqa: B010  (an instance attribute over the method)
        setattr(backend, "_iw_run_lock", lock)  # noqa: B010
    except (AttributeError, TypeError):  # a backend that takes no new attributes
        log.warning("interp-widget: cannot serialise the runs of %s; do not run it from a cell while a "
                    "patching widget runs it", model.name)


def split_prompts(text: str) -> list[str]:
    """One prompt per non-blank line (a single line is taken as it is, spaces included)."""
    lines = [line.rstrip("\r") for line in text.split("\n")]
    return [line for line in lines if line.strip()]


@dataclass
class Prepared:
    """A checked request: tokens ``[n_prompts, n_tokens]`` of both inputs, the metric, the sweep."""

    request: RunRequest
    clean_texts: list[str]
    corrupted_texts: list[str]
    clean: torch.Tensor
    corrupted: torch.Tensor
    metric: Metric
    sweep: str
    receiver: Any = None

    @property
    def n_prompts(self) -> int:
        return int(self.clean.shape[0])

    @property
    def n_tokens(self) -> int:
        return int(self.clean.shape[1])


def _tokens(model: Model, texts: list[str], which: str) -> torch.Tensor:
    import torch

    if not texts:
        msg = f"the {which} prompt is empty: type at least one prompt (one per line)"
        raise InputMismatchError(msg)
    rows = [model.to_tokens(t) for t in texts]  # each raises ContextLengthError past n_ctx
    lengths = [int(r.shape[-1]) for r in rows]
    if len(set(lengths)) > 1:
        detail = ", ".join(f"line {i + 1}: {n}" for i, n in enumerate(lengths))
        msg = f"the {which} prompts must all have the same number of tokens ({detail})"
        raise InputMismatchError(msg)
    return torch.cat(rows)


def build_metric(req: RunRequest) -> Metric:
    """The metric the request names (answers still strings; :func:`prepare` binds them)."""
    from interp_widget.analysis.metrics import kl_divergence, logit_diff, loss, probability

    if req.metric == "logit_diff":
        if not req.answer or not req.wrong:
            msg = "logit difference needs an answer token and a wrong token (e.g. ' Mary' and ' John')"
            raise InputMismatchError(msg)
        return logit_diff(req.answer, req.wrong)
    if req.metric == "probability":
        if not req.answer:
            msg = "probability needs an answer token: the token whose probability is measured"
            raise InputMismatchError(msg)
        return probability(req.answer)
    if req.metric == "kl":
        return kl_divergence()
    return loss()


def prepare(model: Model, req: RunRequest) -> Prepared:
    """Check ``req`` against ``model`` without running it (see the module docstring)."""
    from interp_widget.analysis.path_patching import parse_receiver
    from interp_widget.analysis.sweeps import build_grid

    clean_texts, corrupted_texts = split_prompts(req.clean), split_prompts(req.corrupted)
    if len(clean_texts) != len(corrupted_texts):
        msg = (f"{len(clean_texts)} clean prompt(s) but {len(corrupted_texts)} corrupted prompt(s): "
               "give one corrupted prompt per clean one (one per line)")
        raise InputMismatchError(msg)
    clean = _tokens(model, clean_texts, "clean")
    corrupted = _tokens(model, corrupted_texts, "corrupted")
    if clean.shape[-1] != corrupted.shape[-1]:
        msg = (f"clean and corrupted prompts must have the same number of tokens: clean has {clean.shape[-1]} "
               f"tokens, corrupted has {corrupted.shape[-1]}; patching swaps activations position by position")
        raise InputMismatchError(msg)
    metric = build_metric(req)
    metric.bind(model, tokens=clean)  # resolves the answer tokens now: a bad answer fails before the run
    sweep = COMPONENT_SWEEPS[req.component]
    if req.component == "mlp" and model.spec.d_mlp is None:
        msg = f"{model.name} is attention-only: it has no MLPs to patch"
        raise UnknownSiteError(msg)
    build_grid(model, sweep, corrupted)  # the sweep exists for this model
    receiver = parse_receiver(model, req.receiver.strip() or "logits") if req.component == "path" else None
    return Prepared(req, clean_texts, corrupted_texts, clean, corrupted, metric, sweep, receiver)


def _caller(model: Model, on_remote_status: Callable[[Any], None] | None) -> Callable[..., Any]:
    """``call(fn, *args, **kw)``: ``fn(model, ...)`` here, or as ONE request (with server statuses) when the
    model is remote (NDIF), instead of one request per batched forward pass."""
    if type(getattr(model, "backend", None)).__name__ != "RemoteNNsightBackend":
        return lambda fn, *args, **kw: fn(model, *args, **kw)
    from interp_widget.tracing.remote.backend import remote_call

    return lambda fn, *args, **kw: remote_call(model, fn, *args, on_status=on_remote_status, **kw)


def execute(model: Model, p: Prepared, progress: Callable[[int, int], Any], *,
            max_batch: int | None = None, max_bytes: int | None = None,
            on_remote_status: Callable[[Any], None] | None = None) -> SweepResult:
    """Run the sweep ``p`` describes (in the calling thread); normalise when asked and possible.
    On a remote model the sweep is one request; ``on_remote_status(job)`` gets the server's statuses."""
    from interp_widget.analysis.patching import patch
    from interp_widget.analysis.path_patching import path_patch

    call = _caller(model, on_remote_status)
    if p.request.component == "path":
        res = call(path_patch, p.clean, p.corrupted, p.metric, receivers=p.receiver, senders="heads",
                   max_batch=max_batch, max_bytes=max_bytes, progress=progress)
    else:
        res = call(patch, p.clean, p.corrupted, p.metric, sites=p.sweep, max_batch=max_batch,
                   max_bytes=max_bytes, progress=progress)
    if p.request.normalize:
        try:
            res = res.normalized()
        except InputMismatchError as exc:  # clean and corrupted give the same metric: show the raw values
            res.meta["not_normalized"] = str(exc)
    return res


@dataclass
class Job:
    """One run in a worker thread. ``on_status`` gets every status (throttled to ``interval`` s while
    it runs); ``on_done(job)`` runs in the worker when it ends, whatever the outcome."""

    run_id: int
    model: Model
    prepared: Prepared
    on_status: Callable[[RunStatus], None]
    on_done: Callable[[Job], None]
    max_batch: int | None = None
    max_bytes: int | None = None
    interval: float = 0.1
    result: SweepResult | None = None
    error: BaseException | None = None
    status: RunStatus = field(default_factory=RunStatus)
    _cancel: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _t0: float = 0.0
    _last_push: float = 0.0

    @property
    def unit(self) -> str:
        return "permille" if self.prepared.request.component == "path" else "runs"

    def _status(self, state: str, **kw: Any) -> RunStatus:
        return RunStatus(state=state, run_id=self.run_id, unit=self.unit, elapsed_s=self._elapsed(), **kw)  # type: ignore[arg-type]

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._set(self._status("running"), push=True)
        self._thread = threading.Thread(target=self._work, name=f"interp-widget-patching-{self.run_id}", daemon=True)
        self._thread.start()

    def cancel(self) -> bool:
        """Ask the run to stop at its next chunk; False if it had already ended."""
        if not self.running:
            return False
        self._cancel.set()
        return True

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the worker; True once it has ended."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    # --- worker ---------------------------------------------------------------------------
    def _elapsed(self) -> float:
        return round(time.monotonic() - self._t0, 3)

    def _set(self, status: RunStatus, *, push: bool) -> None:
        self.status = status
        if push:
            self._last_push = time.monotonic()
            self.on_status(status)

    def _progress(self, done: int, total: int) -> None:
        cancelled = self._cancel.is_set()
        now = time.monotonic()
        push = not cancelled and (done == 0 or done >= total or now - self._last_push >= self.interval)
        self._set(self._status("running", done=done, total=total, message=self.status.message), push=push)
        if cancelled:
            msg = f"run {self.run_id} was cancelled after {done} of {total} patched runs"
            raise RunCancelledError(msg)

    def _remote_status(self, job: Any) -> None:
        """A remote (NDIF) job's state (queued, deploying, running...) shown in the status line."""
        st = self.status
        self._set(self._status("running", done=st.done, total=st.total, message=job.status.line()), push=True)

    def _work(self) -> None:
        try:
            with model_lock(self.model):
                if self._cancel.is_set():
                    raise RunCancelledError(f"run {self.run_id} was cancelled before it started")
                self.result = execute(self.model, self.prepared, self._progress, max_batch=self.max_batch,
                                      max_bytes=self.max_bytes, on_remote_status=self._remote_status)
            final = self._status("done", done=self.status.total, total=self.status.total)
        except RunCancelledError as exc:
            final = self._status("cancelled", done=self.status.done, total=self.status.total, message=str(exc))
        except Exception as exc:
            self.error = exc
            final = self._status("error", done=self.status.done, total=self.status.total,
                                 error_type=type(exc).__name__, message=str(exc))
        self.status = final
        try:
            self.on_done(self)
        except Exception:  # a closed widget, a comm gone: nothing to show it on
            log.warning("interp-widget: could not show the end of patching run %s", self.run_id, exc_info=True)
