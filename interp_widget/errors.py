"""Errors raised by interp_widget.

Every error names the problem and, where there is one, what to do about it.
They subclass the built-in exception a caller would expect (``ValueError``,
``IndexError``, ...) so existing ``except`` clauses keep working.
"""

from __future__ import annotations


class InterpWidgetError(Exception):
    """Base class of every error raised on purpose by interp_widget."""


class UnknownSiteError(InterpWidgetError, KeyError):
    """A hook name / site that the model does not have."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class SiteIndexError(InterpWidgetError, IndexError):
    """A layer, head or position index out of range for the model or input."""


class ModelLoadError(InterpWidgetError, ValueError):
    """A model that cannot be loaded (unknown name, missing weights, offline)."""


class ContextLengthError(InterpWidgetError, ValueError):
    """An input longer than the model's context window."""


class InputMismatchError(InterpWidgetError, ValueError):
    """Inputs that must match (e.g. clean/corrupted token lengths) do not."""


class InterventionError(InterpWidgetError, ValueError):
    """An intervention whose value does not fit the site it targets."""


class BackendError(InterpWidgetError, RuntimeError):
    """A backend cannot do what was asked (unsupported site or operation)."""
