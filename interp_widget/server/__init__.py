"""The kernel-side server of the side panel: a registry of what interp-widget holds, and a comm target.

* :func:`track` registers a model, trace, result or view (weakly: nothing is kept alive);
  ``Model.__init__`` and the widgets call it, and the kernel server also finds interp-widget
  objects bound to variables after each cell.
* :func:`get` returns the object of an entry id (what code sent from the panel refers to:
  ``iw.server.get("model-1")`` when no variable holds the object).
* :func:`serve_in_kernel` registers the ``interp-widget-panel`` comm target; ``import interp_widget``
  calls it, and it does nothing outside an ipykernel.

The request/reply models are in :mod:`interp_widget.server.messages`, the handler in
:mod:`interp_widget.server.handler`. Importing this package imports only the standard library.
"""

from interp_widget.server.kernel import TARGET, serve_in_kernel
from interp_widget.server.registry import KINDS, REGISTRY, Entry, EntryNotFoundError, Registry, get, objects, track

__all__ = [
    "KINDS",
    "REGISTRY",
    "TARGET",
    "Entry",
    "EntryNotFoundError",
    "Registry",
    "get",
    "objects",
    "serve_in_kernel",
    "track",
]
