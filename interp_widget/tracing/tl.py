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
        self._sites = self._list_sites(attn_only)
        #: whether run() takes start_at_layer= / resid= (HookedTransformer's forward does; see run())
        self.supports_start_at_layer = not _is_bridge(model) and getattr(cfg, "positional_embedding_type",
                                                                          "standard") != "shortformer"

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
    ) -> RunResult:
        """See :meth:`Backend.run`. Extension: ``start_at_layer=L, resid=r`` runs blocks ``L..`` on ``r``
        (the value of ``blocks.L.hook_resid_pre``, ``[batch, pos, d_model]``) instead of embedding ``tokens``
        (HookedTransformer only: ``supports_start_at_layer``); sites below layer ``L`` are then unavailable.
        """
        tokens = as_token_batch(tokens)
        check_context(tokens.shape[1], self.spec.n_ctx, self._name)
        plan = build_plan(spec=self.spec, known=self._sites, model_name=self._name, batch=tokens.shape[0],
                          n_pos=tokens.shape[1], capture=capture, interventions=interventions, grads=grads,
                          metric=metric)
        if start_at_layer is not None:
            self._check_start(start_at_layer, resid, tokens, plan)
        grad_names = [Site.parse(g).with_().hook_name for g in grads]
        cache: dict[str, torch.Tensor] = {}
        graph: dict[str, torch.Tensor] = {}
        fwd_hooks = [(name, self._hook(p, cache, graph)) for name, p in plan.items() if name != "logits"]
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
                if start_at_layer is not None and resid is not None:
                    logits = model(resid.to(tokens.device), start_at_layer=start_at_layer, tokens=tokens, **kwargs)
                else:
                    logits = model(tokens, **kwargs)
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
