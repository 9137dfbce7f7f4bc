"""What the panel shows about each entry: a one-line summary and the details of one entry.

Duck-typed on purpose: a result class only needs the attributes it has (``values``/``axes``/
``labels`` for sweeps, ``scores`` for head scores, ...). Nothing here may raise for an odd
object: a summary falls back to the class name.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

from interp_widget.server.messages import (
    CapturedTensor,
    Details,
    EntrySummary,
    ModelDetails,
    ResultDetails,
    SiteSummary,
    TraceDetails,
    ViewDetails,
)
from interp_widget.server.registry import Entry

log = logging.getLogger(__name__)

SELECTION_TRAITS: tuple[str, ...] = ("prompt", "layer", "head")


def names_by_object(namespace: Mapping[str, Any] | None) -> dict[int, list[str]]:
    """``id(value) -> [names]`` for the public names of ``namespace`` (IPython's ``_``, ``_3``, ``_i`` left out)."""
    out: dict[int, list[str]] = {}
    if not namespace:
        return out
    for name, value in list(namespace.items()):
        if not name.startswith("_") and isinstance(name, str):
            out.setdefault(id(value), []).append(name)
    return out


def summarize(entry: Entry, obj: Any, names: list[str]) -> EntrySummary:
    """The entry's line in the list (never raises: odd objects get their class name)."""
    label, detail, model_name = entry.type_name, "", None
    try:
        if entry.kind == "model":
            label, detail, model_name = _model_line(obj)
        elif entry.kind == "view":
            label, detail, model_name = _view_line(obj)
        elif entry.kind == "result":
            label, detail, model_name = _result_line(obj)
        elif entry.kind == "trace":
            label, detail = _trace_line(obj)
    except Exception:
        log.debug("could not summarise %s", entry.id, exc_info=True)
    return EntrySummary(id=entry.id, kind=entry.kind, type_name=entry.type_name, label=label or entry.type_name,
                        detail=detail, names=sorted(names), model_name=model_name, seq=entry.seq)


def _model_line(model: Any) -> tuple[str, str, str | None]:
    s = model.spec
    mlp = f", d_mlp {s.d_mlp}" if s.d_mlp else ", attention-only"
    detail = (f"{s.architecture}: {s.n_layers} layers x {s.n_heads} heads, d_model {s.d_model}{mlp}, "
              f"n_ctx {s.n_ctx} ({type(model.backend).__name__})")
    return str(model.name), detail, str(model.name)


def _view_line(w: Any) -> tuple[str, str, str | None]:
    model_name = getattr(w, "model_name", None) or None
    sel = ", ".join(f"{k} {getattr(w, k)}" for k in SELECTION_TRAITS if hasattr(w, k))
    n_prompts = len(getattr(w, "prompts", []) or [])
    label = f"{_view_title(w)}: {model_name}" if model_name else _view_title(w)
    detail = sel + (f" of {n_prompts} prompt(s)" if n_prompts else "")
    return label, detail, model_name


def _view_title(w: Any) -> str:
    name = type(w).__name__
    return name[: -len("Widget")].lower() if name.endswith("Widget") and len(name) > 6 else name


def _result_line(res: Any) -> tuple[str, str, str | None]:
    meta = getattr(res, "meta", None)
    model_name = meta.get("model") if isinstance(meta, dict) and isinstance(meta.get("model"), str) else None
    kind = getattr(res, "kind", None)
    if isinstance(getattr(res, "scores", None), dict) and hasattr(res, "n_layers"):  # HeadScores
        label = "head scores"
        detail = f"{', '.join(res.scores)} on {res.n_layers} layers x {res.n_heads} heads"
    elif hasattr(res, "axes") and hasattr(res, "values"):  # SweepResult and friends
        label = f"{kind or 'sweep'} ({getattr(res, 'sites', '')})".replace(" ()", "")
        dims = " x ".join(f"{a} {n}" for a, n in zip(res.axes, tuple(res.values.shape), strict=True))
        detail = f"[{dims}] metric {getattr(res, 'metric', '?')}"
    elif hasattr(res, "components") and hasattr(res, "effect"):  # AblationResult
        label = f"ablation ({getattr(res, 'method', '')})"
        detail = f"{len(res.components)} component(s), effect {res.effect:+.4g} on {res.metric}"
    else:
        label = str(kind) if isinstance(kind, str) else type(res).__name__
        detail = ""
    if model_name:
        detail = f"{detail} · {model_name}" if detail else model_name
    return label, detail, model_name


def _trace_line(run: Any) -> tuple[str, str]:
    cache = getattr(run, "cache", {}) or {}
    logits = getattr(run, "logits", None)
    shape = f", logits {list(logits.shape)}" if logits is not None else ""
    return "run", f"{len(cache)} captured site(s){shape}"


# --- details --------------------------------------------------------------------------------
def details(entry: Entry, obj: Any) -> Details:
    """Everything the panel's detail pane shows about one entry."""
    if entry.kind == "model":
        return model_details(obj)
    if entry.kind == "view":
        return view_details(obj)
    if entry.kind == "trace":
        return trace_details(obj)
    return result_details(obj)


def model_details(model: Any) -> ModelDetails:
    s = model.spec
    sites = [SiteSummary(hook_name=i.site.hook_name, component=i.site.component, layer=i.site.layer,
                         shape=[str(d) for d in i.shape]) for i in model.sites()]
    return ModelDetails(name=str(model.name), architecture=s.architecture, backend=type(model.backend).__name__,
                        n_layers=s.n_layers, n_heads=s.n_heads, d_model=s.d_model, d_head=s.d_head, d_mlp=s.d_mlp,
                        n_ctx=s.n_ctx, d_vocab=s.d_vocab, causal=s.causal,
                        has_tokenizer=model.tokenizer is not None, sites=sites)


def view_details(w: Any) -> ViewDetails:
    prompts = getattr(w, "prompts", None) or []
    texts = [str(p.get("text", "")) if isinstance(p, dict) else str(p) for p in prompts]
    return ViewDetails(widget_class=type(w).__name__, model_id=str(w.model_id),
                       model_name=getattr(w, "model_name", None) or None,
                       selection={k: int(getattr(w, k)) for k in SELECTION_TRAITS if hasattr(w, k)},
                       n_layers=getattr(w, "n_layers", None), n_heads=getattr(w, "n_heads", None), prompts=texts)


def result_details(res: Any) -> ResultDetails:
    summary = _short_repr(res)
    metric = getattr(res, "metric", None)
    if isinstance(getattr(res, "scores", None), dict) and hasattr(res, "n_layers"):  # HeadScores
        layers = [f"L{i}" for i in range(res.n_layers)]
        heads = [f"H{i}" for i in range(res.n_heads)]
        return ResultDetails(result_class=type(res).__name__, result_kind="head_scores", axes=["layer", "head"],
                             shape=[res.n_layers, res.n_heads], labels={"layer": layers, "head": heads},
                             metric=None, score_kinds=[str(k) for k in res.scores], summary=summary)
    axes = [str(a) for a in getattr(res, "axes", ()) or ()]
    values = getattr(res, "values", None)
    shape = [int(n) for n in values.shape] if values is not None and hasattr(values, "shape") else []
    raw_labels = getattr(res, "labels", None)
    labels = {str(a): [str(x) for x in raw_labels[a]] for a in axes} if isinstance(raw_labels, dict) else {}
    kind = getattr(res, "kind", None)
    return ResultDetails(result_class=type(res).__name__, result_kind=kind if isinstance(kind, str) else None,
                         axes=axes, shape=shape, labels=labels, metric=str(metric) if metric is not None else None,
                         score_kinds=[], summary=summary)


def trace_details(run: Any) -> TraceDetails:
    def tensors(d: Any) -> list[CapturedTensor]:
        return [CapturedTensor(hook_name=str(k), shape=[int(n) for n in v.shape], dtype=str(v.dtype).replace("torch.", ""))
                for k, v in (d or {}).items()]

    logits = getattr(run, "logits", None)
    metric = getattr(run, "metric", None)
    metric = float(metric) if isinstance(metric, (int, float)) and math.isfinite(metric) else None
    return TraceDetails(captured=tensors(getattr(run, "cache", None)), grads=tensors(getattr(run, "grads", None)),
                        logits_shape=[int(n) for n in logits.shape] if logits is not None else None, metric=metric)


def _short_repr(obj: Any, limit: int = 2000) -> str:
    try:
        text = repr(obj)
    except Exception as exc:
        return f"<{type(obj).__name__}: repr failed: {exc}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."
