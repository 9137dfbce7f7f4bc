"""Result heatmaps: a sweep result (or head scores) as the heatmap view draws it, and its static form.

:func:`heatmap_data` turns a :class:`~interp_widget.analysis.results.SweepResult` (activation, path or
attribution patching, an ablation sweep) or a :class:`~interp_widget.analysis.heads.HeadScores` into
a :class:`~interp_widget.schema.patching.HeatmapData`: float32 values as a binary payload, one label
list per axis, which axes are rows and columns, and the colour scale. The result objects are read by
duck typing: this module imports no analysis code and no torch.

:func:`show` (``iw.show(result)``) displays a result as a widget; :func:`result_mimebundle` is what a
result displays as in a notebook (registered with IPython by :mod:`interp_widget.widgets._display`).
"""

from __future__ import annotations

import base64
import html
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from interp_widget.schema import encode
from interp_widget.schema.patching import HeatmapData, StaticHeatmap
from interp_widget.widgets._display import widget_bundle
from interp_widget.widgets._static import STATIC_DIR, b64_tree, bundle_source, json_for_script, png_bytes

if TYPE_CHECKING:
    pass

BUNDLE = STATIC_DIR / "patching.js"

#: axes preferred as columns when "layer" is the rows axis, best first
_COLUMN_AXES = ("head", "pos", "dest_pos", "sender", "site")
_POSITION_AXES = ("pos", "dest_pos")
SCORE_LABELS = {"previous_token": "previous token", "induction": "induction", "duplicate_token": "duplicate token"}

#: diverging colours of the static fallback image (the live view follows the theme)
NEG_RGB = (178, 24, 43)
POS_RGB = (33, 102, 172)
BG_RGB = (255, 255, 255)


def _numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor
        return np.asarray(x.detach().float().cpu().numpy(), dtype=np.float32)
    return np.asarray(x, dtype=np.float32)


def _finite_or_none(v: Any) -> float | None:
    if v is None:
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def choose_axes(axes: list[str]) -> tuple[int, int | None]:
    """The rows and columns axes for ``axes`` (``layer`` down, heads / positions across)."""
    if len(axes) == 1:
        return 0, None
    if "layer" in axes:
        rows = axes.index("layer")
        for name in _COLUMN_AXES:
            if name in axes and axes.index(name) != rows:
                return rows, axes.index(name)
        return rows, next(i for i in range(len(axes) - 1, -1, -1) if i != rows)
    return len(axes) - 2, len(axes) - 1


def default_slice(axes: list[str], shape: list[int]) -> list[int]:
    """Index shown first along each sliced axis: the last position (where the answer is read), else 0."""
    return [max(0, n - 1) if a in _POSITION_AXES else 0 for a, n in zip(axes, shape, strict=True)]


