"""The panel's request handler: one validated request in, exactly one typed reply out, never an exception.

:meth:`PanelServer.handle` takes a comm message's ``data`` and buffers and returns the data and
buffers of the reply (see :mod:`interp_widget.server.messages`). It knows nothing of comms, so
tests call it directly; :mod:`interp_widget.server.kernel` wires it to a comm target.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from interp_widget._version import __version__
from interp_widget.schema import ErrorInfo, pack
from interp_widget.server.describe import details, names_by_object, summarize
from interp_widget.server.messages import (
    REQUEST_TYPES,
    DescribeReply,
    DescribeRequest,
    EntriesPush,
    EntriesReply,
    EntrySummary,
    ListRequest,
    PanelEnvelope,
    PanelError,
    ReleaseReply,
    ReleaseRequest,
    RenderReply,
    RenderRequest,
    Request,
    SnippetReply,
    SnippetRequest,
    SnippetTarget,
)
from interp_widget.server.registry import REGISTRY, Registry
from interp_widget.server.render import Owned, render, widget_by_id
from interp_widget.server.snippets import snippet

log = logging.getLogger(__name__)

_REQUEST = TypeAdapter(Request)
MAX_ID = 128


class RequestError(ValueError):
    """A request the server cannot read: not an object, no id, an unknown type."""


class PanelServer:
    """Answers the panel's requests about ``registry``; ``namespace`` gives the user's variables."""

    def __init__(self, registry: Registry = REGISTRY, namespace: Callable[[], Mapping[str, Any]] | None = None,
                 formatter: Callable[[Any], tuple[dict[str, Any], dict[str, Any]]] | None = None) -> None:
        self.registry = registry
        self.namespace = namespace or (lambda: {})
        self.formatter = formatter
        self.owned = Owned()

    # --- the entry point -----------------------------------------------------------------
    def handle(self, data: Any, buffers: list[Any] | None = None, *, client: str = "") -> tuple[dict[str, Any], list[bytes]]:
        """Answer one request (a comm message's ``data``); returns the reply's data and buffers."""
        del buffers  # no request carries binary data (yet)
        request_id = _request_id(data)
        try:
            req = self._validate(data)
            reply: BaseModel = self._dispatch(req, client)
        except Exception as exc:
            log.debug("panel request failed", exc_info=True)
            reply = PanelError(id=request_id, error=error_info(exc))
        try:
            return envelope(reply)
        except Exception as exc:  # a reply that cannot be serialised still gets an answer
            log.debug("panel reply could not be packed", exc_info=True)
            return envelope(PanelError(id=request_id, error=error_info(exc)))

    def _validate(self, data: Any) -> Any:
        if not isinstance(data, dict):
            msg = f"a panel request is a JSON object with 'id' and 'type'; got {type(data).__name__}"
            raise RequestError(msg)
        kind = data.get("type")
        if kind not in REQUEST_TYPES:
            msg = f"unknown request type {kind!r}; known types: {', '.join(REQUEST_TYPES)}"
            raise RequestError(msg)
        return _REQUEST.validate_python(data)

    def _dispatch(self, req: Any, client: str) -> BaseModel:
        if isinstance(req, ListRequest):
            return EntriesReply(id=req.id, package_version=__version__, version=self.registry.version,
                                entries=self.summaries())
        if isinstance(req, DescribeRequest):
            entry = self.registry.get(req.entry)
            obj = _alive(entry)
            return DescribeReply(id=req.id, entry=self._summary(entry, obj), details=details(entry, obj))
        if isinstance(req, RenderRequest):
            entry = self.registry.get(req.entry)
            view = render(req, entry, _alive(entry), registry=self.registry, owned=self.owned, client=client,
                          formatter=self.formatter)
            return RenderReply(id=req.id, entry=entry.id, view=view)
        if isinstance(req, SnippetRequest):
            entry = self.registry.get(req.entry)
            obj = _alive(entry)
            names = names_by_object(self.namespace()).get(id(obj), [])
            code, desc = snippet(entry, obj, _with_view_selection(req.target), names=names, alias=self.module_alias())
            return SnippetReply(id=req.id, entry=entry.id, code=code, description=desc)
        if isinstance(req, ReleaseRequest):
            return ReleaseReply(id=req.id, released=self.owned.release(client, list(req.model_ids)))
        msg = f"no handler for {type(req).__name__}"  # unreachable while REQUEST_TYPES matches Request
        raise RequestError(msg)

    # --- listing ---------------------------------------------------------------------------
    def summaries(self) -> list[EntrySummary]:
        names = names_by_object(self.namespace())
        out: list[EntrySummary] = []
        for entry in self.registry.entries():
            obj = entry.obj
            if obj is not None:
                out.append(summarize(entry, obj, names.get(id(obj), [])))
        return out

    def _summary(self, entry: Any, obj: Any) -> EntrySummary:
        return summarize(entry, obj, names_by_object(self.namespace()).get(id(obj), []))

    def push(self) -> EntriesPush:
        """The update the kernel sends unasked."""
        return EntriesPush(package_version=__version__, version=self.registry.version, entries=self.summaries())

    def module_alias(self) -> str | None:
        """The name the user imported interp_widget as (``iw``), if any."""
        module = sys.modules.get("interp_widget")
        names = [k for k, v in self.namespace().items() if v is module and not k.startswith("_")]
        return sorted(names, key=lambda n: (len(n), n))[0] if names else None

    def release_client(self, client: str) -> list[str]:
        """Close every widget made for ``client`` (its comm closed)."""
        return self.owned.release_all(client)


def _with_view_selection(target: SnippetTarget) -> SnippetTarget:
    """Fill a target's missing layer / head (and prompt) from the view it names (the widget the panel shows)."""
    if target.view is None:
        return target
    widget = widget_by_id(target.view)
    if widget is None:
        msg = f"no widget {target.view!r} in this kernel (closed, or from an earlier kernel)"
        raise LookupError(msg)
    update = {k: int(getattr(widget, k)) for k in ("layer", "head", "prompt")
              if getattr(target, k) is None and isinstance(getattr(widget, k, None), int)}
    return target.model_copy(update=update)


def _alive(entry: Any) -> Any:
    obj = entry.obj
    if obj is None:
        from interp_widget.server.registry import EntryNotFoundError

        msg = f"entry {entry.id!r} is gone (its object was garbage-collected)"
        raise EntryNotFoundError(msg)
    return obj


def _request_id(data: Any) -> str | None:
    if isinstance(data, dict):
        rid = data.get("id")
        if isinstance(rid, str) and 0 < len(rid) <= MAX_ID:
            return rid
    return None


def error_info(exc: BaseException) -> ErrorInfo:
    """The typed error of a reply: the exception's class and a message naming the problem."""
    if isinstance(exc, ValidationError):  # one clause per problem, without pydantic's URLs
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'request'}: {e['msg']}" for e in exc.errors())
        return ErrorInfo(type_name="ValidationError", message=f"invalid request: {problems}")
    message = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    return ErrorInfo(type_name=type(exc).__name__, message=message or type(exc).__name__)


def envelope(message: BaseModel) -> tuple[dict[str, Any], list[bytes]]:
    """``{"message": ..., "buffer_paths": [...]}`` and the buffers cut out of ``message``."""
    dumped = message.model_dump(mode="python")
    stripped, paths, buffers = pack(dumped)
    PanelEnvelope.model_validate({"message": dumped, "buffer_paths": paths})  # keeps the schema honest
    return {"message": stripped, "buffer_paths": paths}, buffers
