"""Where remote runs go (NDIF host) and with which API key; the key never shows.

:func:`resolve` reads, at call time and in this order: the arguments, the environment
(``NDIF_HOST`` / ``NDIF_API_KEY``, read now, not at import), nnsight's config (``nnsight.CONFIG``:
its config file ``~/.config/nnsight/config.yaml`` or values set in this session), then nnsight's
default host. :func:`configure` also writes the values into ``nnsight.CONFIG`` so that plain nnsight
code in the same session (``model.trace(..., remote=True)``) uses them too: nnsight reads the
environment only once, when it is imported.

The key is held in a :class:`Secret`: its ``repr``/``str`` are redacted, it refuses to be pickled
(so it cannot end up in widget state, a saved result or a notebook), and only :meth:`Secret.reveal`
gives the value, to put in the request header.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

DEFAULT_HOST = "https://api.ndif.us"


class Secret:
    """A string that does not print itself (the NDIF API key)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str) or not value:
            msg = "an API key must be a non-empty string"
            raise ValueError(msg)
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self) -> Any:
        msg = "an API key is not pickled (it would end up in saved files); pass it again where it is needed"
        raise TypeError(msg)


@dataclass(frozen=True)
class RemoteConfig:
    """The host and key a remote run uses, and where each came from (for messages)."""

    host: str
    api_key: Secret | None = None
    host_from: str = "default"
    key_from: str = "not set"

    def __repr__(self) -> str:
        key = f"set ({self.key_from})" if self.api_key is not None else "not set"
        return f"RemoteConfig(host={self.host!r} ({self.host_from}), api_key={key})"


def _nnsight_api() -> Any:
    from nnsight import CONFIG

    return CONFIG.API


def resolve(host: str | None = None, api_key: str | Secret | None = None) -> RemoteConfig:
    """The host and key to use now (see the module docstring for the order)."""
    api = _nnsight_api()
    if host:
        h, hf = host, "argument"
    elif os.environ.get("NDIF_HOST"):
        h, hf = os.environ["NDIF_HOST"], "NDIF_HOST"
    elif api.HOST and api.HOST != DEFAULT_HOST:
        h, hf = api.HOST, "nnsight config"
    else:
        h, hf = DEFAULT_HOST, "default"
    h = h.strip().rstrip("/")
    if not h.startswith(("http://", "https://")):
        msg = f"the NDIF host {h!r} ({hf}) must start with http:// or https:// (e.g. {DEFAULT_HOST})"
        raise ValueError(msg)
    key: Secret | None
    if api_key:
        key, kf = (api_key if isinstance(api_key, Secret) else Secret(api_key)), "argument"
    elif os.environ.get("NDIF_API_KEY"):
        key, kf = Secret(os.environ["NDIF_API_KEY"]), "NDIF_API_KEY"
    elif api.APIKEY:
        key, kf = Secret(api.APIKEY), "nnsight config"
    else:
        key, kf = None, "not set"
    return RemoteConfig(h, key, hf, kf)


def configure(host: str | None = None, api_key: str | Secret | None = None, *, save: bool = False) -> RemoteConfig:
    """Resolve host and key and apply them to ``nnsight.CONFIG`` now (``save=True``: also to its config file).

    Returns the :class:`RemoteConfig` (its repr never shows the key)."""
    cfg = resolve(host, api_key)
    api = _nnsight_api()
    api.HOST = cfg.host
    if cfg.api_key is not None:
        api.APIKEY = cfg.api_key.reveal()
    if save:
        from nnsight import CONFIG

        CONFIG.save()
    return cfg