def heatmap_data(result: Any, *, title: str | None = None, metric: str | None = None) -> HeatmapData:
    """The :class:`HeatmapData` of a sweep result or of head scores (see the module docstring)."""
    if hasattr(result, "scores") and hasattr(result, "n_heads") and isinstance(result.scores, dict):
        return _head_scores(result, title)
    needed = ("values", "axes", "labels", "kind", "sites", "metric")
    if not all(hasattr(result, a) for a in needed):
        msg = f"cannot draw a {type(result).__name__} as a heatmap: expected a SweepResult or HeadScores"
        raise TypeError(msg)
    values = _numpy(result.values)
    axes = [str(a) for a in result.axes]
    labels = [[str(x) for x in result.labels[a]] for a in result.axes]
    rows, cols = choose_axes(axes)
    clean = _finite_or_none(result.clean_metric)
    corrupted = _finite_or_none(result.corrupted_metric)
    meta = dict(getattr(result, "meta", {}) or {})
    normalized = bool(getattr(result, "is_normalized", False))
    direction = meta.get("direction", "denoise")
    # the background colour is the unpatched run: patching effects show as colour
    if normalized:
        center = 0.0 if direction == "denoise" else 1.0
    elif result.kind == "ablation":
        center = clean if clean is not None else 0.0
    else:
        base = corrupted if direction == "denoise" else clean
        center = base if base is not None else 0.0
    notes = []
    if "direction" in meta:
        notes.append(f"{direction}: {'clean into corrupted' if direction == 'denoise' else 'corrupted into clean'}")
    if "forward_passes" in meta:
        notes.append(f"{meta['forward_passes']} forward passes")
    if "n_prompts" in meta:
        notes.append(f"{meta['n_prompts']} prompt(s)")
    if "receivers" in meta:
        notes.append("receiver " + ", ".join(map(str, meta["receivers"])))
    if "not_normalized" in meta:
        notes.append(f"not normalised: {meta['not_normalized']}")
    check = getattr(result, "check", None)
    if check is not None:
        notes.append(f"vs exact patching on {len(check.labels)} heads: pearson {check.pearson:.3f}, "
                     f"sign agreement {check.sign_agreement:.0%}")
    kind_name = str(result.kind).replace("_", " ")
    metric_name = metric or str(result.metric)
    return HeatmapData(
        title=title or f"{kind_name} · {result.sites} · {metric_name}" + (" (normalised)" if normalized else ""),
        kind=str(result.kind), sites=str(result.sites), metric=metric_name,
        axes=axes, labels=labels, values=encode(values), rows=rows, cols=cols,
        slice=default_slice(axes, list(values.shape)),
        clean_metric=clean, corrupted_metric=corrupted, normalized=normalized,
        scale="diverging", center=float(center), note="; ".join(notes),
    )


def _head_scores(scores: Any, title: str | None) -> HeatmapData:
    kinds = list(scores.scores)
    values = np.stack([_numpy(scores.scores[k]) for k in kinds]) if kinds else np.zeros((0, scores.n_layers,
                                                                                          scores.n_heads), np.float32)
    meta = dict(getattr(scores, "meta", {}) or {})
    note = ", ".join(f"{k}={meta[k]}" for k in ("seq_len", "n_prompts", "seed", "normalization") if k in meta)
    return HeatmapData(
        title=title or f"head scores · {meta.get('model', '')}".rstrip(" ·"),
        kind="head_scores", sites="heads", metric="score",
        axes=["score", "layer", "head"],
        labels=[[SCORE_LABELS.get(k, k.replace("_", " ")) for k in kinds],
                [str(i) for i in range(scores.n_layers)], [str(i) for i in range(scores.n_heads)]],
        values=encode(values), rows=1, cols=2, slice=[0, 0, 0],
        scale="sequential", center=0.0, note=note,
    )


# --- static form ------------------------------------------------------------------------------------
def _grid(data: HeatmapData) -> np.ndarray:
    """The 2-D grid shown first (rows x cols, the other axes at their ``slice`` index)."""
    from interp_widget.schema import decode

    v = decode(data.values).astype(np.float32)
    idx: list[Any] = [s for s in data.slice]
    idx[data.rows] = slice(None)
    if data.cols is not None:
        idx[data.cols] = slice(None)
    grid = v[tuple(idx)]
    if data.cols is None:
        return grid.reshape(-1, 1)
    return grid if data.rows < data.cols else grid.T


def colors(grid: np.ndarray, data: HeatmapData) -> np.ndarray:
    """RGB uint8 ``[rows, cols, 3]`` of a grid on the light theme (grey where NaN)."""
    finite = grid[np.isfinite(grid)]
    out = np.empty((*grid.shape, 3), np.float32)
    bg = np.array(BG_RGB, np.float32)
    if data.scale == "diverging":
        span = float(np.max(np.abs(finite - data.center))) if finite.size else 1.0
        t = np.clip((grid - data.center) / (span or 1.0), -1.0, 1.0)
        pos, neg = np.array(POS_RGB, np.float32), np.array(NEG_RGB, np.float32)
        tt = np.nan_to_num(t)[..., None]
        out = np.where(tt >= 0, bg + (pos - bg) * tt, bg + (neg - bg) * -tt)
    else:
        lo = min(0.0, float(finite.min())) if finite.size else 0.0
        hi = float(finite.max()) if finite.size else 1.0
        t = np.clip((grid - lo) / ((hi - lo) or 1.0), 0.0, 1.0)
        out = bg + (np.array(POS_RGB, np.float32) - bg) * np.nan_to_num(t)[..., None]
    out[~np.isfinite(grid)] = (200, 200, 200)
    return out.round().astype(np.uint8)


