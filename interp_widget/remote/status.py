"""The state of a remote job as it goes: received, queued, deploying, running, completed.

A :class:`RemoteJob` is handed to the ``on_status`` callback of a remote call (and kept as
``model.backend.last_job``); every update from the server (one ``ResponseModel`` frame on the
websocket) becomes a :class:`RemoteStatus`. :meth:`RemoteJob.cancel` (from any thread) stops the
wait at once; where the caller has operator access to the server's Redis (a self-hosted NDIF,
``RemoteNNsightBackend(..., operator_redis_url=...)``) the job is also killed on the server.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

#: states a job goes through, in order (ERROR ends it early)
STATES = ("SUBMITTING", "RECEIVED", "QUEUED", "PROVISIONING", "DEPLOYING", "DISPATCHED", "RUNNING", "COMPLETED")

PROGRESS_PREFIX = "iw-progress "


@dataclass(frozen=True)
class RemoteStatus:
    """One update: the server's status name, its description, and our progress through the work."""

    state: str
    message: str = ""
    job_id: str = ""
    elapsed_s: float = 0.0
    done: int = 0
    total: int = 0

    def line(self) -> str:
        """A one-line summary for a status bar, e.g. ``"DEPLOYING (3.1 s): Model Deploying..."``."""
        prog = f" {self.done}/{self.total}" if self.total else ""
        return f"{self.state}{prog} ({self.elapsed_s:.1f} s): {self.message}".rstrip(": ")


@dataclass
class RemoteJob:
    """A remote request in flight (or ended): its statuses, bytes moved, and cancel."""

    host: str
    history: list[RemoteStatus] = field(default_factory=list)
    job_id: str = ""
    bytes_sent: int = 0
    bytes_received: int = 0
    round_trips: int = 0
    _cancel: threading.Event = field(default_factory=threading.Event)
    _t0: float = field(default_factory=time.monotonic)

    @property
    def status(self) -> RemoteStatus:
        return self.history[-1] if self.history else RemoteStatus("SUBMITTING")

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def cancel(self) -> None:
        """Stop waiting for the job (any thread); the wait raises RemoteCancelledError."""
        self._cancel.set()

    def record(self, state: str, message: str = "", *, done: int = 0, total: int = 0) -> RemoteStatus:
        last = self.status
        if not total and last.total:
            done, total = last.done, last.total
        st = RemoteStatus(state, message, self.job_id, round(time.monotonic() - self._t0, 3), done, total)
        self.history.append(st)
        return st

    def states(self) -> list[str]:
        """The distinct states seen, in order (e.g. ``['RECEIVED', 'QUEUED', 'RUNNING', 'COMPLETED']``)."""
        out: list[str] = []
        for s in self.history:
            if not out or out[-1] != s.state:
                out.append(s.state)
        return out

    def __repr__(self) -> str:
        return (f"<RemoteJob {self.job_id or '-'} on {self.host}: {self.status.state}, {len(self.history)} updates, "
                f"{self.bytes_sent} B sent, {self.bytes_received} B received>")


def parse_progress(text: str) -> tuple[int, int] | None:
    """``(done, total)`` from a progress line printed on the server, else None."""
    for line in reversed(text.strip().splitlines()):
        if line.startswith(PROGRESS_PREFIX):
            try:
                done, total = line[len(PROGRESS_PREFIX):].split("/")
                return int(done), int(total)
            except ValueError:
                return None
    return None


Callback = Any  # Callable[[RemoteJob], None]
