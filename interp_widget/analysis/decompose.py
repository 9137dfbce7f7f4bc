"""Which SAE features make up a neuron's activation, and which neurons a feature loads on.

>>> d = decompose(model, sae, "blocks.0.mlp.hook_post:7", "ka mo the => apple")   # doctest: +SKIP
>>> d.top(k=5)             # (feature, contribution) at the neuron's most active token  # doctest: +SKIP
>>> feature_neurons(sae, 12), neuron_features(sae, 7)                              # doctest: +SKIP

Two placements of the SAE are exact:

* **the SAE reads the neuron's own site** (``mlp.hook_post`` or ``mlp.hook_pre``, or any site whose unit is the
  neuron): the SAE reconstructs the site's vector as ``b_dec + sum_f a_f W_dec[f]``, so the neuron's
  reconstructed activation is ``b_dec[n] + sum_f a_f W_dec[f, n]``: feature ``f`` contributes
  ``a_f * W_dec[f, n]`` and the bias term is ``b_dec[n]``;
* **the SAE reads the MLP's input** (``hook_resid_mid``, the residual stream before ``ln2``) and the neuron is a
  pre-activation (``mlp.hook_pre:n``): the neuron reads ``W_in[:, n] . LN2(x) + b_in[n]``. With LayerNorm's
  scale ``sigma`` taken from the run (as TransformerLens does for direct attributions), ``LN2`` is linear, so
  feature ``f`` contributes ``a_f * (centre(W_dec[f]) / sigma * w_ln2) . W_in[:, n]`` and the bias term is the
  same read of ``b_dec`` plus ``b_ln2 . W_in[:, n] + b_in[n]``.

In both, ``bias + contributions.sum()`` is the neuron's activation computed from the SAE's reconstruction, and
``error`` is the real activation minus it (the SAE's reconstruction error, read by the neuron).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from interp_widget.analysis.neurons import Unit, unit
from interp_widget.errors import InputMismatchError, SiteIndexError
from interp_widget.tracing.sites import Site

if TYPE_CHECKING:
    import torch

    from interp_widget.models.model import Model


def _sae_parts(sae: Any) -> tuple[Any, torch.Tensor, torch.Tensor, Site | None]:
    """(encoder callable, W_dec [d_sae, d_in], b_dec [d_in], site) of an SAEResult or a SAELens SAE."""
    import torch

    inner = getattr(sae, "sae", sae)
    w_dec = getattr(sae, "W_dec", None)
    b_dec = getattr(inner, "b_dec", None)
    if w_dec is None or b_dec is None or not callable(getattr(sae, "encode", None)):
        msg = f"{type(sae).__name__} is not an SAE: expected an SAEResult or a SAELens SAE (encode, W_dec, b_dec)"
        raise TypeError(msg)
    site = getattr(sae, "site", None)
    if site is None:
        name = getattr(getattr(getattr(inner, "cfg", None), "metadata", None), "hook_name", None)
        site = Site.parse(name) if name else None
    elif isinstance(site, str):
        site = Site.parse(site)

    def encode(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return sae.encode(x.to(w_dec.dtype))

    return encode, w_dec.detach().float(), b_dec.detach().float(), site


@dataclass
class NeuronDecomposition:
    """A neuron's activation on each token of one input, split over SAE features.

    ``bias + contributions[p].sum() == reconstruction[p]``; ``activation[p] - reconstruction[p] == error[p]``.
    """

    unit: Unit
    sae_site: Site
    tokens: torch.Tensor  # [pos]
    str_tokens: list[str]
    activation: torch.Tensor  # [pos] the real neuron activation
    feature_acts: torch.Tensor  # [pos, d_sae]
    contributions: torch.Tensor  # [pos, d_sae]
    bias: torch.Tensor  # [pos] the bias term (constant over positions at the neuron's site)
    reconstruction: torch.Tensor  # [pos]
    position: int  # the default token: where the neuron is most active

    @property
    def error(self) -> torch.Tensor:
        return self.activation - self.reconstruction

    def top(self, k: int = 5, position: int | None = None) -> list[tuple[int, float]]:
        """The ``k`` features with the largest absolute contribution at ``position`` (nonzero ones only)."""
        import torch

        p = self.position if position is None else position
        if not -len(self.str_tokens) <= p < len(self.str_tokens):
            msg = f"position {p} is out of range: the input has {len(self.str_tokens)} tokens"
            raise SiteIndexError(msg)
        c = self.contributions[p]
        order = torch.argsort(c.abs(), descending=True, stable=True)[:k]
        return [(int(f), float(c[f])) for f in order if c[f] != 0]

    def __repr__(self) -> str:
        p = self.position
        parts = ", ".join(f"f{f} {v:+.3f}" for f, v in self.top(5))
        return (f"<NeuronDecomposition {self.unit.label} at token {p} {self.str_tokens[p]!r}: activation "
                f"{float(self.activation[p]):.3f} = bias {float(self.bias[p]):+.3f} + features ({parts}, ...) "
                f"+ error {float(self.error[p]):+.3f}>")


def decompose(model: Model, sae: Any, neuron: Unit | str, tokens: Any, *, position: int | None = None) -> NeuronDecomposition:
    """Split ``neuron``'s activation on ``tokens`` (one text or ``[pos]`` / ``[1, pos]`` ids) over ``sae``'s features."""
    import torch

    u = unit(model, neuron)
    if not u.is_neuron:
        msg = f"decompose takes a neuron ('site:index'); {u.label} is a direction or a transformed unit"
        raise InputMismatchError(msg)
    encode, w_dec, b_dec, sae_site = _sae_parts(sae)
    if sae_site is None:
        msg = "the SAE does not say which site it reads; train it with site= or set its .site"
        raise InputMismatchError(msg)
    toks = model.to_tokens(tokens) if isinstance(tokens, str) else torch.as_tensor(tokens).long()
    toks = toks[None] if toks.ndim == 1 else toks
    if toks.shape[0] != 1:
        msg = f"decompose takes one input; got {toks.shape[0]} sequences"
        raise InputMismatchError(msg)
    same = sae_site.hook_name == u.site.hook_name
    mid = (u.site.component == "mlp.hook_pre" and sae_site.component == "hook_resid_mid"
           and sae_site.layer == u.site.layer)
    if not (same or mid):
        msg = (f"an SAE at {sae_site.hook_name} cannot be read exactly by {u.label}: decompose a neuron of the SAE's "
               f"own site, or an mlp.hook_pre neuron of the layer whose hook_resid_mid the SAE reads")
        raise InputMismatchError(msg)
    capture = [u.site, sae_site] if mid else [u.site]
    with torch.no_grad():
        res = model.run(toks, capture=capture)
    act = res.cache[u.site.hook_name][0].float()  # [pos, d]
    x = res.cache[sae_site.hook_name][0].float()
    if x.shape[-1] != w_dec.shape[1]:
        msg = f"the SAE reads width {w_dec.shape[1]} but {sae_site.hook_name} has width {x.shape[-1]}"
        raise InputMismatchError(msg)
    feats = encode(x).float()  # [pos, d_sae]
    n = int(u.index)  # type: ignore[arg-type]
    if same:
        read = w_dec[:, n]  # [d_sae]
        contributions = feats * read
        bias = b_dec[n].expand(act.shape[0]).clone()
    else:
        contributions, bias = _through_ln2(model, u.site.layer, n, feats, w_dec, b_dec, x)  # type: ignore[arg-type]
    recon = bias + contributions.sum(-1)
    neuron_act = act[:, n]
    pos = int(torch.argmax(neuron_act)) if position is None else position
    if not -neuron_act.shape[0] <= pos < neuron_act.shape[0]:
        msg = f"position {pos} is out of range: the input has {neuron_act.shape[0]} tokens"
        raise SiteIndexError(msg)
    return NeuronDecomposition(u, sae_site, toks[0], model.to_str_tokens(toks[0]), neuron_act, feats, contributions,
                               bias, recon, pos % neuron_act.shape[0])


def _through_ln2(model: Model, layer: int, n: int, feats: torch.Tensor, w_dec: torch.Tensor, b_dec: torch.Tensor,
                 x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-feature contributions to pre-activation ``n`` through ``ln2`` (scale from the run) and ``W_in``."""
    ht = model.raw
    block = ht.blocks[layer]
    norm = ht.cfg.normalization_type
    w_in = block.mlp.W_in.detach().float()[:, n]  # [d_model]
    b_in = float(block.mlp.b_in.detach()[n])
    centred = norm in ("LN", "LNPre")
    xc = x - x.mean(-1, keepdim=True) if centred else x
    eps = ht.cfg.eps
    scale = ((xc.pow(2).mean(-1, keepdim=True) + eps).sqrt() if norm is not None else None)  # [pos, 1]
    w = block.ln2.w.detach().float() if norm in ("LN", "RMS") else None
    b = block.ln2.b.detach().float() if norm == "LN" else None

    def read(v: torch.Tensor) -> torch.Tensor:  # [k, d_model] -> [pos, k]: LN2's linear part, then W_in[:, n]
        v = v - v.mean(-1, keepdim=True) if centred else v
        v = v * w if w is not None else v
        r = (v @ w_in)[None]
        return r / scale if scale is not None else r.expand(x.shape[0], -1)

    contributions = feats * read(w_dec)  # [pos, d_sae]
    bias = read(b_dec[None])[:, 0]
    bias = bias + b_in + (float(b @ w_in) if b is not None else 0.0)
    return contributions, bias


