"""Remote tracing on NDIF: configuration, job status, errors, and one-request analyses.

>>> import interp_widget as iw
>>> iw.remote.configure(api_key="...")                 # doctest: +SKIP  (or NDIF_API_KEY / nnsight's config file)
>>> model = iw.load("openai-community/gpt2", remote=True)  # doctest: +SKIP  (config and tokenizer only)
>>> res = iw.remote.run(model, iw.patch, clean, corrupted, metric, sites="heads")  # doctest: +SKIP

:func:`run` sends a whole analysis (every forward pass of a batched sweep) to the server as ONE
request and brings back only its result; calling an analysis directly on a remote model also works,
one request per forward pass. Backend: :mod:`interp_widget.tracing.remote.backend`.
"""

from __future__ import annotations

import sys
from typing import Any

from interp_widget.remote.config import DEFAULT_HOST, RemoteConfig, Secret, configure, resolve
from interp_widget.remote.errors import (
    RemoteAuthError,
    RemoteCancelledError,
    RemoteError,
    RemoteJobError,
    RemoteRefusedError,
    RemoteTimeoutError,
    RemoteUnreachableError,
    RemoteVersionError,
)
from interp_widget.remote.status import RemoteJob, RemoteStatus


def run(model: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """``fn(model, *args, **kwargs)`` in ONE request when ``model`` is remote (a plain call otherwise).

    Extra keywords for the remote call: ``on_status=`` (called with the :class:`RemoteJob` at every
    update), ``timeout=`` (seconds to wait for the result). ``progress=`` is passed to ``fn`` as usual
    and fed from the server while the job runs."""
    from interp_widget.tracing.remote.backend import remote_call

    return remote_call(model, fn, *args, **kwargs)


#: ``iw.remote`` resolves through interp_widget's lazy table (name -> module defining it), so the module
#: names itself
remote = sys.modules[__name__]


def is_remote(model: Any) -> bool:
    return bool(getattr(getattr(model, "backend", None), "remote", False))


__all__ = [
    "DEFAULT_HOST", "RemoteAuthError", "RemoteCancelledError", "RemoteConfig", "RemoteError", "RemoteJob",
    "RemoteJobError", "RemoteRefusedError", "RemoteStatus", "RemoteTimeoutError", "RemoteUnreachableError",
    "RemoteVersionError", "Secret", "configure", "is_remote", "resolve", "run",
]
