"""The patching-controls widget: a patching result as a heatmap, with controls to run another.

>>> import interp_widget as iw
>>> w = iw.patching_widget("induction-2l", clean="...", corrupted="...", answer="x", wrong="y")  # doctest: +SKIP
>>> w.last_result                                                                          # doctest: +SKIP

Type clean and corrupted prompts (one per line), choose the metric (logit difference between an
answer and a wrong token, the answer's probability, KL to the clean run, loss) and the component
(residual stream, attention or MLP output by layer x position, heads, or path patching from every
head into a receiver), and press Run. The request goes to the kernel as the ``start_run`` command, which
checks it at once (errors such as prompts of different token lengths come back as the reply) and
runs the sweep in a worker thread: progress is pushed to the view, ``cancel_run`` stops it at the next
batched chunk, and the new result replaces the heatmap without re-executing the cell. Clicking a
head opens its attention pattern on the clean and the corrupted prompt (the attention view's detail).

Importing this module imports no torch.
"""

from __future__ import annotations

import itertools
import logging
import threading
from typing import TYPE_CHECKING, Any

import anywidget
import traitlets as t

from interp_widget.errors import InputMismatchError
from interp_widget.schema import GetPatternRequest, PatternReply
from interp_widget.schema.patching import (
    CancelReply,
    CancelRequest,
    HeadPatternsReply,
    OpenHeadRequest,
    PatchingEnvelope,
    PatchingState,
    RunRequest,
    RunStarted,
    RunStatus,
    StatusMessage,
)
from interp_widget.server.registry import track
from interp_widget.widgets._commands import message_command, reply_unknown_commands
from interp_widget.widgets._patching_run import Job, RunCancelledError, prepare, serialize_runs, split_prompts
from interp_widget.widgets._static import add_snapshot
from interp_widget.widgets.heatmap import BUNDLE, heatmap_data, snapshot_html

if TYPE_CHECKING:


    from interp_widget.models.model import Model
    from interp_widget.widgets._patterns import AttentionData

log = logging.getLogger(__name__)

_MISSING_ESM = """
export default { render({ el }) {
  el.textContent = "interp-widget: the front end is not built (interp_widget/widgets/static/patching.js is missing). "
    + "Run `npm install && npm run build` in the source checkout, or install the wheel.";
} };
"""
COMMANDS = {"start_run", "cancel_run", "open_head", "get_pattern"}
_RUN_IDS = itertools.count(1)


#: an anywidget command that always replies (an ErrorReply when it raises), checked against
#: :class:`PatchingEnvelope`, this widget's reply types
_command = message_command(PatchingEnvelope)


