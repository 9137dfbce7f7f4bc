"""Commands that always reply.

anywidget's ``experimental.command`` sends nothing back when a command raises (and raises a
``KeyError`` for an unknown command name), so the browser's ``invoke`` just times out. Every
interp-widget command goes through :func:`safe_command`: a failure becomes
``{ok: false, error: {type_name, message}}``, and :func:`reply_unknown_commands` answers
commands the widget does not have.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from anywidget.experimental import command
from pydantic import BaseModel, ValidationError

from interp_widget.schema import CommandEnvelope, ErrorInfo, ErrorReply, pack

log = logging.getLogger(__name__)

W = TypeVar("W")
Handler = Callable[[W, dict[str, Any], list[bytes]], BaseModel]


def error_reply(exc: BaseException) -> ErrorReply:
    if isinstance(exc, ValidationError):  # one line per problem, without pydantic's URLs
        message = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'message'}: {e['msg']}" for e in exc.errors())
        message = f"invalid {exc.title}: {message}"
    else:
        message = str(exc)
    return ErrorReply(error=ErrorInfo(type_name=type(exc).__name__, message=message))


def envelope(reply: BaseModel, model: type[BaseModel] = CommandEnvelope) -> tuple[dict[str, Any], list[bytes]]:
    """The command ``response`` (reply without bytes + buffer paths) and its buffers; checked against
    ``model``, the widget's envelope type (its union of replies)."""
    stripped, paths, buffers = pack(reply.model_dump())
    response = {"reply": stripped, "buffer_paths": paths}
    model.model_validate({"reply": reply.model_dump(), "buffer_paths": paths})  # keeps the schema honest
    return response, buffers


def safe_command(fn: Callable[[W, dict[str, Any], list[bytes]], BaseModel] | None = None, *,
                 envelope_model: type[BaseModel] = CommandEnvelope) -> Any:
    """Mark ``fn`` as an anywidget command whose failures reply with an :class:`ErrorReply`.

    ``@safe_command`` or ``@safe_command(envelope_model=X)`` (replies checked against ``X``)."""
    if fn is None:
        return lambda f: safe_command(f, envelope_model=envelope_model)

    @functools.wraps(fn)
    def wrapper(self: W, msg: Any, buffers: list[bytes]) -> tuple[dict[str, Any], list[bytes]]:
        try:
            if not isinstance(msg, dict):
                msg_type = type(msg).__name__
                err = f"{fn.__name__} expects an object, got {msg_type}"
                raise TypeError(err)
            reply = fn(self, msg, buffers)
        except Exception as exc:
            log.debug("command %s failed", fn.__name__, exc_info=True)
            reply = error_reply(exc)
        return envelope(reply, envelope_model)

    return command(wrapper)


def message_command(envelope_model: type[BaseModel] = CommandEnvelope) -> Callable[[Callable[[Any, dict[str, Any]], BaseModel]], Any]:
    """:func:`safe_command` for a handler ``fn(self, msg)`` that takes no binary buffers."""

    def deco(fn: Callable[[Any, dict[str, Any]], BaseModel]) -> Any:
        @functools.wraps(fn)
        def with_buffers(self: Any, msg: dict[str, Any], buffers: list[bytes]) -> BaseModel:
            del buffers
            return fn(self, msg)

        return safe_command(with_buffers, envelope_model=envelope_model)

    return deco


def reply_unknown_commands(widget: Any, commands: set[str]) -> None:
    """Answer ``anywidget-command`` messages naming a command ``widget`` lacks with an error reply."""

    def handler(_: Any, msg: Any, buffers: list[bytes]) -> None:
        if not isinstance(msg, dict) or msg.get("kind") != "anywidget-command" or msg.get("name") in commands:
            return
        known = ", ".join(sorted(commands))
        exc = LookupError(f"unknown command {msg.get('name')!r}; this widget has: {known}")
        response, bufs = envelope(error_reply(exc))
        widget.send({"id": msg.get("id"), "kind": "anywidget-command-response", "response": response}, bufs)

    widget.on_msg(handler)
