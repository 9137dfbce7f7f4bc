"""The TransformerLens backend: a ``HookedTransformer`` or a ``TransformerBridge``.

Written against the surface both share: ``hook_dict``, the ``hooks()`` context
manager, ``to_tokens``, ``cfg`` and ``set_use_attn_result``. Site names are the
models' own hook names, so nothing is mapped.

* Hooks are added through ``model.hooks(...)`` for one forward pass and removed
  when it exits, even on error (TransformerLens removes them in a ``finally``).
* ``attn.hook_result`` needs ``cfg.use_attn_result``: it is switched on for the
  runs that touch that site and switched back afterwards; a model in training
  mode is put in eval mode for the run and back after it.
* Gradients are taken with ``torch.autograd.grad`` of ``metric(logits)`` with
  respect to each site's activation as the model used it (after interventions).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import torch

from interp_widget.errors import BackendError, SiteIndexError
from interp_widget.tracing._common import (
    SitePlan,
    apply_interventions,
    as_token_batch,
    build_plan,
    check_context,
    scalar_metric,
    shape_of,
    str_tokens,
)
from interp_widget.tracing.base import Intervention, Metric, ModelSpec, RunResult, SiteInfo
from interp_widget.tracing.sites import GLOBAL_COMPONENTS, LAYER_COMPONENTS, Site

_MLP_COMPONENTS = ("hook_resid_mid", "mlp.hook_pre", "mlp.hook_post", "hook_mlp_out")


def _is_bridge(model: Any) -> bool:
    return any(c.__name__ == "TransformerBridge" for c in type(model).__mro__)


def _frozen_kv_cache(prefix_kv: Sequence[tuple[torch.Tensor, torch.Tensor]], batch: int, device: Any) -> Any:
    """A frozen TransformerLens key/value cache holding a shared prefix's keys and values."""
    from transformer_lens.cache.key_value_cache import TransformerLensKeyValueCache
    from transformer_lens.cache.key_value_cache_entry import TransformerLensKeyValueCacheEntry

    entries = []
    for keys, values in prefix_kv:
        if keys.shape[0] != batch or values.shape != keys.shape:
            msg = f"prefix_kv keys {tuple(keys.shape)} / values {tuple(values.shape)} do not fit a batch of {batch}"
            raise BackendError(msg)
        entries.append(TransformerLensKeyValueCacheEntry(keys.to(device), values.to(device), frozen=True))
    n_prefix = entries[0].past_keys.shape[1] if entries else 0
    mask = torch.ones(batch, n_prefix, dtype=torch.int, device=device)
    return TransformerLensKeyValueCache(entries, mask, frozen=True)


class _StopRun(Exception):
    """Raised by a hook to end a ``stop_after_capture`` run once every capture is taken."""


def _stopping(hooks: list[tuple[str, Any]], wanted: set[str]) -> list[tuple[str, Any]]:
    left = set(wanted)

    def wrap(name: str, fn: Any) -> Any:
        def hook(tensor: torch.Tensor, hook: Any) -> torch.Tensor:
            out = fn(tensor, hook)
            left.discard(name)
            if not left:
                raise _StopRun
            return out

        return hook

    return [(n, wrap(n, f)) if n in wanted else (n, f) for n, f in hooks]


