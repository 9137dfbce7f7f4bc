"""The superposition widget: feature geometry of toy models, one per sparsity, with a sparsity slider.

>>> iw.superposition_widget()            # the zoo's superposition-toy, every sparsity   # doctest: +SKIP
>>> iw.superposition()                   # the result displays as the same widget         # doctest: +SKIP

It draws, for the selected sparsity, the ``W^T W`` matrix as a heatmap, one bar per feature (length:
its norm; colour: how much it shares its direction with other features) as in Elhage et al. (2022),
and the feature directions projected on the hidden space's two principal axes. Every sparsity's
numbers are in the synced state (float32 binary buffers), so the slider needs no kernel round trip
and the static snapshot keeps it working.

Probe results (:class:`~interp_widget.analysis.probes.ProbeResult`) display here too, as a small
static SVG line plot of accuracy by layer (:func:`probe_mimebundle`).

Importing this module imports no torch.
"""

from __future__ import annotations

import html
from typing import Any

import anywidget
import numpy as np
import traitlets as t

from interp_widget.schema import encode
from interp_widget.schema.superposition import SparsityInfo, StaticSuperposition, SuperpositionData, SuperpositionState
from interp_widget.server.registry import track
from interp_widget.widgets._display import widget_bundle
from interp_widget.widgets._static import STATIC_DIR
from interp_widget.widgets.features import missing_esm, snapshot_bundle

BUNDLE = STATIC_DIR / "superposition.js"


def _f32(x: Any) -> Any:
    return encode(np.ascontiguousarray(np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x,
                                                  dtype=np.float32)))


def superposition_data(res: Any, *, title: str | None = None) -> SuperpositionData:
    """The wire form of a :class:`~interp_widget.analysis.superposition.SuperpositionResult` (duck typed)."""
    from interp_widget.analysis.superposition import REPRESENTED

    models = [SparsityInfo(sparsity=float(s), n_represented=int(r), dims_per_feature=float(d))
              for s, r, d in zip(res.sparsities, res.n_represented, res.dims_per_feature.tolist(), strict=True)]
    return SuperpositionData(
        title=title or f"{res.n_features} features in {res.n_hidden} hidden dimensions",
        n_features=res.n_features, n_hidden=res.n_hidden, feature_labels=list(res.feature_labels),
        represented_threshold=REPRESENTED, models=models, gram=_f32(res.gram), norms=_f32(res.norms),
        superposition=_f32(res.superposition), projection=_f32(res.projection),
    )


class SuperpositionWidget(anywidget.AnyWidget):
    """Superposition geometry with a sparsity slider; see the module docstring."""

    _esm = BUNDLE if BUNDLE.is_file() else missing_esm("superposition")

    data = t.Dict().tag(sync=True)
    selected = t.Int(0).tag(sync=True)

    def __init__(self, result: Any, *, selected: int | None = None, title: str | None = None,
                 snapshot: bool = True) -> None:
        data = superposition_data(result, title=title)
        k = len(data.models)
        if selected is None:  # the sparsest model with features in superposition, else the last
            crowded = [i for i, m in enumerate(data.models) if m.n_represented > data.n_hidden]
            selected = crowded[0] if crowded else k - 1
        if not 0 <= selected < k:
            msg = f"selected {selected} is out of range: {k} sparsities (0..{k - 1})"
            raise IndexError(msg)
        super().__init__(data=data.model_dump(), selected=selected)
        self.snapshot = snapshot
        self.result = result
        track(self, "view")

    @t.validate("selected")
    def _valid_selected(self, proposal: dict[str, Any]) -> int:
        value = int(proposal["value"])
        k = len(self.data.get("models", [])) if self.data else 0
        if k and not 0 <= value < k:
            msg = f"selected {value} is out of range: {k} sparsities (0..{k - 1})"
            raise t.TraitError(msg)
        return value

    @property
    def sparsity(self) -> float:
        """The sparsity shown."""
        return float(self.data["models"][self.selected]["sparsity"])

    def select_sparsity(self, sparsity: float) -> None:
        """Show the model trained at ``sparsity``."""
        sps = [float(m["sparsity"]) for m in self.data["models"]]
        for i, s in enumerate(sps):
            if abs(s - sparsity) < 1e-9:
                self.selected = i
                return
        msg = f"no model at sparsity {sparsity}; sparsities: {sps}"
        raise ValueError(msg)

    def state_model(self) -> SuperpositionState:
        return SuperpositionState.model_validate({"data": self.data, "selected": self.selected})

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return snapshot_bundle(self, super()._repr_mimebundle_(**kwargs), BUNDLE, "superposition",
                               lambda: StaticSuperposition(state=self.state_model()).model_dump())

    def __repr__(self) -> str:
        return f"<SuperpositionWidget {self.data.get('title', '')!r}; sparsity {self.sparsity:g}>"