def fallback_html(data: HeatmapData, *, cell: int = 14) -> str:
    """A PNG of the first grid and a caption: what shows where scripts do not run."""
    grid = _grid(data)
    rgb = colors(grid, data).repeat(cell, 0).repeat(cell, 1)
    png = base64.b64encode(png_bytes(np.ascontiguousarray(rgb))).decode("ascii")
    finite = np.where(np.isfinite(grid), grid, np.nan)
    caption = html.escape(data.title)
    if np.isfinite(finite).any():
        dev = np.nan_to_num(np.abs(finite - data.center), nan=-1.0)
        r, c = np.unravel_index(int(np.argmax(dev)), grid.shape)
        rlab = data.labels[data.rows][r]
        clab = data.labels[data.cols][c] if data.cols is not None else ""
        where = f"{data.axes[data.rows]} {rlab}" + (f", {data.axes[data.cols]} {clab}" if data.cols is not None else "")
        caption += html.escape(f"; largest effect at {where}: {float(grid[r, c]):.4g}")
    return (f'<img alt="{html.escape(data.title)} (rows: {html.escape(data.axes[data.rows])})" '
            f'src="data:image/png;base64,{png}"><div class="iw-fallback-caption">{caption}</div>')


def snapshot_html(state: dict[str, Any]) -> str:
    """Self-contained HTML of a patching widget's state (the inlined bundle draws it; no network)."""
    doc = StaticHeatmap.model_validate({"state": state})
    src = bundle_source(BUNDLE)
    result = doc.state.result
    fallback = fallback_html(result) if result is not None else html.escape("no result yet")
    return (
        '<div class="iw-static" data-iw-static="heatmap">'
        f'<div class="iw-fallback">{fallback}</div>'
        f'<script type="application/json" class="iw-static-data">{json_for_script(b64_tree(doc.model_dump()))}</script>'
        "</div>"
        f'<script type="module">{src}</script>'
    )


# --- display ----------------------------------------------------------------------------------------
#: results that are not heatmaps -> "widget module:function" building their widget from the result
_WIDGETS: dict[str, str] = {
    "interp_widget.analysis.vision.results": "interp_widget.widgets.vision:vision_widget",
    "interp_widget.analysis.circuits.graph": "interp_widget.widgets.circuit:circuit_widget",
    "interp_widget.analysis.superposition": "interp_widget.widgets.superposition:superposition_widget",
}


def show(result: Any, model: Any = None, **kwargs: Any) -> Any:
    """A widget showing ``result``: a SweepResult or HeadScores as an interactive heatmap, a CircuitGraph
    as the circuit graph, a vision result as its image grid or tuning curves, a SuperpositionResult as
    the superposition widget.

    For a heatmap, with ``model`` (and ``clean=`` / ``corrupted=`` prompts) it also has the patching
    controls and opens a head's attention patterns on click; see
    :func:`~interp_widget.widgets.patching.patching_widget`.
    """
    import importlib

    target = _WIDGETS.get(type(result).__module__)
    if target is not None:
        module, name = target.split(":")
        return getattr(importlib.import_module(module), name)(result, **kwargs)
    from interp_widget.widgets.patching import PatchingWidget

    return PatchingWidget.from_result(result, model=model, **kwargs)


def result_mimebundle(result: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """What a result displays as: the live heatmap widget, a static snapshot, and its repr as text."""
    return widget_bundle(show(result), result)
