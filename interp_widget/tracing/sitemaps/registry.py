"""Which site map fits a model: each architecture module has ``match(model) -> SiteMap | None``."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from interp_widget.tracing.base import ModelSpec
from interp_widget.tracing.sitemaps._base import Binding

#: architecture modules tried in order (``interp_widget.tracing.sitemaps.<name>``)
ARCHITECTURES: tuple[str, ...] = ("gpt2", "bert")


@dataclass
class SiteMap:
    """The TransformerLens sites of one model, and its shape facts."""

    spec: ModelSpec
    bindings: dict[str, Binding] = field(default_factory=dict)


def find_base(model: Any, class_name: str) -> tuple[str, Any] | None:
    """The path and module of the first submodule (or the model itself) whose class is ``class_name``."""
    for path, module in model.named_modules():
        if type(module).__name__ == class_name:
            return path, module
    return None


def site_map_for(model: Any) -> SiteMap | None:
    """The site map of the first architecture that recognises ``model`` (a torch module), or None."""
    for arch in ARCHITECTURES:
        found: SiteMap | None = importlib.import_module(f"interp_widget.tracing.sitemaps.{arch}").match(model)
        if found is not None:
            return found
    return None
