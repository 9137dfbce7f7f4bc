"""What the panel needs to show an entry: the same view as inline.

* a view (an interp-widget ipywidget): its model id; the panel renders another view of the same
  widget, so the inline view and the panel's stay in sync;
* a model: a new attention widget on the requested prompt (owned by the panel, which releases it);
* anything else: its IPython display data, exactly what the notebook shows inline;
* ``mode="static"`` (attention only): a :class:`~interp_widget.schema.StaticAttention` snapshot,
  patterns as binary buffers, for a front end that has no widget manager.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from typing import Any

from interp_widget.server.messages import MimeView, RenderRequest, StaticView, View, WidgetView
from interp_widget.server.registry import Entry, Registry

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
#: bytes of full float16 patterns a static snapshot carries (beyond that: thumbnails and a window)
STATIC_PATTERN_BUDGET = 4_000_000
DEFAULT_REPEAT = 12
MAX_TEXT = 20_000  # characters of a plain-text view (a trace's repr holds whole tensors)  # a default prompt is BOS + R + R with R this many random tokens


class Owned:
    """Widgets the kernel made for panel clients, by client; released on request or when the client goes."""

    def __init__(self) -> None:
        self._by_client: dict[str, dict[str, Any]] = {}

    def add(self, client: str, widget: Any) -> None:
        self._by_client.setdefault(client, {})[str(widget.model_id)] = widget

    def owns(self, model_id: str) -> bool:
        return any(model_id in d for d in self._by_client.values())

    def release(self, client: str, model_ids: list[str]) -> list[str]:
        """Close the widgets of ``client`` among ``model_ids``; returns those it closed."""
        mine = self._by_client.get(client, {})
        done: list[str] = []
        for mid in model_ids:
            w = mine.pop(mid, None)
            if w is not None:
                _close(w)
                done.append(mid)
        return done

    def release_all(self, client: str) -> list[str]:
        return self.release(client, list(self._by_client.get(client, {})))

    def count(self, client: str | None = None) -> int:
        if client is not None:
            return len(self._by_client.get(client, {}))
        return sum(len(d) for d in self._by_client.values())


def _close(widget: Any) -> None:
    close = getattr(widget, "close", None)
    if callable(close):
        close()


def render(req: RenderRequest, entry: Entry, obj: Any, *, registry: Registry, owned: Owned, client: str,
           formatter: Callable[[Any], tuple[dict[str, Any], dict[str, Any]]] | None = None) -> View:
    """The view for ``entry`` (see the module docstring)."""
    if entry.kind == "model":
        if req.mode == "static":
            return StaticView(document=static_attention(model_attention_data(obj, req.text), layer=req.layer,
                                                        head=req.head))
        widget = model_attention_widget(obj, req.text, layer=req.layer, head=req.head)
        registry.track(widget, "view", hidden=True)
        owned.add(client, widget)
        return WidgetView(model_id=str(widget.model_id), owned=True)
    if entry.kind == "view":
        data = getattr(obj, "data", None)
        if req.mode == "static":
            if data is None or not hasattr(data, "patterns"):
                msg = f"{entry.id} ({type(obj).__name__}) has no static snapshot; ask for mode 'live'"
                raise ValueError(msg)
            return StaticView(document=static_attention(data, layer=int(obj.layer), head=int(obj.head),
                                                        prompt=int(getattr(obj, "prompt", 0))))
        return WidgetView(model_id=str(obj.model_id), owned=False)
    if req.mode == "static":
        msg = f"{entry.id} is a {entry.kind}: only attention views have a static snapshot; ask for mode 'live'"
        raise ValueError(msg)
    before = set(_widget_instances())
    data, metadata = (formatter or display_data)(obj)
    if isinstance(data.get(WIDGET_MIME), dict):  # a result that displays as a widget
        model_id = str(data[WIDGET_MIME].get("model_id", ""))
        widget = widget_by_id(model_id)
        if widget is not None and model_id not in before:  # made just now, for the panel: the panel owns it
            registry.track(widget, "view", hidden=True)
            owned.add(client, widget)
            return WidgetView(model_id=model_id, owned=True)
        if widget is not None:
            return WidgetView(model_id=model_id, owned=False)
    text = data.get("text/plain")
    if isinstance(text, str) and len(text) > MAX_TEXT:
        data = {**data, "text/plain": text[: MAX_TEXT - 1] + "…"}
    return MimeView(data=_jsonable(data), metadata=_jsonable(metadata))


def display_data(obj: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """What IPython would display inline for ``obj`` (its ``_repr_*_`` methods; plain text at least)."""
    try:
        from IPython.core.interactiveshell import InteractiveShell

        formatter = InteractiveShell.instance().display_formatter if InteractiveShell.initialized() else None
        if formatter is not None:
            data, metadata = formatter.format(obj)
            return dict(data), dict(metadata)
    except ImportError:
        pass
    return {"text/plain": repr(obj)}, {}


def _widget_instances() -> dict[str, Any]:
    """ipywidgets' live widgets by model id (empty when ipywidgets is not imported)."""
    module = sys.modules.get("ipywidgets.widgets.widget")
    instances = getattr(module, "_instances", None)  # ipywidgets 8 (Widget.widgets warns)
    return instances if isinstance(instances, dict) else {}