class PatchingWidget(anywidget.AnyWidget):
    """A result heatmap with patching controls; see the module docstring.

    Build it with :func:`patching_widget` (from a model) or :meth:`from_result` (to show a result).
    The form fields (``clean``, ``corrupted``, ``metric``, ...) are traits kept in sync with the view;
    :meth:`run` / :meth:`cancel` / :meth:`wait` drive it from Python; :attr:`last_result` is the
    :class:`~interp_widget.analysis.results.SweepResult` on screen.

    The sweep runs in a worker thread; the model's forward passes take turns (a cell that runs the
    model meanwhile waits for the sweep's current chunk), so both give correct results.
    """

    _esm = BUNDLE if BUNDLE.is_file() else _MISSING_ESM

    model_name = t.Unicode("").tag(sync=True)
    n_layers = t.Int(0).tag(sync=True)
    n_heads = t.Int(0).tag(sync=True)
    has_mlp = t.Bool(False).tag(sync=True)
    controls = t.Bool(True).tag(sync=True)
    clean = t.Unicode("").tag(sync=True)
    corrupted = t.Unicode("").tag(sync=True)
    metric = t.Enum(["logit_diff", "probability", "kl", "loss"], "logit_diff").tag(sync=True)
    answer = t.Unicode("").tag(sync=True)
    wrong = t.Unicode("").tag(sync=True)
    component = t.Enum(["resid", "attn", "mlp", "heads", "path"], "heads").tag(sync=True)
    receiver = t.Unicode("logits").tag(sync=True)
    normalize = t.Bool(False).tag(sync=True)
    result = t.Dict(allow_none=True, default_value=None).tag(sync=True)
    status = t.Dict().tag(sync=True)

    def __init__(
        self,
        model: Model | None = None,
        *,
        clean: str | list[str] = "",
        corrupted: str | list[str] = "",
        metric: str = "logit_diff",
        answer: str = "",
        wrong: str = "",
        component: str = "heads",
        receiver: str = "logits",
        normalize: bool = False,
        result: Any = None,
        max_batch: int | None = None,
        max_bytes: int | None = None,
        snapshot: bool = True,
    ) -> None:
        spec = model.spec if model is not None else None
        super().__init__(
            model_name=model.name if model is not None else "",
            n_layers=spec.n_layers if spec else 0,
            n_heads=spec.n_heads if spec else 0,
            has_mlp=bool(spec and spec.d_mlp is not None),
            controls=model is not None,
            clean=_lines(clean), corrupted=_lines(corrupted), metric=metric, answer=answer, wrong=wrong,
            component=component, receiver=receiver, normalize=normalize,
            status=RunStatus().model_dump(),
        )
        self._model = model
        if model is not None:
            serialize_runs(model)  # a cell may run the model while a sweep runs it in the worker thread
        self.max_batch = max_batch
        self.max_bytes = max_bytes
        self.snapshot = snapshot
        self._job: Job | None = None
        self._last: Any = None
        self._shown_inputs: tuple[str, str] | None = None  # (clean, corrupted) prompts of the result on screen
        self._attn: AttentionData | None = None
        self._attn_guard = threading.Lock()
        if result is not None:
            self.show_result(result)
            cp, kp = split_prompts(self.clean), split_prompts(self.corrupted)
            if cp and kp:  # the prompts the result came from: a head click shows its attention on them
                self._shown_inputs = (cp[0], kp[0])
        reply_unknown_commands(self, COMMANDS)
        track(self, "view")  # the side panel's registry (weak reference)

    @classmethod
    def from_result(cls, result: Any, model: Model | Any = None, **kwargs: Any) -> PatchingWidget:
        """A widget showing ``result``; with ``model`` (and the prompts it came from) also the controls."""
        if model is not None:
            model = _as_model(model)
        return cls(model, result=result, **kwargs)

    # --- Python API -------------------------------------------------------------------------
    @property
    def model(self) -> Model | None:
        return self._model

    @property
    def last_result(self) -> Any:
        """The result on screen (a SweepResult, or what was passed to :meth:`show_result`)."""
        return self._last

    @property
    def running(self) -> bool:
        return self._job is not None and self._job.running

    def show_result(self, result: Any, *, metric: str | None = None) -> None:
        """Replace the heatmap by ``result`` (a SweepResult or HeadScores); ``metric`` names the metric."""
        self.result = heatmap_data(result, metric=metric).model_dump()
        self._last = result

    def request(self) -> RunRequest:
        """The run the form fields describe."""
        return RunRequest.model_validate({name: getattr(self, name) for name in RunRequest.model_fields})

    def run(self, *, wait: bool = False, **fields: Any) -> int:
        """Start a run with the form fields (``fields`` set some first); returns its run id.

        Bad inputs raise at once (e.g. :class:`~interp_widget.InputMismatchError`). ``wait=True``
        blocks until the run ends (see :meth:`wait`).
        """
        for name, value in fields.items():
            if name not in RunRequest.model_fields:
                msg = f"unknown field {name!r}; fields: {', '.join(RunRequest.model_fields)}"
                raise TypeError(msg)
            setattr(self, name, _lines(value) if name in ("clean", "corrupted") else value)
        started = self._start(self.request())
        if wait:
            self.wait()
        return started.run_id

    def cancel(self) -> bool:
        """Stop the run in progress at its next batched chunk; False if none is running."""
        return self._job.cancel() if self._job is not None else False

    def wait(self, timeout: float | None = None) -> Any:
        """Wait for the current run; return the result on screen. A failed run raises its error."""
        job = self._job
        if job is None:
            return self._last
        if not job.join(timeout):
            msg = f"run {job.run_id} is still going after {timeout} s"
            raise TimeoutError(msg)
        if job.error is not None:
            raise job.error
        return self._last

    # --- runs ---------------------------------------------------------------------------------
    def _start(self, req: RunRequest) -> RunStarted:
        model = self._model
        if model is None:
            msg = "this heatmap has no model attached: use iw.patching_widget(model, ...) to run patching"
            raise InputMismatchError(msg)
        if self.running:
            msg = "a run is already in progress: wait for it or cancel it"
            raise InputMismatchError(msg)
        prepared = prepare(model, req)  # raises on bad inputs, before anything runs
        with self.hold_sync():  # the form shows what runs
            for name in ("clean", "corrupted", "metric", "answer", "wrong", "component", "receiver", "normalize"):
                setattr(self, name, getattr(req, name))
        job = Job(next(_RUN_IDS), model, prepared, on_status=self._push_status, on_done=self._finished,
                  max_batch=self.max_batch, max_bytes=self.max_bytes)
        self._job = job
        job.start()
        return RunStarted(run_id=job.run_id, n_prompts=prepared.n_prompts, n_tokens=prepared.n_tokens)

    def _push_status(self, status: RunStatus) -> None:
        self.send(StatusMessage(status=status).model_dump())

    def _finished(self, job: Job) -> None:
        """In the worker thread: show the new result (or keep the old one) and the final status."""
        if job.result is not None:
            p = job.prepared
            with self._attn_guard:
                self._attn = None
                self._shown_inputs = (p.clean_texts[0], p.corrupted_texts[0])
            self.show_result(job.result, metric=metric_label(p.request))
        elif job.error is not None and not isinstance(job.error, RunCancelledError):
            log.info("patching run %s failed: %s", job.run_id, job.error)
        self.status = job.status.model_dump()
        self._push_status(job.status)

    # --- commands -----------------------------------------------------------------------------
    @_command
    def start_run(self, msg: dict[str, Any]) -> RunStarted:
        """Start a run (see :class:`~interp_widget.schema.patching.RunRequest`)."""
        return self._start(RunRequest.model_validate(msg))

    @_command
    def cancel_run(self, msg: dict[str, Any]) -> CancelReply:
        req = CancelRequest.model_validate(msg)
        job = self._job
        if job is None or (req.run_id is not None and req.run_id != job.run_id):
            return CancelReply(run_id=req.run_id, cancelled=False)
        return CancelReply(run_id=job.run_id, cancelled=job.cancel())

    @_command
    def open_head(self, msg: dict[str, Any]) -> HeadPatternsReply:
        """One head's attention pattern on the clean and the corrupted prompt of the result on screen."""
        req = OpenHeadRequest.model_validate(msg)
        data = self._attention_data()
        data.check_index(layer=req.layer, head=req.head)
        windows = []
        for prompt in (0, 1):
            size = min(len(data.tokens[prompt]), req.window_size)
            windows.append(data.window(prompt, req.layer, req.head, 0, size, 0, size))
        return HeadPatternsReply(model_name=data.model_name, n_layers=data.n_layers, n_heads=data.n_heads,
                                 layer=req.layer, head=req.head, names=["clean", "corrupted"],
                                 prompts=[data.prompt_data(i, 32) for i in (0, 1)], windows=windows)

    @_command
    def get_pattern(self, msg: dict[str, Any]) -> PatternReply:
        """A window of a head's pattern (prompt 0: clean, 1: corrupted), as the attention view asks."""
        req = GetPatternRequest.model_validate(msg)
        data = self._attention_data()
        return PatternReply(window=data.window(req.prompt, req.layer, req.head, req.q0, req.q1, req.k0, req.k1,
                                               max_size=req.max_size, precision=req.precision))

    def _attention_data(self) -> AttentionData:
        with self._attn_guard:
            if self._attn is not None:
                return self._attn
            model, inputs = self._model, self._shown_inputs
        if model is None:
            msg = "this heatmap has no model attached: show it with iw.show(result, model, clean=..., corrupted=...)"
            raise InputMismatchError(msg)
        if inputs is None:
            msg = "no clean and corrupted prompts yet: run patching first"
            raise InputMismatchError(msg)
        from interp_widget.widgets._patterns import collect

        data = collect(model, list(inputs))  # between a running sweep's chunks (see serialize_runs)
        with self._attn_guard:
            if self._shown_inputs == inputs:
                self._attn = data
        return data

    # --- state, snapshot ----------------------------------------------------------------------
    def state_model(self) -> PatchingState:
        return PatchingState.model_validate({name: getattr(self, name) for name in PatchingState.model_fields})

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return add_snapshot(super()._repr_mimebundle_(**kwargs), self.snapshot,
                            lambda: snapshot_html(self.state_model().model_dump()))

    def __repr__(self) -> str:
        res = self.result
        shown = f"showing {res['title']!r}" if res else "no result yet"
        return (f"<PatchingWidget {self.model_name or '(no model)'!r}: {shown}; "
                f"status {self.status.get('state', 'idle')}>")


