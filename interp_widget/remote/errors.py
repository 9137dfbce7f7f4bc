"""What can go wrong with a remote run, each error naming what to do.

:func:`classify` turns what nnsight / the server said into one of these; it never puts the API key
in a message (the key travels only in a request header).
"""

from __future__ import annotations

import re

from interp_widget.errors import BackendError


class RemoteError(BackendError):
    """A remote (NDIF) run failed."""


class RemoteUnreachableError(RemoteError, ConnectionError):
    """The NDIF server could not be reached (or its compute backend is down)."""


class RemoteAuthError(RemoteError, PermissionError):
    """The server refused the API key (missing, malformed or unknown)."""


class RemoteVersionError(RemoteError):
    """The client (nnsight / Python) and the server do not match."""


class RemoteRefusedError(RemoteError):
    """The server would not load or run the code of the request."""


class RemoteTimeoutError(RemoteError, TimeoutError):
    """The job did not finish in time (client wait limit or the server's execution limit)."""


class RemoteCancelledError(RemoteError):
    """The job was cancelled (by the caller, or by the server's operator)."""


class RemoteJobError(RemoteError):
    """The code ran on the server and raised; the message is the server's."""


_CONFIG_HINT = "iw.remote.configure(host=..., api_key=...) or the NDIF_HOST / NDIF_API_KEY environment variables"


def unreachable(host: str, reason: str) -> RemoteUnreachableError:
    return RemoteUnreachableError(
        f"cannot reach the NDIF server at {host} ({reason}). Check the host ({_CONFIG_HINT}), your network "
        "connection, and whether the service is up (https://status.ndif.us for the public NDIF).")


def classify(message: str, host: str, *, status_code: int | None = None) -> RemoteError:
    """The error for a failure the server (or the HTTP layer) reported as ``message``."""
    text = message or "no details"
    low = text.lower()
    if status_code in (401, 403) or "api key" in low:
        return RemoteAuthError(
            f"the NDIF server at {host} refused the API key: {_redact(text)} Set a valid key with {_CONFIG_HINT} "
            "(keys for the public NDIF come from https://login.ndif.us).")
    if "nnsight version" in low or "python version" in low:
        return RemoteVersionError(
            f"the NDIF server at {host} does not accept this client: {text} "
            "Upgrade with `pip install --upgrade nnsight` (and use the Python version the server asks for), "
            "or compare the environments with nnsight.ndif.compare().")
    if "execution timeout" in low:
        return RemoteTimeoutError(
            f"the job ran past the execution time limit of the NDIF server at {host}: {text} Run a smaller request (fewer prompts "
            "or sites: max_batch= / layers=) or ask the server's operator for a longer limit.")
    if "cancelled" in low:
        return RemoteCancelledError(f"the job was cancelled on the NDIF server at {host}: {text} Run it again if "
                                    "that was not you (the server may have been restarting).")
    if status_code == 503 or "temporarily unavailable" in low or "reconnecting" in low:
        return RemoteUnreachableError(
            f"the NDIF server at {host} is up but cannot run jobs now: {text} Try again in a few minutes.")
    if re.search(r"modulenotfounderror|no module named|not whitelisted|not allowed|sourcenotavailable|"
                 r"can't get attribute|refused", low):
        return RemoteRefusedError(
            f"the NDIF server at {host} refused the code of this request: {text} Everything the request runs must "
            "be importable on the server or shipped with it: functions from your own files need "
            "nnsight.register(your_module) (interp-widget ships its own code).")
    if status_code is not None:
        return RemoteError(f"the NDIF server at {host} rejected the request (HTTP {status_code}): {text}")
    return RemoteJobError(f"the remote job failed on {host}: {text}")


_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _redact(text: str) -> str:
    """NDIF echoes a malformed key back in its 400 message; never repeat it."""
    text = re.sub(r"API key format: '[^']*'", "API key format: '********'", text)
    return _UUID.sub("********", text)