def widget_by_id(model_id: str) -> Any:
    return _widget_instances().get(model_id)


def _jsonable(x: Any) -> Any:
    """Display data made safe for JSON: no bytes (dropped), no NaN/inf, str keys."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items() if not isinstance(v, (bytes, bytearray, memoryview))}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if x is None or isinstance(x, (str, int, float, bool)):
        return x
    return str(x)


# --- attention for a model ------------------------------------------------------------------------
def default_tokens(model: Any) -> list[int]:
    """A seeded ``[BOS] + R + R`` prompt (``R``: up to 12 random ordinary tokens): it shows induction."""
    import torch

    spec = model.spec
    tok = model.tokenizer
    special: set[int] = set()
    bos: int | None = None
    if tok is not None:
        special = {int(i) for i in (getattr(tok, "all_special_ids", None) or [])}
        for attr in ("bos_token_id", "cls_token_id"):
            val = getattr(tok, attr, None)
            if val is not None:
                bos = int(val)
                break
    vocab = [i for i in range(spec.d_vocab) if i not in special] or list(range(spec.d_vocab))
    n = max(1, min(DEFAULT_REPEAT, (spec.n_ctx - (bos is not None)) // 2))
    g = torch.Generator().manual_seed(0)
    rand = [vocab[int(i)] for i in torch.randint(0, len(vocab), (n,), generator=g)]
    return ([bos] if bos is not None else []) + rand + rand


def _prompt(model: Any, text: str | None) -> Any:
    return text if text is not None else default_tokens(model)


def model_attention_widget(model: Any, text: str | None, *, layer: int, head: int) -> Any:
    from interp_widget.widgets.attention import attention

    return attention(model, _prompt(model, text), layer=layer, head=head, snapshot=False)


def model_attention_data(model: Any, text: str | None) -> Any:
    from interp_widget.widgets._patterns import collect

    _check_has_attention(model)
    return collect(model, [_prompt(model, text)])


def _check_has_attention(model: Any) -> None:
    if not any(i.site.component == "attn.hook_pattern" for i in model.sites()):
        msg = f"{model.name} has no attention-pattern sites (attn.hook_pattern): no attention view to show"
        raise ValueError(msg)


def static_attention(data: Any, *, layer: int = 0, head: int = 0, prompt: int = 0, window_size: int = 48,
                     thumb_size: int = 32, budget: int = STATIC_PATTERN_BUDGET) -> Any:
    """A :class:`StaticAttention` for ``data`` (an ``AttentionData``) showing ``prompt``/``layer``/``head``."""
    import numpy as np

    from interp_widget.schema import AttentionState, StaticAttention, encode

    data.check_index(prompt=prompt, layer=layer, head=head)
    n = len(data.tokens[prompt])
    size = min(n, window_size)
    state = AttentionState(
        model_name=data.model_name, n_layers=data.n_layers, n_heads=data.n_heads,
        prompts=[data.prompt_data(i, thumb_size) for i in range(len(data.patterns))],
        prompt=prompt, layer=layer, head=head, window_size=window_size, thumb_size=thumb_size,
        window=data.window(prompt, layer, head, 0, size, 0, size),
    )
    patterns: list[Any] = []
    used = 0
    for pat in data.patterns:
        half = pat.astype(np.float16)
        if used + half.nbytes <= budget:
            patterns.append(encode(half))
            used += half.nbytes
        else:
            patterns.append(None)
    return StaticAttention(state=state, patterns=patterns)
