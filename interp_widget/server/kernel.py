"""The comm target ``interp-widget-panel`` in an IPython kernel, and the updates it pushes.

:func:`serve_in_kernel` (called when ``interp_widget`` is imported) does nothing outside an
ipykernel. Inside one it

* registers the comm target, so the panel can open a comm to this kernel at any time;
* registers a *beacon*: a comm with that target name in the kernel's comm manager, never opened
  and never sent. The panel asks the kernel (``comm_info_request``, after each cell while it
  waits) whether a comm of that target exists: the beacon says interp_widget is here, without
  any message to a front end that has no panel (nbclient, papermill, VS Code) and without
  ipykernel's "No such comm target" error that probing by opening a comm would log;
* after every cell, scans the user's namespace for interp-widget objects and pushes the entries to
  every open panel comm if they changed; objects created during a long cell are pushed as they
  come (at most every :data:`PUSH_INTERVAL` seconds).

Nothing that happens here may raise into the user's code or the kernel: every handler catches,
logs and (for requests) replies with a typed error.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
import time
from typing import Any

log = logging.getLogger(__name__)

TARGET = "interp-widget-panel"  # same as interp_widget.server.messages.TARGET (kept here: no pydantic import)
PUSH_INTERVAL = 0.5
DISABLE_ENV = "INTERP_WIDGET_NO_PANEL"

_SERVER: KernelServer | None = None
_LOCK = threading.Lock()


def kernel_shell() -> Any:
    """The IPython shell of the running ipykernel, or None (plain Python, a terminal IPython)."""
    if "ipykernel" not in sys.modules or "IPython" not in sys.modules:
        return None
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    return shell if shell is not None and getattr(shell, "kernel", None) is not None else None


def serve_in_kernel() -> KernelServer | None:
    """Start the panel server in this kernel (once); None outside an ipykernel. Never raises."""
    global _SERVER
    if os.environ.get(DISABLE_ENV, "").lower() in {"1", "true", "yes", "on"}:
        return None
    with _LOCK:
        if _SERVER is not None:
            return _SERVER
        shell = kernel_shell()
        if shell is None:
            return None
        try:
            server = KernelServer(shell)
            server.start()
        except Exception:
            log.warning("interp-widget: could not start the side-panel server", exc_info=True)
            return None
        _SERVER = server
        return server


def current() -> KernelServer | None:
    return _SERVER


class KernelServer:
    """Wires a :class:`~interp_widget.server.handler.PanelServer` to comms in an IPython kernel."""

    def __init__(self, shell: Any, registry: Any = None, comm_module: Any = None) -> None:
        from interp_widget.server.registry import REGISTRY

        self.shell = shell
        self.registry = registry if registry is not None else REGISTRY
        self._comm_module = comm_module
        self.comms: dict[str, Any] = {}
        self._handler: Any = None  # the PanelServer, made on first use (imports pydantic)
        self._sent: dict[str, str] = {}  # comm id -> fingerprint of the last entries it got
        self._last_push = 0.0
        self._pending = False
        self._unsubscribe: Any = None
        self.beacon: Any = None

    # --- life cycle ---------------------------------------------------------------------
    @property
    def comm(self) -> Any:
        if self._comm_module is None:
            import comm

            self._comm_module = comm
        return self._comm_module

    @property
    def handler(self) -> Any:
        if self._handler is None:
            from interp_widget.server.handler import PanelServer

            self._handler = PanelServer(self.registry, namespace=lambda: self.shell.user_ns)
        return self._handler

    def start(self) -> None:
        self.comm.get_comm_manager().register_target(TARGET, self._on_open)
        self.shell.events.register("post_run_cell", self._post_run_cell)
        self._unsubscribe = self.registry.subscribe(self._on_change)
        self.beacon = self.comm.create_comm(target_name=TARGET, comm_id=f"{TARGET}-beacon-{os.getpid()}", primary=False)
        self.comm.get_comm_manager().register_comm(self.beacon)

    def stop(self) -> None:
        """Unregister everything (tests; a kernel does not need it)."""
        try:
            self.comm.get_comm_manager().unregister_target(TARGET, self._on_open)
        except Exception:
            log.debug("unregister_target failed", exc_info=True)
        if self.beacon is not None:
            with contextlib.suppress(Exception):
                self.comm.get_comm_manager().unregister_comm(self.beacon)
        with contextlib.suppress(ValueError):
            self.shell.events.unregister("post_run_cell", self._post_run_cell)
        if self._unsubscribe is not None:
            self._unsubscribe()
        for c in list(self.comms.values()):
            self._safe_close(c)
        self.comms.clear()

    # --- comms ------------------------------------------------------------------------------
    def _on_open(self, c: Any, msg: dict[str, Any]) -> None:
        """The panel opened a comm: keep it; answer the request it carried, else send the entries."""
        self._adopt(c)
        data = (msg.get("content") or {}).get("data") if isinstance(msg, dict) else None
        if isinstance(data, dict) and data.get("type") is not None:
            self._reply(c, data, msg.get("buffers") or [])
        else:
            data, buffers = self._push_message()
            self._send(c, data, buffers)
            self._sent[str(c.comm_id)] = self._fingerprint(data)

    def _adopt(self, c: Any) -> None:
        comm_id = str(c.comm_id)
        self.comms[comm_id] = c
        c.on_msg(lambda msg: self._on_msg(c, msg))
        c.on_close(lambda msg: self._on_close(comm_id))

    def _on_msg(self, c: Any, msg: Any) -> None:
        try:
            content = msg.get("content") if isinstance(msg, dict) else None
            data = content.get("data") if isinstance(content, dict) else None
            buffers = msg.get("buffers") if isinstance(msg, dict) else None
            self._reply(c, data, list(buffers or []))
        except Exception:  # never into the kernel
            log.warning("interp-widget: a panel message could not be handled", exc_info=True)

    def _reply(self, c: Any, data: Any, buffers: list[Any]) -> None:
        reply, out = self.handler.handle(data, buffers, client=str(c.comm_id))
        self._send(c, reply, out)

    def _on_close(self, comm_id: str) -> None:
        self.comms.pop(comm_id, None)
        self._sent.pop(comm_id, None)
        try:
            if self._handler is not None:
                self._handler.release_client(comm_id)
        except Exception:
            log.debug("releasing the panel's widgets failed", exc_info=True)

    def _send(self, c: Any, data: dict[str, Any], buffers: list[bytes]) -> None:
        try:
            c.send(data=data, buffers=buffers)
        except Exception:
            log.warning("interp-widget: could not send to the panel", exc_info=True)

    @staticmethod
    def _safe_close(c: Any) -> None:
        try:
            c.close()
        except Exception:
            log.debug("closing a panel comm failed", exc_info=True)

    # --- updates -------------------------------------------------------------------------------
    def _push_message(self) -> tuple[dict[str, Any], list[bytes]]:
        from interp_widget.server.handler import envelope

        return envelope(self.handler.push())

    @staticmethod
    def _fingerprint(data: dict[str, Any]) -> str:
        msg = dict(data.get("message") or {})
        msg.pop("version", None)  # a version bump alone (a dead entry already dropped) is no news
        return json.dumps(msg, sort_keys=True, default=str)

    def push(self, *, force: bool = False) -> bool:
        """Send the entries to every open panel comm if they changed; True if something was sent."""
        self._pending = False
        if not self.comms:
            return False
        data, buffers = self._push_message()
        fp = self._fingerprint(data)
        sent = False
        for comm_id, c in list(self.comms.items()):
            if force or self._sent.get(comm_id) != fp:
                self._send(c, data, buffers)
                self._sent[comm_id] = fp
                sent = True
        if sent:
            self._last_push = time.monotonic()
        return sent

    def _on_change(self, reason: str) -> None:
        """The registry changed during a cell: push now, or at the end of the cell if we pushed just now."""
        del reason
        if not self.comms:
            return
        if time.monotonic() - self._last_push >= PUSH_INTERVAL:
            try:
                self.push()
            except Exception:
                log.debug("interp-widget: push failed", exc_info=True)
        else:
            self._pending = True

    def _post_run_cell(self, result: Any = None) -> None:
        del result
        try:
            self.registry.scan(self.shell.user_ns)
            if self.comms:
                self.push()
        except Exception:
            log.debug("interp-widget: post-cell update failed", exc_info=True)