def metric_label(req: RunRequest) -> str:
    """How the view names the metric of a run, e.g. ``logit diff ' Mary' − ' John'``."""
    if req.metric == "logit_diff":
        return f"logit diff {req.answer!r} − {req.wrong!r}"
    if req.metric == "probability":
        return f"probability of {req.answer!r}"
    return {"kl": "KL divergence from clean", "loss": "loss"}[req.metric]


def _lines(value: str | list[str] | tuple[str, ...]) -> str:
    if isinstance(value, (list, tuple)):
        bad = [v for v in value if "\n" in v]
        if bad:
            msg = f"a prompt cannot contain a newline (prompts are one per line): {bad[0]!r}"
            raise InputMismatchError(msg)
        return "\n".join(value)
    return str(value)


def _as_model(model: Any) -> Model:
    from interp_widget.models.model import Model

    if isinstance(model, Model):
        return model
    from interp_widget.models.loading import load

    return load(model)


def patching_widget(
    model: Model | Any,
    clean: str | list[str] = "",
    corrupted: str | list[str] = "",
    *,
    answer: str = "",
    wrong: str = "",
    metric: str = "logit_diff",
    component: str = "heads",
    receiver: str = "logits",
    normalize: bool = False,
    run: bool = True,
    result: Any = None,
    max_batch: int | None = None,
    max_bytes: int | None = None,
    snapshot: bool = True,
) -> PatchingWidget:
    """Patching controls and result heatmap for ``model``.

    ``model``: a :class:`~interp_widget.Model` or anything :func:`interp_widget.load` accepts.
    ``clean`` / ``corrupted``: a prompt each, or lists (one prompt per line in the view; every prompt
    the same number of tokens). ``metric``: ``"logit_diff"`` (``answer`` minus ``wrong``),
    ``"probability"`` (of ``answer``), ``"kl"`` or ``"loss"``. ``component``: ``"resid"``, ``"attn"``,
    ``"mlp"`` (layer x position), ``"heads"`` or ``"path"`` (every head into ``receiver``: ``"logits"``
    or e.g. ``"L1H2.k"``). With ``run=True`` and both prompts given, the first run starts at once (in
    the background; :meth:`PatchingWidget.wait` waits for it) and bad inputs raise here.
    ``max_batch`` / ``max_bytes`` size the batched chunks (a smaller chunk: more frequent progress).
    """
    m = _as_model(model)
    w = PatchingWidget(m, clean=clean, corrupted=corrupted, metric=metric, answer=answer, wrong=wrong,
                       component=component, receiver=receiver, normalize=normalize, result=result,
                       max_batch=max_batch, max_bytes=max_bytes, snapshot=snapshot)
    if run and result is None and w.clean and w.corrupted:
        w.run()
    return w
