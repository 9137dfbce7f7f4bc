"""Talking to a widget in a unit test as the front end does: record what it sends, send it a command."""

from __future__ import annotations

import json
import threading
from typing import Any

from interp_widget.schema import unpack


class Sent:
    """Every message a widget sends (``widget.send`` replaced for the test)."""

    def __init__(self, w: Any) -> None:
        self.messages: list[tuple[dict[str, Any], list[bytes]]] = []
        self.lock = threading.Lock()
        w.send = self._send

    def _send(self, content: dict[str, Any], buffers: Any = None) -> None:
        with self.lock:
            self.messages.append((content, list(buffers or [])))

    def statuses(self) -> list[dict[str, Any]]:
        with self.lock:
            return [c["status"] for c, _ in self.messages if c.get("kind") == "iw-status"]


def command(w: Any, name: str, msg: Any) -> dict[str, Any]:
    """Send an anywidget command as the front end does; return the unpacked reply."""
    sent = getattr(w, "_test_sent", None) or Sent(w)
    w._test_sent = sent
    before = len(sent.messages)
    w._handle_custom_msg({"kind": "anywidget-command", "id": f"req-{name}", "name": name, "msg": msg}, [])
    replies = [c for c in sent.messages[before:] if c[0].get("kind") == "anywidget-command-response"]
    assert len(replies) == 1, f"expected one reply, got {sent.messages[before:]}"
    content, buffers = replies[0]
    assert content["id"] == f"req-{name}"
    json.dumps(content)  # nothing but JSON besides the buffers
    env = content["response"]
    return unpack(env["reply"], env["buffer_paths"], buffers)