class TransformerLensBackend:
    """A :class:`~interp_widget.tracing.base.Backend` over a TransformerLens model."""

    def __init__(self, model: Any, *, name: str = "") -> None:
        if not hasattr(model, "hook_dict") or not hasattr(model, "hooks") or not hasattr(model, "cfg"):
            msg = f"{type(model).__name__} is not a TransformerLens model (it needs hook_dict, hooks() and cfg)"
            raise BackendError(msg)
        self.model = model
        cfg = model.cfg
        attn_only = bool(getattr(cfg, "attn_only", False))
        self.spec = ModelSpec(
            architecture="transformer-bridge" if _is_bridge(model) else "hooked-transformer",
            n_layers=int(cfg.n_layers),
            n_heads=int(cfg.n_heads),
            d_model=int(cfg.d_model),
            d_head=int(cfg.d_head),
            n_ctx=int(cfg.n_ctx),
            d_vocab=int(cfg.d_vocab),
            d_mlp=None if attn_only else int(cfg.d_mlp),
            causal=getattr(cfg, "attention_dir", "causal") == "causal",
            name=name or str(getattr(cfg, "model_name", "") or ""),
        )
        self._name = self.spec.name or type(model).__name__
        self._tokenize_lock = threading.Lock()
        self._sites = self._list_sites(attn_only)
        #: whether run() takes start_at_layer= / resid= (HookedTransformer's forward does; see run())
        self.supports_start_at_layer = not _is_bridge(model) and getattr(cfg, "positional_embedding_type",
                                                                          "standard") != "shortformer"
        #: whether run() takes logit_positions= (logits of those positions only: ``[batch, len, d_vocab]``)
        self.supports_logit_positions = self.supports_start_at_layer
        #: whether run() takes stop_after_capture= (end the pass once every capture is taken)
        self.supports_stop_after_capture = True
        #: whether run() takes prefix_kv= (run only the positions after a shared, cached prefix)
        self.supports_prefix_kv = self.supports_start_at_layer

    # --- description ---------------------------------------------------------------------
    def _list_sites(self, attn_only: bool) -> dict[str, Site]:
        hooks = set(self.model.hook_dict)
        sites: dict[str, Site] = {}
        for comp in ("hook_embed", "hook_pos_embed"):
            if comp in hooks:
                sites[comp] = Site(comp)
        for layer in range(self.spec.n_layers):
            for comp in LAYER_COMPONENTS:
                if attn_only and comp in _MLP_COMPONENTS:
                    continue
                s = Site(comp, layer)
                if s.hook_name in hooks:
                    sites[s.hook_name] = s
        for comp in GLOBAL_COMPONENTS[2:]:
            if comp == "logits" or comp in hooks:
                sites[comp] = Site(comp)
        return sites

    @property
    def tokenizer(self) -> Any:
        return getattr(self.model, "tokenizer", None)

    def sites(self) -> list[SiteInfo]:
        return [SiteInfo(s, shape_of(s)) for s in self._sites.values()]  # a few dozen: cheap to rebuild

    # --- tokens ------------------------------------------------------------------------------
    def to_tokens(self, text: str | Sequence[str], *, prepend_bos: bool = True) -> torch.Tensor:
        if self.tokenizer is None:
            msg = f"{self._name} has no tokenizer; pass token ids instead of text"
            raise BackendError(msg)
        # TransformerLens's to_tokens overrides cfg defaults (prepend_bos, padding side) for the call and
        # restores them after: two threads tokenizing at once (a cell and a widget's sweep) would see
        # each other's override, so tokenization takes turns.
        with self._tokenize_lock:
            tokens = self.model.to_tokens(text if isinstance(text, str) else list(text), prepend_bos=prepend_bos,
                                          truncate=False)
        check_context(tokens.shape[-1], self.spec.n_ctx, self._name)
        return tokens

    def to_str_tokens(self, tokens: torch.Tensor | str) -> list[str]:
        if isinstance(tokens, str):
            tokens = self.to_tokens(tokens)
        return str_tokens(self.tokenizer, as_token_batch(tokens))

    # --- running -----------------------------------------------------------------------------
    def run(
        self,
        tokens: torch.Tensor,
        *,
        capture: Sequence[Site | str] = (),
        interventions: Sequence[Intervention] = (),
        grads: Sequence[Site | str] = (),
        metric: Metric | None = None,
        attention_mask: torch.Tensor | None = None,
        start_at_layer: int | None = None,
        resid: torch.Tensor | None = None,
        logit_positions: Sequence[int] | None = None,
        stop_after_capture: bool = False,
        prefix_kv: Sequence[tuple[torch.Tensor, torch.Tensor]] | None = None,
    ) -> RunResult:
        """See :meth:`Backend.run`. Extension: ``start_at_layer=L, resid=r`` runs blocks ``L..`` on ``r``
        (the value of ``blocks.L.hook_resid_pre``, ``[batch, pos, d_model]``) instead of embedding ``tokens``
        (HookedTransformer only: ``supports_start_at_layer``); sites below layer ``L`` are then unavailable.
        ``logit_positions=[p, ...]`` returns the logits of those positions only (``supports_logit_positions``):
        the unembedding of the other positions is skipped, and ``ln_final`` / ``logits`` sites see only them.
        ``stop_after_capture=True`` ends the pass as soon as every ``capture`` is taken (no logits, no metric).
        ``prefix_kv=[(keys, values) per layer]`` (each ``[batch, P, head, d_head]``, a shared prefix's
        ``hook_k`` / ``hook_v``) with ``start_at_layer`` runs only the positions after the prefix: ``tokens``
        and ``resid`` hold the suffix, every site sees suffix positions (patterns: ``[.., suffix, P + suffix]``).
        """
        tokens = as_token_batch(tokens)
        check_context(tokens.shape[1], self.spec.n_ctx, self._name)
        plan = build_plan(spec=self.spec, known=self._sites, model_name=self._name, batch=tokens.shape[0],
                          n_pos=tokens.shape[1], capture=capture, interventions=interventions, grads=grads,
                          metric=metric)
        if start_at_layer is not None:
            self._check_start(start_at_layer, resid, tokens, plan)
        elif prefix_kv is not None:
            msg = "prefix_kv needs start_at_layer= and resid= (the residual stream of the positions after the prefix)"
            raise BackendError(msg)
        grad_names = [Site.parse(g).with_().hook_name for g in grads]
        cache: dict[str, torch.Tensor] = {}
        graph: dict[str, torch.Tensor] = {}
        fwd_hooks = [(name, self._hook(p, cache, graph)) for name, p in plan.items() if name != "logits"]
        if stop_after_capture:
            if grads or metric is not None or "logits" in plan or not any(p.capture for p in plan.values()):
                msg = "stop_after_capture needs captures (not logits) and no grads or metric"
                raise BackendError(msg)
            fwd_hooks = _stopping(fwd_hooks, {n for n, p in plan.items() if p.capture})
        model = self.model
        restore: list[Callable[[], None]] = []
        try:
            if any(p.site.component == "attn.hook_result" for p in plan.values()) and not model.cfg.use_attn_result:
                model.set_use_attn_result(True)
                restore.append(lambda: model.set_use_attn_result(False))
            if model.training:
                model.eval()
                restore.append(lambda: model.train(True))
            device = getattr(model.cfg, "device", None)
            tokens = tokens.to(device) if device is not None else tokens
            kwargs: dict[str, Any] = {}
            if attention_mask is not None:
                kwargs["attention_mask"] = attention_mask.to(tokens.device)
            with torch.set_grad_enabled(bool(grad_names)), model.hooks(fwd_hooks=fwd_hooks):
                if logit_positions is not None:  # extension: unembed only these positions (analysis sweeps)
                    kwargs["stop_at_layer"] = self.spec.n_layers
                if prefix_kv is not None:
                    kwargs["past_kv_cache"] = _frozen_kv_cache(prefix_kv, tokens.shape[0], tokens.device)
                try:
                    if start_at_layer is not None and resid is not None:
                        logits = model(resid.to(tokens.device), start_at_layer=start_at_layer, tokens=tokens,
                                       **kwargs)
                    else:
                        logits = model(tokens, **kwargs)
                except _StopRun:
                    return RunResult(logits=None, cache=cache)
                if logit_positions is not None:
                    logits = self._unembed(logits[:, list(logit_positions)])
                if "logits" in plan:
                    logits = self._hook(plan["logits"], cache, graph)(logits, None)
                value = None
                if metric is not None:
                    m = scalar_metric(metric(logits))
                    value = float(m.detach())
                    if grad_names:
                        tensors = [graph[n] for n in grad_names]
                        got = torch.autograd.grad(m, tensors, allow_unused=True)
                        out_grads = {n: (g if g is not None else torch.zeros_like(t)).detach()
                                     for n, g, t in zip(grad_names, got, tensors, strict=True)}
        finally:
            for undo in reversed(restore):
                undo()
        return RunResult(logits=logits.detach(), cache=cache, grads=out_grads if grad_names else {}, metric=value)

    def _unembed(self, resid: torch.Tensor) -> torch.Tensor:
        """``ln_final`` + ``unembed`` (+ soft cap) of a final residual stream, as the model's forward does."""
        model = self.model
        if model.cfg.normalization_type is not None:
            resid = model.ln_final(resid)
        # resid @ W_U directly: TransformerLens's Unembed copies W_U.T to a contiguous tensor on every call
        logits = resid @ model.unembed.W_U + model.unembed.b_U
        cap = getattr(model.cfg, "output_logits_soft_cap", -1.0)
        return cap * torch.tanh(logits / cap) if cap and cap > 0 else logits

    def _check_start(self, layer: int, resid: torch.Tensor | None, tokens: torch.Tensor,
                     plan: dict[str, SitePlan]) -> None:
        if not self.supports_start_at_layer:
            msg = f"{self._name} ({self.spec.architecture}) cannot start a run at a layer"
            raise BackendError(msg)
        if not 0 <= layer < self.spec.n_layers:
            msg = f"start_at_layer {layer} is out of range: {self._name} has {self.spec.n_layers} layers"
            raise SiteIndexError(msg)
        want = (tokens.shape[0], tokens.shape[1], self.spec.d_model)
        if resid is None or tuple(resid.shape) != want:
            got = None if resid is None else tuple(resid.shape)
            msg = f"start_at_layer={layer} needs resid= the residual stream before that layer, shape {want}; got {got}"
            raise BackendError(msg)
        for p in plan.values():
            below = p.site.layer is not None and p.site.layer < layer
            if below or p.site.component in ("hook_embed", "hook_pos_embed"):
                msg = f"{p.name} is computed before layer {layer}, where this run starts"
                raise BackendError(msg)

    @staticmethod
    def _hook(p: SitePlan, cache: dict[str, torch.Tensor],
              graph: dict[str, torch.Tensor]) -> Callable[[torch.Tensor, Any], torch.Tensor]:
        def hook(tensor: torch.Tensor, hook: Any) -> torch.Tensor:
            out = apply_interventions(tensor, p.interventions) if p.interventions else tensor
            if p.grad:
                if not out.requires_grad:
                    out = out.detach().requires_grad_(True)
                graph[p.name] = out
            if p.capture:
                cache[p.name] = out.detach().clone()
            return out

        return hook
