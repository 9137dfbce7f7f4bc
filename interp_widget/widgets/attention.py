"""The attention widget: every layer and head of a model on one or more prompts.

>>> import interp_widget as iw
>>> iw.attention("induction-2l", "Jq7Xm2Rv9K Jq7Xm2Rv9K")   # doctest: +SKIP

The kernel keeps every head's pattern (float16) and sends only what is on screen: uint8
thumbnails of all heads, the head scores, and the selected head's visible window; the view
asks for other windows with the ``get_pattern`` command. Importing this module imports no torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anywidget
import traitlets as t

from interp_widget.errors import SiteIndexError
from interp_widget.schema import AttentionState, GetPatternRequest, PatternReply
from interp_widget.server.registry import track
from interp_widget.widgets._commands import reply_unknown_commands, safe_command
from interp_widget.widgets._patterns import AttentionData, collect, from_arrays
from interp_widget.widgets._static import (
    BUNDLE,
    SNAPSHOT_MIME,  # noqa: F401  (re-exported: widgets and tests import it from here)
    add_snapshot,
    embed_view,
    fallback_html,
    static_document,
)

_MISSING_ESM = """
export default { render({ el }) {
  el.textContent = "interp-widget: the front end is not built (interp_widget/widgets/static/attention.js is missing). "
    + "Run `npm install && npm run build` in the source checkout, or install the wheel.";
} };
"""


class SelectionIndexError(SiteIndexError, t.TraitError):
    """A prompt / layer / head selection out of range (both a SiteIndexError and a TraitError)."""


class AttentionWidget(anywidget.AnyWidget):
    """Overview grid of every head, a token-by-token view of the selected head, head scores.

    Build it with :func:`attention` (from a model) or :meth:`from_patterns` (from arrays).
    ``layer``, ``head`` and ``prompt`` are the selection, kept in sync with the view.

    The output also carries a static snapshot of the view as it is when displayed
    (``text/html``, plus a marker that interp-widget's JupyterLab extension renders): a
    notebook reopened without this kernel-side widget shows it instead of a broken widget.
    It embeds every head's full pattern when they fit ``snapshot_budget`` bytes (float16),
    else the thumbnails and the first window. ``snapshot=False`` leaves it out.
    """

    _esm = BUNDLE if BUNDLE.is_file() else _MISSING_ESM

    model_name = t.Unicode("").tag(sync=True)
    n_layers = t.Int(1).tag(sync=True)
    n_heads = t.Int(1).tag(sync=True)
    prompts = t.List(t.Dict()).tag(sync=True)
    prompt = t.Int(0).tag(sync=True)
    layer = t.Int(0).tag(sync=True)
    head = t.Int(0).tag(sync=True)
    window_size = t.Int(48).tag(sync=True)
    thumb_size = t.Int(32).tag(sync=True)
    window = t.Dict(allow_none=True, default_value=None).tag(sync=True)

    def __init__(
        self,
        data: AttentionData,
        *,
        prompt: int = 0,
        layer: int = 0,
        head: int = 0,
        window_size: int = 48,
        thumb_size: int = 32,
        snapshot: bool = True,
        snapshot_budget: int = 256_000,
    ) -> None:
        if window_size < 4 or thumb_size < 1:
            msg = f"window_size must be >= 4 and thumb_size >= 1; got {window_size} and {thumb_size}"
            raise ValueError(msg)
        data.check_index(prompt=prompt, layer=layer, head=head)
        self._data = data
        self.snapshot = snapshot
        self.snapshot_budget = snapshot_budget
        super().__init__(
            model_name=data.model_name,
            n_layers=data.n_layers,
            n_heads=data.n_heads,
            prompts=[data.prompt_data(i, thumb_size).model_dump() for i in range(len(data.patterns))],
            window_size=window_size,
            thumb_size=thumb_size,
        )
        with self.hold_sync():
            self.prompt, self.layer, self.head = prompt, layer, head
            self.window = self._first_window().model_dump()
        reply_unknown_commands(self, {"get_pattern"})
        track(self, "view")  # the side panel's registry (weak reference)

    # --- construction -------------------------------------------------------
    @classmethod
    def from_patterns(
        cls,
        patterns: Any,
        tokens: Sequence[str] | Sequence[Sequence[str]],
        *,
        model_name: str = "",
        scores: bool = True,
        **kwargs: Any,
    ) -> AttentionWidget:
        """A widget from precomputed patterns ``[n_layers, n_heads, n, n]`` (or a list, one per prompt)."""
        return cls(from_arrays(patterns, tokens, model_name=model_name, scores=scores), **kwargs)

    @property
    def data(self) -> AttentionData:
        """The kernel-side patterns, tokens and scores."""
        return self._data

    # --- validation -----------------------------------------------------------
    def _check(self, name: str, value: int) -> int:
        try:
            self._data.check_index(**{name: value})
        except SiteIndexError as exc:
            raise SelectionIndexError(str(exc)) from None
        return value

    @t.validate("prompt")
    def _valid_prompt(self, proposal: dict[str, Any]) -> int:
        return self._check("prompt", proposal["value"])

    @t.validate("layer")
    def _valid_layer(self, proposal: dict[str, Any]) -> int:
        return self._check("layer", proposal["value"])

    @t.validate("head")
    def _valid_head(self, proposal: dict[str, Any]) -> int:
        return self._check("head", proposal["value"])

    @t.validate("window_size")
    def _valid_window_size(self, proposal: dict[str, Any]) -> int:
        if proposal["value"] < 4:
            msg = f"window_size must be at least 4, got {proposal['value']}"
            raise t.TraitError(msg)
        return int(proposal["value"])

    # --- commands -------------------------------------------------------------
    @safe_command
    def get_pattern(self, msg: dict[str, Any], buffers: list[bytes]) -> PatternReply:
        """A window of one head's pattern (see :class:`~interp_widget.schema.GetPatternRequest`)."""
        del buffers
        req = GetPatternRequest.model_validate(msg)
        win = self._data.window(req.prompt, req.layer, req.head, req.q0, req.q1, req.k0, req.k1,
                                max_size=req.max_size, precision=req.precision)
        return PatternReply(window=win)

    def _first_window(self) -> Any:
        n = len(self._data.tokens[self.prompt])
        size = min(n, self.window_size)
        return self._data.window(self.prompt, self.layer, self.head, 0, size, 0, size)

    # --- state, sizes, snapshot -------------------------------------------------
    def state_model(self) -> AttentionState:
        """The synced state as its pydantic model (what the view receives)."""
        return AttentionState.model_validate({name: getattr(self, name) for name in AttentionState.model_fields})

    def payload_size(self) -> dict[str, int]:
        """Bytes of the initial state a front end receives before its first paint.

        ``buffers``: binary buffers (thumbnails, scores, the first window); ``json``: the rest of
        the state as JSON, without the ES module; ``esm``: the ES module text (sent once per widget);
        ``total``: all three.
        """
        import json

        from interp_widget.schema import pack

        state = self.get_state()
        esm = len(str(state.pop("_esm", "")).encode()) + len(str(state.pop("_css", "")).encode())
        stripped, _, buffers = pack(state)
        js = len(json.dumps(stripped, separators=(",", ":")).encode())
        buf = sum(len(b) for b in buffers)
        return {"buffers": buf, "json": js, "esm": esm, "total": buf + js + esm}

    def snapshot_html(self) -> str:
        """A self-contained HTML rendering of the current view (no kernel, no network)."""
        doc = static_document(self._data, self.state_model(), pattern_budget=self.snapshot_budget)
        return embed_view(doc, fallback=fallback_html(self._data, self.prompt, self.thumb_size))

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return add_snapshot(super()._repr_mimebundle_(**kwargs), self.snapshot, self.snapshot_html)

    def __repr__(self) -> str:
        d = self._data
        lens = ", ".join(str(len(tk)) for tk in d.tokens)
        return (f"<AttentionWidget {d.model_name!r}: {d.n_layers} layers x {d.n_heads} heads, "
                f"{len(d.tokens)} prompt(s) of {lens} tokens; selected prompt {self.prompt}, "
                f"layer {self.layer}, head {self.head}>")


def attention(
    model: Any,
    text_or_tokens: Any = None,
    *,
    prompts: Sequence[Any] | None = None,
    layer: int = 0,
    head: int = 0,
    prompt: int = 0,
    window_size: int = 48,
    thumb_size: int = 32,
    snapshot: bool = True,
) -> AttentionWidget:
    """Show every layer and head of ``model`` on one or several prompts.

    ``model``: a :class:`~interp_widget.Model` or anything :func:`interp_widget.load` accepts
    (a zoo name such as ``"induction-2l"``, a HookedTransformer, a Hugging Face model, a path).
    ``text_or_tokens``: a text, a sequence of token ids, or a list of texts (several prompts);
    ``prompts`` adds more. The model runs once per prompt, capturing every layer's
    ``attn.hook_pattern``. A prompt longer than the model's context raises
    :class:`~interp_widget.ContextLengthError`; an out-of-range ``layer``/``head`` raises
    :class:`~interp_widget.SiteIndexError`.
    """
    from interp_widget.models.model import Model

    if not isinstance(model, Model):
        from interp_widget.models.loading import load

        model = load(model)
    items: list[Any] = []
    if isinstance(text_or_tokens, (list, tuple)) and text_or_tokens and isinstance(text_or_tokens[0], str):
        items.extend(text_or_tokens)
    elif text_or_tokens is not None:
        items.append(text_or_tokens)
    items.extend(prompts or [])
    if not items:
        msg = "give a text (or token ids) to show, e.g. attention(model, 'A B C A B C')"
        raise ValueError(msg)
    spec = model.spec
    # fail on a bad selection before running the model
    checks = (("layer", layer, spec.n_layers, f"{model.name} has {spec.n_layers} layers"),
              ("head", head, spec.n_heads, f"{model.name} has {spec.n_heads} heads per layer"),
              ("prompt", prompt, len(items), f"{len(items)} prompts were given"))
    for name, value, count, what in checks:
        if not 0 <= value < count:
            msg = f"{name} {value} is out of range: {what} (0..{count - 1})"
            raise SiteIndexError(msg)
    data = collect(model, items)
    return AttentionWidget(data, prompt=prompt, layer=layer, head=head, window_size=window_size,
                           thumb_size=thumb_size, snapshot=snapshot)
