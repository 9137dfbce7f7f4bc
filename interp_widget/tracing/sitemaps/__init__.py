"""Per-architecture maps from TransformerLens site names to places in Hugging Face models.

See :mod:`interp_widget.tracing.sitemaps._base` for the building blocks and
``gpt2`` / ``bert`` for the maps themselves.
"""

from interp_widget.tracing.sitemaps.registry import SiteMap, site_map_for

__all__ = ["SiteMap", "site_map_for"]
