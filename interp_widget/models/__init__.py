"""interp_widget.models."""