def superposition_widget(source: Any = None, *, selected: int | None = None, snapshot: bool = True,
                         **kwargs: Any) -> SuperpositionWidget:
    """The widget for ``source`` (see :func:`interp_widget.analysis.superposition.superposition`; default:
    the zoo's ``superposition-toy`` at every sparsity)."""
    from interp_widget.analysis.superposition import SuperpositionResult, superposition

    res = source if isinstance(source, SuperpositionResult) else superposition(source, **kwargs)
    return SuperpositionWidget(res, selected=selected, snapshot=snapshot)


def result_mimebundle(result: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """What a SuperpositionResult or ProbeResult displays as (the live widget / an SVG line plot)."""
    if type(result).__name__ == "ProbeResult":
        return probe_mimebundle(result)
    return widget_bundle(SuperpositionWidget(result), result)


# --- probe results: a static line plot ---------------------------------------------------------------
_SERIES = (("accuracy", "probe", "var(--jp-brand-color1, #1976d2)", ""),
           ("control_accuracy", "control", "var(--jp-warn-color1, #f57c00)", "4 3"))


def probe_svg(res: Any, *, width: int = 420, height: int = 220) -> str:
    """Accuracy by site (probe, control and the majority-class rate) as an SVG line plot."""
    n = len(res.sites)
    left, right, top, bottom = 40, 12, 22, 48
    w, h = width - left - right, height - top - bottom

    def x(i: int) -> float:
        return left + (w * i / (n - 1) if n > 1 else w / 2)

    def y(v: float) -> float:
        return top + h * (1 - max(0.0, min(1.0, v)))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" class="iw-probe-plot" '
             f'font-size="10" font-family="sans-serif" fill="currentColor">',
             f'<text x="{left}" y="12" font-weight="600">{html.escape(res.title)}</text>']
    for v in (0.0, 0.25, 0.5, 0.75, 1.0):
        parts.append(f'<line x1="{left}" x2="{left + w}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="currentColor" '
                     'stroke-opacity="0.15"/>')
        parts.append(f'<text x="{left - 4}" y="{y(v) + 3:.1f}" text-anchor="end">{v:g}</text>')
    parts.append(f'<line x1="{left}" x2="{left + w}" y1="{y(res.chance):.1f}" y2="{y(res.chance):.1f}" '
                 'stroke="currentColor" stroke-opacity="0.5" stroke-dasharray="1 3"/>')
    for key, label, color, dash in _SERIES:
        vals = getattr(res, key)
        pts = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(vals))
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="2" '
                     f'stroke-dasharray="{dash}" data-series="{label}"/>')
        parts.extend(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3" fill="{color}"><title>{html.escape(label)} '
                     f'{html.escape(res.sites[i])}: {v:.3f}</title></circle>' for i, v in enumerate(vals))
    for i, s in enumerate(res.sites):
        short = s.replace("blocks.", "").replace(".hook_", " ").split("[")[0]
        parts.append(f'<text x="{x(i):.1f}" y="{top + h + 14}" text-anchor="middle">{html.escape(short)}</text>')
    legend_y = height - 10
    parts.append(f'<text x="{left}" y="{legend_y}">probe (solid) · control: {html.escape(res.control)} (dashed) · '
                 f'chance {res.chance:.2f} (dotted) · {res.n_train} train / {res.n_test} test</text>')
    parts.append("</svg>")
    return "".join(parts)


def probe_mimebundle(res: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """A ProbeResult as an SVG line plot (``text/html``, no script: it shows without a kernel too)."""
    return {"text/plain": repr(res), "text/html": f'<div class="iw-probes">{probe_svg(res)}</div>'}, {}
