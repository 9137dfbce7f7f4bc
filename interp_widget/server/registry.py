"""The registry of what interp-widget holds in this kernel: models, traces, results and views.

Entries hold *weak* references: the registry never keeps an object alive. An object is added

* explicitly, by the code that creates it: ``track(self, kind="model")`` (``Model.__init__``,
  the widgets, result classes), or
* by :meth:`Registry.scan`, which the kernel server runs after every cell over the user's
  namespace, so a result class that does not call :func:`track` still shows up once the user
  holds it in a variable.

An entry goes away when its object is garbage-collected, or (views) when its widget is closed.
Listeners (the panel server) are told that something changed through :meth:`Registry.subscribe`;
weak-reference callbacks only mark the registry as changed, they never call listeners (they can
run in the middle of anything, e.g. inside the garbage collector).

Only the standard library is imported here: ``track`` is called from ``Model.__init__``.
"""

from __future__ import annotations

import itertools
import logging
import sys
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

log = logging.getLogger(__name__)

Kind = Literal["model", "trace", "result", "view"]
KINDS: tuple[str, ...] = get_args(Kind)

Listener = Callable[[str], None]


@dataclass
class Entry:
    """One registered object: a stable id (``model-1``), its kind and a weak reference to it."""

    id: str
    kind: Kind
    ref: weakref.ReferenceType[Any]
    type_name: str
    seq: int
    obj_id: int = 0  # id() of the object when it was registered
    hidden: bool = False  # views the panel created for itself: alive, but not listed
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def obj(self) -> Any:
        """The object, or None once it is gone."""
        return self.ref()

    @property
    def alive(self) -> bool:
        obj = self.ref()
        if obj is None:
            return False
        # a closed ipywidget stays in memory while something refers to it, but it is gone for the front end
        return not (self.kind == "view" and _is_closed_widget(obj))


def _is_closed_widget(obj: Any) -> bool:
    widgets = sys.modules.get("ipywidgets")
    if widgets is None or not isinstance(obj, widgets.Widget):
        return False
    return getattr(obj, "comm", None) is None


