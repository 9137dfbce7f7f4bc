"""The steering widget: a prompt, a direction, an op and a strength; Generate shows base and steered text.

>>> w = iw.steering_widget(model, sae=sae, site="blocks.0.mlp.hook_post", prompt="the")  # doctest: +SKIP
>>> w.generate(wait=True); w.last_result                                                  # doctest: +SKIP

The picker lists the named directions given (``directions={"name": vector}``) and every feature of
``sae`` (``feature 12``). Generate sends the ``generate`` command: the request is checked at once
(errors come back as the reply), generation runs in a worker thread with progress pushed per token,
and ``cancel_run`` stops it at the next token. Base and steered generations share their random
numbers (see :mod:`interp_widget.analysis.steering`), so they differ only where steering acts.

Importing this module imports no torch.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import anywidget
import traitlets as t

from interp_widget.errors import InputMismatchError, InterpWidgetError
from interp_widget.schema import encode
from interp_widget.schema.features import (
    DirectionOption,
    GenerateRequest,
    GenerateStarted,
    Generation,
    StaticSteering,
    SteeringEnvelope,
    SteeringState,
)
from interp_widget.schema.patching import CancelReply, CancelRequest, RunStatus, StatusMessage
from interp_widget.server.registry import track
from interp_widget.widgets._commands import reply_unknown_commands, safe_command
from interp_widget.widgets._static import STATIC_DIR
from interp_widget.widgets.features import missing_esm, snapshot_bundle

if TYPE_CHECKING:
    from interp_widget.analysis.steering import SteeringResult
    from interp_widget.models.model import Model

log = logging.getLogger(__name__)

BUNDLE = STATIC_DIR / "steering.js"
COMMANDS = {"start_generate", "cancel_run"}
_RUN_IDS = itertools.count(1)
#: most SAE features listed in the picker when ``features=`` does not choose them
MAX_LISTED = 1024
_command = safe_command(envelope_model=SteeringEnvelope)
#: sites offered in the picker, in this order
_PICKER = ("hook_resid_pre", "hook_resid_mid", "hook_resid_post", "hook_attn_out", "mlp.hook_post", "hook_mlp_out")


class CancelledError(InterpWidgetError):
    """Generation stopped by ``cancel_run``."""


def generation_data(res: SteeringResult) -> Generation:
    """The wire form of a :class:`~interp_widget.analysis.steering.SteeringResult`."""
    return Generation(
        prompt_tokens=res.prompt_tokens, base=res.base_str_tokens, steered=res.steered_str_tokens,
        base_ids=encode(res.base_tokens.numpy()), steered_ids=encode(res.steered_tokens.numpy()),
        base_text=res.base_text, steered_text=res.steered_text, site=res.site, op=res.op,  # type: ignore[arg-type]
        strength=res.strength, direction=res.direction, positions=res.positions,
    )


class SteeringWidget(anywidget.AnyWidget):
    """Steering controls and side-by-side generations; see the module docstring."""

    _esm = BUNDLE if BUNDLE.is_file() else missing_esm("steering")

    model_name = t.Unicode("").tag(sync=True)
    sites = t.List(t.Unicode()).tag(sync=True)
    directions = t.List(t.Dict()).tag(sync=True)
    prompt = t.Unicode("").tag(sync=True)
    site = t.Unicode("").tag(sync=True)
    direction = t.Unicode("").tag(sync=True)
    op = t.Enum(["add", "scale", "clamp"], "add").tag(sync=True)
    strength = t.Float(4.0).tag(sync=True)
    strength_min = t.Float(-20.0).tag(sync=True)
    strength_max = t.Float(20.0).tag(sync=True)
    positions = t.Enum(["all", "prompt"], "all").tag(sync=True)
    max_new_tokens = t.Int(12).tag(sync=True)
    n_samples = t.Int(1).tag(sync=True)
    greedy = t.Bool(False).tag(sync=True)
    seed = t.Int(0).tag(sync=True)
    controls = t.Bool(True).tag(sync=True)
    result = t.Dict(allow_none=True, default_value=None).tag(sync=True)
    status = t.Dict().tag(sync=True)

    def __init__(self, model: Model, *, directions: dict[str, Any] | None = None, sae: Any = None,
                 features: Sequence[int] | None = None, site: str | None = None, prompt: str = "",
                 snapshot: bool = True, **form: Any) -> None:
        from interp_widget.analysis.steering import STEERABLE, as_direction, sae_feature, sae_site
        from interp_widget.widgets._patching_run import serialize_runs

        self._model = model
        self._directions: dict[str, Any] = {}
        options: list[DirectionOption] = []
        for name, vec in (directions or {}).items():
            self._directions[f"named:{name}"] = as_direction(vec)
            options.append(DirectionOption(id=f"named:{name}", label=name))
        if sae is not None:
            n = int(sae_feature(sae, 0).sae.W_dec.shape[0])
            if features is None and n > MAX_LISTED:
                msg = f"the SAE has {n} features; pick at most {MAX_LISTED} for the list with features=[...]"
                raise InputMismatchError(msg)
            for i in range(n) if features is None else [sae_feature(sae, int(f)).index for f in features]:
                self._directions[f"feature:{i}"] = sae_feature(sae, i)
                options.append(DirectionOption(id=f"feature:{i}", label=f"feature {i}"))
        if not options:
            msg = "steering_widget needs directions: directions={'name': vector} and/or sae=an SAE"
            raise InputMismatchError(msg)
        sites = [i.site for i in model.sites() if i.site.component in _PICKER and i.site.component in STEERABLE]
        picker = [s.hook_name for s in sorted(sites, key=lambda s: (s.layer or 0, _PICKER.index(s.component)))]
        chosen = site or (sae_site(sae) if sae is not None else None) or (picker[0] if picker else "")
        if chosen and chosen not in picker:
            model.check_site(chosen)
            picker.insert(0, chosen)
        bad = set(form) - set(GenerateRequest.model_fields)
        if bad:
            msg = f"unknown field(s) {sorted(bad)}; fields: {', '.join(GenerateRequest.model_fields)}"
            raise TypeError(msg)
        super().__init__(model_name=model.name, sites=picker, directions=[o.model_dump() for o in options],
                         prompt=prompt, site=chosen, direction=options[0].id, status=RunStatus().model_dump(),
                         **form)
        serialize_runs(model)  # a cell may run the model while generation runs in the worker
        self.snapshot = snapshot
        self._thread: threading.Thread | None = None
        self._cancel = threading.Event()
        self._run_id = 0
        self._last: SteeringResult | None = None
        self._error: BaseException | None = None
        reply_unknown_commands(self, COMMANDS)
        track(self, "view")

    # --- Python API -------------------------------------------------------------------------------
    @property
    def last_result(self) -> SteeringResult | None:
        return self._last

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def request(self) -> GenerateRequest:
        return GenerateRequest.model_validate({k: getattr(self, k) for k in GenerateRequest.model_fields})

    def generate(self, *, wait: bool = False, **fields: Any) -> int:
        """Generate with the form fields (``fields`` set some first); returns the run id."""
        for name, value in fields.items():
            if name not in GenerateRequest.model_fields:
                msg = f"unknown field {name!r}; fields: {', '.join(GenerateRequest.model_fields)}"
                raise TypeError(msg)
            setattr(self, name, value)
        started = self._start(self.request())
        if wait:
            self.wait()
        return started.run_id

    def cancel(self) -> bool:
        if not self.running:
            return False
        self._cancel.set()
        return True

    def wait(self, timeout: float | None = None) -> SteeringResult | None:
        """Wait for the current generation; a failed one raises its error."""
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                msg = f"generation {self._run_id} is still going after {timeout} s"
                raise TimeoutError(msg)
        if self._error is not None and not isinstance(self._error, CancelledError):
            raise self._error
        return self._last

    # --- runs ---------------------------------------------------------------------------------------
    def _start(self, req: GenerateRequest) -> GenerateStarted:
        from interp_widget.analysis.steering import make_steering

        if self.running:
            msg = "a generation is already running: wait for it or cancel it"
            raise InputMismatchError(msg)
        if req.direction not in self._directions:
            msg = f"unknown direction {req.direction!r}; this widget has {len(self._directions)} (see .directions)"
            raise InputMismatchError(msg)
        direction = self._directions[req.direction]
        n_prompt = int(self._model.to_tokens(req.prompt).shape[1])
        make_steering(self._model, req.site, direction, req.op, req.strength, req.positions, n_prompt)  # checks
        n_ctx = self._model.spec.n_ctx
        if n_ctx and n_prompt + req.max_new_tokens > n_ctx:
            msg = (f"the prompt is {n_prompt} tokens; with {req.max_new_tokens} new tokens it passes the context "
                   f"window of {n_ctx}: ask for at most {max(0, n_ctx - n_prompt)}")
            raise InputMismatchError(msg)
        with self.hold_sync():
            for k in GenerateRequest.model_fields:
                setattr(self, k, getattr(req, k))
        self._run_id = next(_RUN_IDS)
        self._cancel = threading.Event()
        self._error = None
        run_id, cancel, t0 = self._run_id, self._cancel, time.monotonic()
        self._push(RunStatus(state="running", run_id=run_id, total=req.max_new_tokens), final=True)
        self._thread = threading.Thread(target=self._work, args=(req, direction, run_id, cancel, t0), daemon=True,
                                        name=f"interp-widget-steering-{run_id}")
        self._thread.start()
        return GenerateStarted(run_id=run_id, n_prompt_tokens=n_prompt)

    def _work(self, req: GenerateRequest, direction: Any, run_id: int, cancel: threading.Event, t0: float) -> None:
        from interp_widget.analysis.steering import steer

        done_tokens = 0

        def progress(done: int, total: int) -> None:
            nonlocal done_tokens
            done_tokens = done
            if cancel.is_set():
                raise CancelledError(f"cancelled after {done - 1} of {total} tokens")
            self._push(RunStatus(state="running", run_id=run_id, done=done, total=total,
                                 elapsed_s=round(time.monotonic() - t0, 3)))

        try:
            res = steer(self._model, req.prompt, req.site, direction, op=req.op, strength=req.strength,
                        positions=req.positions, max_new_tokens=req.max_new_tokens, n_samples=req.n_samples,
                        greedy=req.greedy, seed=req.seed, progress=progress)
            self._last = res
            self.result = generation_data(res).model_dump()
            status = RunStatus(state="done", run_id=run_id, done=req.max_new_tokens, total=req.max_new_tokens)
        except Exception as exc:  # reported to the view; wait() raises it
            self._error = exc
            state = "cancelled" if isinstance(exc, CancelledError) else "error"
            status = RunStatus(state=state, run_id=run_id, done=done_tokens, total=req.max_new_tokens,  # type: ignore[arg-type]
                               error_type=type(exc).__name__, message=str(exc))
        status = status.model_copy(update={"elapsed_s": round(time.monotonic() - t0, 3)})
        self._push(status, final=True)

    def _push(self, status: RunStatus, *, final: bool = False) -> None:
        if final:
            self.status = status.model_dump()
        self.send(StatusMessage(status=status).model_dump())

    # --- commands -------------------------------------------------------------------------------------
    @_command
    def start_generate(self, msg: dict[str, Any], buffers: list[bytes]) -> GenerateStarted:
        return self._start(GenerateRequest.model_validate(msg))

    @_command
    def cancel_run(self, msg: dict[str, Any], buffers: list[bytes]) -> CancelReply:
        req = CancelRequest.model_validate(msg)
        if req.run_id is not None and req.run_id != self._run_id:
            return CancelReply(run_id=req.run_id, cancelled=False)
        return CancelReply(run_id=self._run_id or None, cancelled=self.cancel())

    # --- state, snapshot --------------------------------------------------------------------------------
    def state_model(self) -> SteeringState:
        return SteeringState.model_validate({k: getattr(self, k) for k in SteeringState.model_fields})

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return snapshot_bundle(self, super()._repr_mimebundle_(**kwargs), BUNDLE, "steering",
                               lambda: StaticSteering(state=self.state_model()).model_dump())

    def __repr__(self) -> str:
        return (f"<SteeringWidget {self.model_name!r}: {self.op} {self.direction} x {self.strength:g} at {self.site}; "
                f"status {self.status.get('state', 'idle')}>")


def steering_widget(model: Model | Any, *, directions: dict[str, Any] | None = None, sae: Any = None,
                    features: Sequence[int] | None = None, site: str | None = None, prompt: str = "",
                    snapshot: bool = True, **form: Any) -> SteeringWidget:
    """Steering controls for ``model`` (anything :func:`interp_widget.load` accepts).

    ``directions``: named vectors (e.g. ``{"positive - negative": iw.mean_difference(...)}``); ``sae``: an SAE
    whose features are offered too (its site is the default): all of them, or ``features=[...]`` (needed past
    1,024 features). ``form`` sets the other fields: ``op``,
    ``strength``, ``positions``, ``max_new_tokens``, ``n_samples``, ``greedy``, ``seed``.
    """
    from interp_widget.models.loading import load

    return SteeringWidget(load(model), directions=directions, sae=sae, features=features, site=site, prompt=prompt,
                          snapshot=snapshot, **form)


def result_mimebundle(res: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """What a :class:`~interp_widget.analysis.steering.SteeringResult` displays as: the steering view of its
    generations, static (no controls; the inlined bundle draws it), beside its plain ``repr``."""
    state = SteeringState(
        model_name=res.model_name, sites=[res.site], directions=[DirectionOption(id="result", label=res.direction)],
        prompt=res.prompt, site=res.site, direction="result", op=res.op, strength=res.strength,  # type: ignore[arg-type]
        strength_min=min(-20.0, res.strength), strength_max=max(20.0, res.strength),
        positions="prompt" if res.positions == "prompt" else "all", max_new_tokens=int(res.base_tokens.shape[1]),
        n_samples=res.n_samples, greedy=bool(res.meta.get("greedy", False)), seed=int(res.meta.get("seed", 0)),
        controls=False, result=generation_data(res), status=RunStatus(state="done"),
    )
    data: dict[str, Any] = {"text/plain": repr(res)}
    return snapshot_bundle(None, (data, {}), BUNDLE, "steering",  # type: ignore[no-any-return]
                           lambda: StaticSteering(state=state).model_dump())