@dataclass
class Loadings:
    """Weights of one SAE feature over neurons, or of one neuron over SAE features, largest first."""

    indices: torch.Tensor
    values: torch.Tensor
    what: str

    def __repr__(self) -> str:
        items = ", ".join(f"{int(i)}: {float(v):+.3f}" for i, v in zip(self.indices[:8], self.values[:8], strict=False))
        return f"<Loadings {self.what}: {items}{', ...' if len(self.indices) > 8 else ''}>"


def feature_neurons(sae: Any, feature: int, *, k: int | None = None) -> Loadings:
    """The neurons SAE feature ``feature`` writes to: its decoder row ``W_dec[feature]``, by decreasing weight."""
    import torch

    _, w_dec, _, _ = _sae_parts(sae)
    if not 0 <= feature < w_dec.shape[0]:
        msg = f"feature {feature} is out of range: the SAE has {w_dec.shape[0]} features (0..{w_dec.shape[0] - 1})"
        raise SiteIndexError(msg)
    row = w_dec[feature]
    order = torch.argsort(row, descending=True, stable=True)[:k]
    return Loadings(order, row[order], f"SAE feature {feature} -> neurons")


def neuron_features(sae: Any, neuron: int, *, k: int | None = None) -> Loadings:
    """The SAE features that load on unit ``neuron`` of the SAE's site (column ``W_dec[:, neuron]``), largest first."""
    import torch

    _, w_dec, _, _ = _sae_parts(sae)
    if not 0 <= neuron < w_dec.shape[1]:
        msg = f"neuron {neuron} is out of range: the SAE's site has {w_dec.shape[1]} units (0..{w_dec.shape[1] - 1})"
        raise SiteIndexError(msg)
    col = w_dec[:, neuron]
    order = torch.argsort(col, descending=True, stable=True)[:k]
    return Loadings(order, col[order], f"neuron {neuron} <- SAE features")


__all__ = ["Loadings", "NeuronDecomposition", "decompose", "feature_neurons", "neuron_features"]
