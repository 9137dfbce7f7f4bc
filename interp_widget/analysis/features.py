"""Feature dashboards: an SAE feature's top activations, histogram, logit effects and prompt activations.

>>> fv = feature_view(model, sae, 12, dataset)          # doctest: +SKIP
>>> fv.top.str_tokens[0], fv.logits.top_tokens           # doctest: +SKIP

A feature is a unit of :mod:`interp_widget.analysis.neurons` whose activation is ``sae.encode`` of the
site's activation, so the dataset scan (top examples, histogram) is the neuron view's own. Logit effects
follow the feature's decoder row down the direct path: ``W_dec[f]`` at the SAE's site (through ``W_out``
for an MLP-neuron SAE), then ``ln_final``'s weight and ``W_U``, as the neuron view does for a neuron.

:class:`FeatureMap` ties neurons and features together for the dashboard widget: a neuron's features
(ranked by their mean contribution ``f(x) * W_dec[f, n]`` at the neuron's top activations, from
:func:`~interp_widget.analysis.decompose.decompose`) and a feature's neurons (its decoder row,
:func:`~interp_widget.analysis.decompose.feature_neurons`), both ways from the same SAE on the neuron site.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import torch

from interp_widget.analysis.steering import unwrap_sae
from interp_widget.errors import InputMismatchError, SiteIndexError
from interp_widget.models.loading import load
from interp_widget.tracing.sites import Site

if TYPE_CHECKING:
    from interp_widget.analysis.neurons import ActivationHistogram, LogitEffects, TopExamples, Unit
    from interp_widget.models.model import Model

UnitKind = Literal["neuron", "feature"]
Progress = Callable[[int, int], Any]
_NEURON_SITES = ("mlp.hook_post", "mlp.hook_pre")


def _sae_site(sae: Any, site: Site | str | None) -> Site:
    from interp_widget.analysis.steering import sae_site

    name = site if site is not None else sae_site(sae)
    if name is None:
        msg = "name the SAE's site (e.g. site='blocks.0.mlp.hook_post'); this SAE does not say"
        raise InputMismatchError(msg)
    return Site.parse(name)


def _check_feature(sae: Any, index: int) -> None:
    n = int(unwrap_sae(sae).W_dec.shape[0])
    if not 0 <= index < n:
        msg = f"feature {index} is out of range: the SAE has {n} features (0..{n - 1})"
        raise SiteIndexError(msg)


def feature_unit(model: Model, sae: Any, index: int, site: Site | str | None = None) -> Unit:
    """Feature ``index`` of ``sae`` as a unit of the neuron view (activation: ``sae.encode``)."""
    from interp_widget.analysis.neurons import unit

    _check_feature(sae, index)
    module = unwrap_sae(sae)
    s = _sae_site(sae, site)
    return unit(model, s.hook_name, index, transform=_encoder(module), name=f"SAE feature {index}")


#: one encoder per SAE module, so every feature of an SAE shares its transform (one batched scan for all)
_ENCODERS: weakref.WeakKeyDictionary[Any, Callable[[torch.Tensor], torch.Tensor]] = weakref.WeakKeyDictionary()


def _encoder(module: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    if module in _ENCODERS:
        return _ENCODERS[module]
    width = int(module.W_dec.shape[1])

    def encode(x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != width:
            msg = f"the SAE reads vectors of width {width}; the site gives width {x.shape[-1]}"
            raise InputMismatchError(msg)
        with torch.no_grad():
            return module.encode(x.to(module.W_dec.dtype)).float()

    _ENCODERS[module] = encode
    return encode


def feature_logit_effects(model: Model, sae: Any, index: int, *, site: Site | str | None = None,
                          k: int = 10) -> LogitEffects | None:
    """The direct-path logit effect of +1 on feature ``index``: its decoder row as a direction at the site."""
    from interp_widget.analysis.neurons import logit_effects, unit

    _check_feature(sae, index)
    s = _sae_site(sae, site)
    row = unwrap_sae(sae).W_dec[index].detach().float().cpu()
    u = unit(model, s.hook_name, direction=row, name=f"SAE feature {index}")
    return logit_effects(model, u, k=k)


@dataclass
class FeatureView:
    """A feature's dashboard data (the neuron view's shapes: see :mod:`interp_widget.analysis.neurons`)."""

    index: int
    site: str
    top: TopExamples
    histogram: ActivationHistogram
    logits: LogitEffects | None

    def __repr__(self) -> str:
        promoted = self.logits.top_tokens[:5] if self.logits is not None else []
        return (f"<FeatureView SAE feature {self.index} at {self.site}: top activation "
                f"{float(self.top.values[0]) if len(self.top.values) else float('nan'):.3g}, "
                f"promotes {promoted}>")


def feature_view(model: Model | Any, sae: Any, index: int, dataset: Any, *, site: Site | str | None = None,
                 k: int = 16, progress: Any = None, **scan_kw: Any) -> FeatureView:
    """Top examples, histogram and logit effects of one SAE feature over ``dataset``."""
    from interp_widget.analysis.neurons import scan

    m = load(model)
    u = feature_unit(m, sae, index, site)
    [(top, hist)] = scan(m, [u], dataset, k=k, progress=progress, **scan_kw)
    return FeatureView(index, u.site.hook_name, top, hist, feature_logit_effects(m, sae, index, site=site))


def prompt_activations(model: Model | Any, u: Unit, text: str) -> tuple[list[str], torch.Tensor]:
    """``u``'s activation at every token of ``text``: the tokens and a float32 ``[n_tokens]`` tensor."""
    m = load(model)
    tokens = m.to_tokens(text)
    x = m.run(tokens, capture=[u.site]).cache[u.site.hook_name][0].float()
    return m.to_str_tokens(tokens), u.read(x).float().cpu()


