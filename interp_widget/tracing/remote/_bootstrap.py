"""The server side of a remote call: install shipped sources, run one function, return pickled bytes.

This module is shipped to the NDIF server *by value* (cloudpickle), so it may import only the standard
library (and torch / nnsight, which every NDIF server has). :func:`serve` runs inside the body of one
nnsight session on the server:

1. it installs an import hook (a ``sys.meta_path`` finder) that serves the ``interp_widget`` modules the
   client shipped as source text, and registers each source in ``linecache`` (nnsight reads a traced
   block's source from there, so the traces the shipped code opens can be captured on the server);
2. it unpickles the call (function and arguments, pickled by reference on the client) and runs it with
   the server's model wrapped as an :class:`interp_widget.Model`;
3. it pickles the (already reduced) result to bytes, the only value the session saves;
4. it removes the hook and the shipped modules again (``finally``), restoring any modules of the same
   names that were there before (a server with interp-widget installed, or the client's own process under
   nnsight's ``remote="local"`` simulation), so the process is left as it was.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import linecache
import sys
from typing import Any

PACKAGE = "interp_widget"


class _SourceFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves modules from ``{name: (filename, source, is_package)}``."""

    def __init__(self, sources: dict[str, tuple[str, str, bool]]) -> None:
        self.sources = sources

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        entry = self.sources.get(fullname)
        if entry is None:
            return None
        filename, _, is_package = entry
        spec = importlib.util.spec_from_loader(fullname, self, origin=filename, is_package=is_package)
        if spec is not None:
            spec.has_location = True
        return spec

    def create_module(self, spec: Any) -> None:
        return None

    def exec_module(self, module: Any) -> None:
        filename, source, _ = self.sources[module.__name__]
        module.__file__ = filename
        exec(compile(source, filename, "exec"), module.__dict__)


def _ours(name: str) -> bool:
    return name == PACKAGE or name.startswith(PACKAGE + ".")


def serve(root: Any, sources: dict[str, tuple[str, str, bool]], call: bytes) -> bytes:
    """Run the pickled ``(function, args, kwargs)`` with ``root`` (the server's model) as its model."""
    saved = {k: v for k, v in sys.modules.items() if _ours(k)}  # a server (or nnsight's local simulation)
    lines = {}                                                    # may have its own copy: set aside
    finder = _SourceFinder({k: v for k, v in sources.items() if k != "__digest__"})
    for k in saved:
        del sys.modules[k]
    for filename, source, _ in finder.sources.values():
        lines[filename] = linecache.cache.get(filename)
        linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    sys.meta_path.insert(0, finder)
    try:
        runner = importlib.import_module(PACKAGE + ".tracing.remote._server")
        return runner.execute(root, call, sources.get("__digest__", ""))
    finally:
        sys.meta_path.remove(finder)
        for k in [k for k in sys.modules if _ours(k)]:
            del sys.modules[k]
        sys.modules.update(saved)
        for filename, old in lines.items():
            if old is None:
                linecache.cache.pop(filename, None)
            else:
                linecache.cache[filename] = old



