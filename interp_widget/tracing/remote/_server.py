"""Runs on the NDIF server (shipped as source, see ``_bootstrap``): one call with the server's model.

The result is pickled with the server's model replaced by a reference that the client resolves to its
own (remote) model. ``progress=`` placeholders become a function that prints ``iw-progress done/total`` lines: NDIF
streams a job's stdout back as LOG updates while it runs, and the client turns them into progress.
"""

from __future__ import annotations

import dataclasses
import io
import pickle
from typing import Any

import cloudpickle

#: the persistent id that stands for the model in a pickled result
MODEL_REF = "interp_widget:model"

#: stands in for a ``progress`` callback in a shipped call (the real one stays on the client)
PROGRESS = "__iw_remote_progress__"


def _progress(done: int, total: int) -> None:
    print(f"iw-progress {done}/{total}", flush=True)


def execute(root: Any, call: bytes, digest: str = "") -> bytes:
    from interp_widget.models.model import Model
    from interp_widget.tracing.nnsight_backend import NNsightBackend

    try:
        fn, name, args, kwargs, nonce, expected = pickle.loads(call)
    except (ImportError, AttributeError) as exc:  # e.g. a function from a local file the server cannot import
        msg = (f"the server could not load the function of this request ({type(exc).__name__}: {exc}); "
               "code from local files must be shipped by value (nnsight.register(module))")
        raise ModuleNotFoundError(msg) from exc
    if isinstance(fn, tuple):  # (module, qualname) of an interp_widget function
        import importlib

        fn = getattr(importlib.import_module(fn[0]), fn[1])
    if expected and digest != expected:
        msg = (f"the code shipped with this request ({digest}) is not the code its call was built for ({expected}); "
               "send the request again")
        raise RuntimeError(msg)
    kwargs = {k: (_progress if isinstance(v, str) and v == PROGRESS else v) for k, v in kwargs.items()}
    model = Model(NNsightBackend(root, name=name), name=name, raw=root)
    result = _without_caches(fn(model, *args, **kwargs))
    buf = io.BytesIO()
    _Pickler(buf, model).dump((nonce, result))
    return buf.getvalue()


def _without_caches(result: Any) -> Any:
    """A circuit graph's context caches live capture machinery on first use (``_setup``): not shipped, it is
    rebuilt on the client when needed."""
    ctx = getattr(result, "context", None)
    if ctx is not None and getattr(ctx, "_setup", None) is not None and dataclasses.is_dataclass(result):
        result = dataclasses.replace(result, context=dataclasses.replace(ctx, _setup=None))
    return result


class _Pickler(cloudpickle.Pickler):
    """Pickles the result (cloudpickle: a result may hold the caller's own metric function) with the server's
    model left out: a result that refers to its model (a circuit
    graph's context) gets the client's model back in its place (see ``MODEL_REF``)."""

    def __init__(self, file: Any, model: Any) -> None:
        super().__init__(file)
        self._model = model

    def persistent_id(self, obj: Any) -> str | None:
        return MODEL_REF if obj is self._model else None


def run(model: Any, tokens: Any, **kwargs: Any) -> Any:
    """One ``Backend.run`` (what a remote backend's ``run`` ships)."""
    return model.backend.run(tokens, **kwargs)