class Registry:
    """Weakly held models, traces, results and views, in the order they were registered."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._entries: dict[str, Entry] = {}
        self._by_obj: dict[int, str] = {}  # id(obj) -> entry id (removed with the entry)
        self._counters: dict[str, itertools.count[int]] = {k: itertools.count(1) for k in KINDS}
        self._seq = itertools.count(1)
        self._listeners: list[Listener] = []
        self.version = 0  # bumped on every change

    # --- adding and removing -----------------------------------------------------
    def track(self, obj: Any, kind: Kind, *, hidden: bool = False, **meta: Any) -> str | None:
        """Register ``obj`` as ``kind``; returns its entry id (the same id if it is already registered).

        Returns None, registering nothing, for an object that cannot be weakly referenced.
        """
        if kind not in KINDS:
            msg = f"unknown entry kind {kind!r}; kinds are: {', '.join(KINDS)}"
            raise ValueError(msg)
        with self._lock:
            existing = self._find(obj)
            if existing is not None:
                newly_hidden = hidden and not existing.hidden
                existing.hidden = existing.hidden or hidden
            else:
                try:
                    ref = weakref.ref(obj, self._make_callback())
                except TypeError:
                    log.debug("cannot track a %s: it does not support weak references", type(obj).__name__)
                    return None
                entry_id = f"{kind}-{next(self._counters[kind])}"
                self._entries[entry_id] = Entry(entry_id, kind, ref, type(obj).__name__, next(self._seq), id(obj),
                                                hidden, dict(meta))
                self._by_obj[id(obj)] = entry_id
        if existing is not None:
            if newly_hidden:
                self._changed("hidden")
            return existing.id
        self._changed("track")
        return entry_id

    def hide(self, obj: Any) -> None:
        """Keep ``obj`` registered but out of :meth:`entries` (a view the panel made for itself)."""
        with self._lock:
            entry = self._find(obj)
            if entry is None or entry.hidden:
                return
            entry.hidden = True
        self._changed("hidden")

    def untrack(self, obj_or_id: Any) -> bool:
        """Forget an object (or an entry id); True if it was registered."""
        with self._lock:
            entry = self._entries.get(obj_or_id) if isinstance(obj_or_id, str) else self._find(obj_or_id)
            if entry is None:
                return False
            self._drop(entry.id)
        self._changed("untrack")
        return True

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._by_obj.clear()
        self._changed("clear")

    def _find(self, obj: Any) -> Entry | None:
        entry_id = self._by_obj.get(id(obj))
        if entry_id is None:
            return None
        entry = self._entries.get(entry_id)
        if entry is None or entry.ref() is not obj:  # a dead object's id() reused by a new one
            return None
        return entry

    def _drop(self, entry_id: str) -> None:
        entry = self._entries.pop(entry_id, None)
        if entry is not None and self._by_obj.get(entry.obj_id) == entry_id:
            del self._by_obj[entry.obj_id]

    def _make_callback(self) -> Callable[[weakref.ReferenceType[Any]], None]:
        own = weakref.ref(self)

        def gone(_: weakref.ReferenceType[Any]) -> None:
            # this can run anywhere (inside the garbage collector, in the middle of entries()): it only
            # marks the registry as changed; the dead entry is dropped by the next entries() / get()
            reg = own()
            if reg is not None:
                reg.version += 1

        return gone

    # --- reading ---------------------------------------------------------------------
    def entries(self, *, include_hidden: bool = False) -> list[Entry]:
        """Live entries in registration order (closed widgets are dropped here)."""
        with self._lock:
            dead = [e.id for e in self._entries.values() if not e.alive]
            for entry_id in dead:
                self._drop(entry_id)
            if dead:
                self.version += 1
            out = sorted(self._entries.values(), key=lambda e: e.seq)
        return [e for e in out if include_hidden or not e.hidden]

    def get(self, entry_id: str) -> Entry:
        """The live entry ``entry_id``; raises :class:`EntryNotFoundError` naming what exists."""
        with self._lock:
            entry = self._entries.get(entry_id)
            if entry is not None and entry.alive:
                return entry
        known = ", ".join(e.id for e in self.entries()) or "none"
        msg = f"no entry {entry_id!r} in this kernel (it was never registered or its object is gone); entries: {known}"
        raise EntryNotFoundError(msg)

    def entry_of(self, obj: Any) -> Entry | None:
        with self._lock:
            return self._find(obj)

    def __len__(self) -> int:
        return len(self.entries())

    # --- discovery -----------------------------------------------------------------------
    def scan(self, namespace: Mapping[str, Any]) -> int:
        """Register the interp-widget objects bound to names in ``namespace``; returns how many were new."""
        new = 0
        for value in list(namespace.values()):
            kind = classify(value)
            if kind is not None and self.entry_of(value) is None and self.track(value, kind) is not None:
                new += 1
        return new

    # --- listeners ---------------------------------------------------------------------------
    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(reason)`` after each explicit change; returns an unsubscribe function."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def _changed(self, reason: str) -> None:
        with self._lock:
            self.version += 1
            listeners = list(self._listeners)
        for fn in listeners:
            try:
                fn(reason)
            except Exception:  # a listener must never break the code that registered an object
                log.debug("registry listener failed", exc_info=True)


class EntryNotFoundError(LookupError):
    """A request named an entry this kernel does not have (never registered, or its object is gone)."""


def classify(obj: Any) -> Kind | None:
    """The entry kind of an interp-widget object, or None for anything else.

    No module is imported here: an object can only be an interp-widget model / trace if the module
    defining its class is already loaded.
    """
    cls = type(obj)
    module = getattr(cls, "__module__", "") or ""
    if not module.startswith("interp_widget."):
        return None
    model_mod = sys.modules.get("interp_widget.models.model")
    if model_mod is not None and isinstance(obj, model_mod.Model):
        return "model"
    base_mod = sys.modules.get("interp_widget.tracing.base")
    if base_mod is not None and isinstance(obj, base_mod.RunResult):
        return "trace"
    widgets = sys.modules.get("ipywidgets")
    if widgets is not None and isinstance(obj, widgets.Widget):
        return "view"
    metrics = sys.modules.get("interp_widget.analysis.metrics")
    if metrics is not None and isinstance(obj, getattr(metrics, "Metric", ())):
        return None
    if module.startswith("interp_widget.analysis.") and callable(getattr(obj, "to_dict", None)) and not isinstance(obj, type):
        return "result"
    return None


#: the registry of this process
REGISTRY = Registry()


def track(obj: Any, kind: Kind, **meta: Any) -> str | None:
    """Register ``obj`` in this process's registry (weakly); see :meth:`Registry.track`.

    Safe to call anywhere, any number of times: it never raises for an object it cannot track
    (only for a ``kind`` that does not exist).
    """
    if kind not in KINDS:
        msg = f"unknown entry kind {kind!r}; kinds are: {', '.join(KINDS)}"
        raise ValueError(msg)
    try:
        return REGISTRY.track(obj, kind, **meta)
    except Exception:
        log.debug("could not track a %s", type(obj).__name__, exc_info=True)
        return None


def get(entry_id: str) -> Any:
    """The object of entry ``entry_id`` (what a code snippet from the panel refers to)."""
    obj = REGISTRY.get(entry_id).obj
    if obj is None:  # collected between the check and here
        raise EntryNotFoundError(f"entry {entry_id!r} is gone")
    return obj


def objects(kind: Kind | None = None) -> Iterable[Any]:
    """The live objects (of ``kind``), oldest first."""
    for entry in REGISTRY.entries():
        obj = entry.obj
        if obj is not None and (kind is None or entry.kind == kind):
            yield obj
