"""The feature dashboard: from a neuron to the SAE features that make it up, and from a feature to its neurons.

>>> w = iw.feature_dashboard(model, sae, dataset)          # doctest: +SKIP
>>> w.select("neuron", 3); w.panel_data.links              # doctest: +SKIP

Each panel (a neuron or a feature) shows its top examples with per-token highlighting, an activation
histogram, the tokens it promotes and suppresses, and links to the other side; clicking a link opens
that unit. The prompt box sends the ``get_activations`` command: the unit's activation over the typed
text (for a neuron, also its features' contributions at the peak token). Every command replies, errors
too (``safe_command`` with this widget's envelope). The data comes from :class:`~interp_widget.analysis.features.FeatureMap`.

Importing this module imports no torch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import anywidget
import numpy as np
import traitlets as t

from interp_widget.schema import encode
from interp_widget.schema.features import (
    ActivationsReply,
    ActivationsRequest,
    FeaturesEnvelope,
    FeaturesState,
    Histogram,
    PanelReply,
    PromptActivations,
    SelectRequest,
    StaticFeatures,
    TokenEffect,
    TopExample,
    UnitLink,
    UnitPanel,
)
from interp_widget.server.registry import track
from interp_widget.widgets._commands import reply_unknown_commands, safe_command
from interp_widget.widgets._static import STATIC_DIR, add_snapshot, b64_tree, bundle_source, json_for_script

if TYPE_CHECKING:
    from pathlib import Path

    from interp_widget.analysis.features import FeatureMap, UnitData

BUNDLE = STATIC_DIR / "features.js"
COMMANDS = {"select_unit", "get_activations"}


# --- helpers shared with the steering widget --------------------------------------------------------
def missing_esm(name: str) -> str:
    """The ES module shown when ``static/NAME.js`` was never built."""
    return ('export default { render({ el }) { el.textContent = "interp-widget: the front end is not built '
            f'(interp_widget/widgets/static/{name}.js is missing). Run `npm install && npm run build` in the '
            'source checkout, or install the wheel."; } };')


def snapshot_bundle(widget: Any, bundle: Any, path: Path, kind: str, doc: Callable[[], dict[str, Any]]) -> Any:
    """Add a static snapshot (``text/html``: the inlined bundle and the state as base64 JSON) to a widget's
    mime bundle, so a notebook reopened without a kernel still shows the view (``widget`` None: a bare result)."""
    def html() -> str:
        src = bundle_source(path)
        return (
            f'<div class="iw-static" data-iw-static="{kind}"><div class="iw-fallback">interp-widget {kind} view '
            '(run the notebook to interact)</div>'
            f'<script type="application/json" class="iw-static-data">{json_for_script(b64_tree(doc()))}</script>'
            f'</div><script type="module">{src}</script>'
        )

    return add_snapshot(bundle, widget is None or getattr(widget, "snapshot", True), html)


_command = safe_command(envelope_model=FeaturesEnvelope)


# --- analysis data -> wire ----------------------------------------------------------------------------
def _f32(x: Any) -> Any:
    return encode(np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x, dtype=np.float32))


def _links(items: Sequence[tuple[str, int, float]]) -> list[UnitLink]:
    return [UnitLink(kind=k, index=i, weight=w, label=f"{k} {i}") for k, i, w in items]  # type: ignore[arg-type]


def panel_data(d: UnitData, site: str) -> UnitPanel:
    """The wire form of one neuron's or feature's :class:`~interp_widget.analysis.features.UnitData`."""
    top = []
    for i in range(len(d.top)):
        toks = d.top.str_tokens[i]
        acts = d.top.acts[i][: len(toks)]
        top.append(TopExample(tokens=toks, acts=_f32(acts), peak=int(d.top.focus[i]), value=float(d.top.values[i]),
                              row=int(d.top.sequence[i])))
    h = d.histogram
    hist = Histogram(counts=encode(h.counts.numpy().astype(np.int32)), edges=_f32(h.edges), n=int(h.n_total),
                     n_nonpositive=round(h.n_total * (1 - h.frac_positive)))
    lg = d.logits
    promoted = [TokenEffect(token=s, value=float(v)) for s, v in zip(lg.top_tokens, lg.top_values.tolist(),
                                                                     strict=True)] if lg else []
    suppressed = [TokenEffect(token=s, value=float(v)) for s, v in zip(lg.bottom_tokens, lg.bottom_values.tolist(),
                                                                       strict=True)] if lg else []
    title = f"neuron {d.index} ({site}:{d.index})" if d.kind == "neuron" else f"SAE feature {d.index}"
    note = (f"{len(d.top)} top examples of {h.n_total} tokens; mean {h.mean:.3g}, max {h.max:.3g}, "
            f"{100 * h.frac_positive:.1f}% > 0")
    return UnitPanel(kind=d.kind, index=d.index, site=site, title=title, top=top, histogram=hist, promoted=promoted,
                     suppressed=suppressed, links=_links(d.links), links_title=d.links_title, note=note)


class FeatureDashboard(anywidget.AnyWidget):
    """Neurons and SAE features, linked both ways; see the module docstring."""

    _esm = BUNDLE if BUNDLE.is_file() else missing_esm("features")

    model_name = t.Unicode("").tag(sync=True)
    neuron_site = t.Unicode("").tag(sync=True)
    feature_site = t.Unicode("").tag(sync=True)
    n_neurons = t.Int(0).tag(sync=True)
    n_features = t.Int(0).tag(sync=True)
    kind = t.Enum(["neuron", "feature"], "feature").tag(sync=True)
    index = t.Int(0).tag(sync=True)
    prompt = t.Unicode("").tag(sync=True)
    panel = t.Dict(allow_none=True, default_value=None).tag(sync=True)
    prompt_acts = t.Dict(allow_none=True, default_value=None).tag(sync=True)
    controls = t.Bool(True).tag(sync=True)

    def __init__(self, fmap: FeatureMap, *, kind: str = "feature", index: int = 0, prompt: str = "",
                 snapshot: bool = True) -> None:
        site = fmap.site.hook_name
        super().__init__(model_name=fmap.model.name, neuron_site=site, feature_site=site,
                         n_neurons=fmap.n_neurons, n_features=fmap.n_features, prompt=prompt)
        self._map = fmap
        self._guard = threading.Lock()
        self.snapshot = snapshot
        self.select(kind, index)
        if prompt:
            self.activations(prompt)
        reply_unknown_commands(self, COMMANDS)
        track(self, "view")

    # --- Python API -------------------------------------------------------------------------------
    @property
    def feature_map(self) -> FeatureMap:
        return self._map

    @property
    def panel_data(self) -> UnitData:
        """The analysis data of the unit on screen."""
        return self._map.get(self.kind, self.index)  # type: ignore[arg-type]

    def select(self, kind: str, index: int) -> UnitPanel:
        """Show neuron or feature ``index``."""
        with self._guard:
            d = self._map.get(kind, index)  # type: ignore[arg-type]  # checks kind and index
            panel = panel_data(d, self._map.site.hook_name)
            with self.hold_sync():
                self.kind, self.index = kind, index
                self.panel = panel.model_dump()
                self.prompt_acts = None  # type: ignore[assignment]
        return panel

    def activations(self, text: str) -> PromptActivations:
        """The unit on screen's activations over ``text`` (also shown under the prompt box)."""
        with self._guard:
            tokens, acts, links = self._map.prompt(self.kind, self.index, text)  # type: ignore[arg-type]
            out = PromptActivations(kind=self.kind, index=self.index, text=text, tokens=tokens,  # type: ignore[arg-type]
                                    acts=_f32(acts), links=_links(links))
            with self.hold_sync():
                self.prompt = text
                self.prompt_acts = out.model_dump()
        return out

    # --- commands -----------------------------------------------------------------------------------
    @_command
    def select_unit(self, msg: dict[str, Any], buffers: list[bytes]) -> PanelReply:
        req = SelectRequest.model_validate(msg)
        return PanelReply(panel=self.select(req.kind, req.index))

    @_command
    def get_activations(self, msg: dict[str, Any], buffers: list[bytes]) -> ActivationsReply:
        req = ActivationsRequest.model_validate(msg)
        if (req.kind, req.index) != (self.kind, self.index):
            self.select(req.kind, req.index)
        return ActivationsReply(acts=self.activations(req.text))

    # --- state, snapshot ------------------------------------------------------------------------------
    def state_model(self) -> FeaturesState:
        return FeaturesState.model_validate({k: getattr(self, k) for k in FeaturesState.model_fields})

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return snapshot_bundle(self, super()._repr_mimebundle_(**kwargs), BUNDLE, "features",
                               lambda: StaticFeatures(state=self.state_model()).model_dump())

    def __repr__(self) -> str:
        return (f"<FeatureDashboard {self.model_name!r}: {self.n_neurons} neurons, {self.n_features} features at "
                f"{self.neuron_site}; showing {self.kind} {self.index}>")


def feature_dashboard(model: Any, sae: Any, dataset: Any, *, site: str | None = None, kind: str = "feature",
                      index: int = 0, prompt: str = "", k: int = 8, n_links: int = 8, progress: Any = None,
                      snapshot: bool = True, **scan_kw: Any) -> FeatureDashboard:
    """A dashboard of the neurons at an SAE's MLP site and the SAE's features, scanned over ``dataset``.

    ``sae``: a SAELens SAE or an :class:`~interp_widget.analysis.sae.SAEResult` trained on e.g.
    ``blocks.0.mlp.hook_post`` (``site`` overrides the site it names). ``dataset``: texts or a token tensor.
    ``kind``/``index``: the unit shown first; ``prompt``: text whose activations show at once.
    """
    from interp_widget.analysis.features import feature_map

    fmap = feature_map(model, sae, dataset, site=site, k=k, n_links=n_links, progress=progress, **scan_kw)
    return FeatureDashboard(fmap, kind=kind, index=index, prompt=prompt, snapshot=snapshot)