@dataclass
class UnitData:
    """One neuron or feature as the dashboard shows it."""

    kind: UnitKind
    index: int
    unit: Unit
    top: TopExamples
    histogram: ActivationHistogram
    logits: LogitEffects | None
    links: list[tuple[UnitKind, int, float]]
    links_title: str


@dataclass
class FeatureMap:
    """Neurons of an MLP site and the features of an SAE trained on that site, scanned over one dataset.

    Build it with :func:`feature_map`; :meth:`get` gives a neuron's or a feature's :class:`UnitData`.
    """

    model: Model
    sae: Any
    site: Site
    dataset: list[torch.Tensor]  # the scanned sequences, 1-D token tensors
    k: int
    n_links: int
    neurons: list[tuple[TopExamples, ActivationHistogram]]
    features: list[tuple[TopExamples, ActivationHistogram]]
    _cache: dict[tuple[str, int], UnitData] = field(default_factory=dict, repr=False)

    @property
    def n_neurons(self) -> int:
        return len(self.neurons)

    @property
    def n_features(self) -> int:
        return len(self.features)

    @property
    def W_dec(self) -> torch.Tensor:
        return unwrap_sae(self.sae).W_dec.detach().float().cpu()

    def check(self, kind: str, index: int) -> None:
        if kind not in ("neuron", "feature"):
            msg = f"kind must be 'neuron' or 'feature', not {kind!r}"
            raise InputMismatchError(msg)
        n = self.n_neurons if kind == "neuron" else self.n_features
        if not isinstance(index, int) or not 0 <= index < n:
            where = f"{self.site.hook_name} has {n} neurons" if kind == "neuron" else f"the SAE has {n} features"
            msg = f"{kind} {index} is out of range: {where} (0..{n - 1})"
            raise SiteIndexError(msg)

    def unit(self, kind: UnitKind, index: int) -> Unit:
        from interp_widget.analysis.neurons import unit

        self.check(kind, index)
        if kind == "neuron":
            return unit(self.model, self.site.hook_name, index)
        return feature_unit(self.model, self.sae, index, self.site)

    def get(self, kind: UnitKind, index: int) -> UnitData:
        """A neuron's or a feature's dashboard data (cached)."""
        self.check(kind, index)
        key = (kind, index)
        if key not in self._cache:
            self._cache[key] = self._build(kind, index)
        return self._cache[key]

    def _build(self, kind: UnitKind, index: int) -> UnitData:
        from interp_widget.analysis.decompose import feature_neurons
        from interp_widget.analysis.neurons import logit_effects

        u = self.unit(kind, index)
        logits: LogitEffects | None
        top, hist = (self.neurons if kind == "neuron" else self.features)[index]
        if kind == "neuron":
            logits = logit_effects(self.model, u)
            weights = self._neuron_features(index, top)
            title = "features that make up its top activations (mean f(x) · W_dec[f, n])"
            other: UnitKind = "feature"
        else:
            logits = feature_logit_effects(self.model, self.sae, index, site=self.site)
            loads = feature_neurons(self.sae, index)
            weights = torch.zeros(self.n_neurons).index_copy_(0, loads.indices, loads.values)
            title = "neurons the feature writes to (decoder row W_dec[f])"
            other = "neuron"
        order = torch.argsort(weights.abs(), descending=True)[: self.n_links]
        links = [(other, int(i), float(weights[i])) for i in order if float(weights[i]) != 0.0]
        return UnitData(kind, index, u, top, hist, logits, links, title)

    def _neuron_features(self, neuron: int, top: TopExamples) -> torch.Tensor:
        """Mean contribution of each feature to ``neuron`` at its top examples' focus tokens (the neuron view's
        decomposition of each example, read at its focus token)."""
        from interp_widget.analysis.decompose import decompose

        total = torch.zeros(self.n_features)
        for i in range(len(top)):  # the whole sequence up to the focus token (the window may start later)
            ids = self.dataset[int(top.sequence[i])][: int(top.position[i]) + 1]
            total += decompose(self.model, self.sae, self.unit("neuron", neuron), ids, position=-1).contributions[-1]
        return total / max(1, len(top))

    def prompt(self, kind: UnitKind, index: int, text: str) -> tuple[list[str], torch.Tensor,
                                                                        list[tuple[UnitKind, int, float]]]:
        """A unit's activations over ``text``; for a neuron also its features' contributions at the peak token
        (:func:`~interp_widget.analysis.decompose.decompose`)."""
        self.check(kind, index)
        if not text:
            msg = "type some text to see the activations on"
            raise InputMismatchError(msg)
        u = self.unit(kind, index)
        if kind == "neuron":  # the decomposition at the peak token
            from interp_widget.analysis.decompose import decompose

            d = decompose(self.model, self.sae, u, text)
            links: list[tuple[UnitKind, int, float]] = [("feature", f, c) for f, c in d.top(self.n_links)]
            return d.str_tokens, d.activation.float().cpu(), links
        toks, acts = prompt_activations(self.model, u, text)
        return toks, acts, []


