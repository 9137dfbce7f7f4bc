"""Tracing: one API over TransformerLens, nnsight (local and remote) and torch modules.

See :mod:`interp_widget.tracing.base` for the protocol and :mod:`interp_widget.tracing.sites` for site names.
"""

from interp_widget.tracing.base import Backend, Intervention, ModelSpec, RunResult, SiteInfo
from interp_widget.tracing.sites import Site

__all__ = ["Backend", "Intervention", "ModelSpec", "RunResult", "Site", "SiteInfo"]