def feature_map(model: Model | Any, sae: Any, dataset: Any, *, site: Site | str | None = None, k: int = 8,
                n_links: int = 8, progress: Progress | bool | None = None, **scan_kw: Any) -> FeatureMap:
    """Scan ``dataset`` once for every neuron of the SAE's (MLP) site and once for every SAE feature.

    ``progress``: a callable ``progress(done, total)`` over both scans (raise from it to stop), True (a tqdm
    bar per scan) or None.
    """
    from interp_widget.analysis.activation_store import as_sequences
    from interp_widget.analysis.neurons import scan, unit

    m = load(model)
    s = m.check_site(_sae_site(sae, site).hook_name)
    if s.component not in _NEURON_SITES:
        msg = (f"the dashboard links neurons and features of an SAE on an MLP neuron site ({', '.join(_NEURON_SITES)}); "
               f"this SAE reads {s.hook_name}")
        raise InputMismatchError(msg)
    module = unwrap_sae(sae)
    d_mlp = int(m.spec.d_mlp or 0)
    if int(module.W_dec.shape[1]) != d_mlp:
        msg = f"the SAE reads vectors of width {module.W_dec.shape[1]} but {s.hook_name} has {d_mlp} neurons"
        raise InputMismatchError(msg)
    n_feat = int(module.W_dec.shape[0])
    total = d_mlp + n_feat
    neuron_units = [unit(m, s.hook_name, i) for i in range(d_mlp)]
    feat_units = [feature_unit(m, sae, i, s) for i in range(n_feat)]

    def part(offset: int, n: int) -> Any:
        if progress is None or isinstance(progress, bool):  # off, or a tqdm bar per scan
            return progress
        return lambda done, tot: progress(offset + round(n * done / max(1, tot)), total)

    seqs = as_sequences(dataset, m)
    neurons = scan(m, neuron_units, seqs, k=k, progress=part(0, d_mlp), **scan_kw)
    features = scan(m, feat_units, seqs, k=k, progress=part(d_mlp, n_feat), **scan_kw)
    return FeatureMap(m, sae, s, seqs, k, n_links, list(neurons), list(features))

