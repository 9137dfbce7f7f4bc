"""Where the edge graph's senders and receivers are in a model: one adapter per backend.

An adapter runs one forward pass and calls back into :class:`EdgeHooks` at every sender output and
every receiver input, in forward order; a receiver callback returns the (possibly edited) input.

* :class:`TLAdapter`: a TransformerLens ``HookedTransformer`` through its split-input hook points
  (``blocks.L.hook_q_input`` etc. are ``[batch, pos, head, d_model]``, one copy of the residual stream per
  head and per q/k/v; ``hook_mlp_in``; ``attn.hook_result``), switched on for the run and restored.
* :class:`GPT2NNsightAdapter`: a Hugging Face GPT-2 through one nnsight trace. Its q, k and v all come
  from one ``ln_1`` output through one fused ``c_attn``, so a per-head, per-target edit replaces
  ``c_attn``'s output with a recomputation from the block input: ``ln_1`` and ``c_attn``'s slice applied
  to each head's own copy of the residual stream (exact: the same weights, per head). Head results are
  ``z[h] @ W_O[h]`` read from ``c_proj``'s input; the MLP input is ``ln_2``'s input, the logits' input is
  ``ln_f``'s input and the input embeddings are ``drop``'s output.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

from interp_widget.errors import BackendError

if TYPE_CHECKING:
    import torch

    from interp_widget.models.model import Model

TARGETS = ("q", "k", "v")


class EdgeHooks(Protocol):
    """The callbacks of one run (see :meth:`EdgeRunner.run`)."""

    capture: bool  # sender outputs are wanted (capture or patching)
    edit: bool  # receiver inputs may change or need gradients

    def input(self, x: torch.Tensor) -> torch.Tensor: ...
    def qkv(self, layer: int, t: int, x: torch.Tensor) -> torch.Tensor: ...
    def head_results(self, layer: int, x: torch.Tensor) -> None: ...
    def mlp_in(self, layer: int, x: torch.Tensor) -> torch.Tensor: ...
    def mlp_out(self, layer: int, x: torch.Tensor) -> None: ...
    def final(self, x: torch.Tensor) -> torch.Tensor: ...


class TLAdapter:
    def __init__(self, raw: Any, n_layers: int, has_mlp: bool) -> None:
        self.raw, self.n_layers, self.has_mlp = raw, n_layers, has_mlp

    @contextmanager
    def _split(self) -> Iterator[None]:
        raw = self.raw
        cfg = raw.cfg
        old = (cfg.use_split_qkv_input, cfg.use_attn_result, getattr(cfg, "use_hook_mlp_in", False))
        try:
            raw.set_use_split_qkv_input(True)
            raw.set_use_attn_result(True)
            if self.has_mlp:
                raw.set_use_hook_mlp_in(True)
            yield
        finally:
            raw.set_use_split_qkv_input(old[0])
            raw.set_use_attn_result(old[1])
            if self.has_mlp:
                raw.set_use_hook_mlp_in(old[2])

    def forward(self, toks: torch.Tensor, cb: EdgeHooks, positions: list[int] | None) -> torch.Tensor:
        hooks: list[tuple[str, Callable[..., Any]]] = [("blocks.0.hook_resid_pre", lambda x, hook: cb.input(x))]
        for layer in range(self.n_layers):
            for t_i, t in enumerate(TARGETS):
                hooks.append((f"blocks.{layer}.hook_{t}_input",
                              lambda x, hook, layer=layer, t_i=t_i: cb.qkv(layer, t_i, x)))
            if cb.capture:
                hooks.append((f"blocks.{layer}.attn.hook_result",
                              lambda x, hook, layer=layer: cb.head_results(layer, x)))
            if self.has_mlp:
                hooks.append((f"blocks.{layer}.hook_mlp_in", lambda x, hook, layer=layer: cb.mlp_in(layer, x)))
                if cb.capture:
                    hooks.append((f"blocks.{layer}.hook_mlp_out",
                                  lambda x, hook, layer=layer: cb.mlp_out(layer, x)))
        hooks.append((f"blocks.{self.n_layers - 1}.hook_resid_post", lambda x, hook: cb.final(x)))
        raw = self.raw
        with self._split(), raw.hooks(fwd_hooks=hooks):
            if positions is None:
                return raw(toks)
            # the final LayerNorm is per position: slicing before it is exact
            resid = raw(toks, stop_at_layer=self.n_layers)[:, positions]
            if raw.cfg.normalization_type is not None:
                resid = raw.ln_final(resid)
            return raw.unembed(resid)


class GPT2NNsightAdapter:
    def __init__(self, backend: Any, n_layers: int, n_heads: int) -> None:
        self.root = backend.root
        self.hf = backend.torch_model
        self.n_layers, self.n_heads = n_layers, n_heads

    def _qkv(self, layer: int, resid: torch.Tensor, cb: EdgeHooks) -> torch.Tensor:
        """``c_attn``'s output recomputed per head and target from each one's (edited) residual copy."""
        import torch

        blk = self.hf.transformer.h[layer]
        ln, w, b = blk.ln_1, blk.attn.c_attn.weight, blk.attn.c_attn.bias  # Conv1D: x @ w + b, w [d, 3d]
        h = self.n_heads
        d = resid.shape[-1]
        outs = []
        for t in range(3):
            x = cb.qkv(layer, t, resid[:, :, None, :].expand(-1, -1, h, -1))
            y = torch.nn.functional.layer_norm(x, (d,), ln.weight, ln.bias, ln.eps)
            wt = w[:, t * d:(t + 1) * d].reshape(d, h, d // h)
            out = torch.einsum("bphd,dhe->bphe", y, wt) + b[t * d:(t + 1) * d].reshape(h, d // h)
            outs.append(out.reshape(*out.shape[:2], d))
        return torch.cat(outs, -1)

    def forward(self, toks: torch.Tensor, cb: EdgeHooks, positions: list[int] | None) -> torch.Tensor:
        import torch

        m = self.root
        h = self.n_heads
        box: dict[str, Any] = {}
        with m.trace(toks):
            tr = m.transformer
            tr.drop.output = cb.input(tr.drop.output)
            for layer in range(self.n_layers):
                blk = tr.h[layer]
                if cb.edit:
                    resid = blk.ln_1.input
                    blk.attn.c_attn.output = self._qkv(layer, resid, cb)
                if cb.capture:
                    z = blk.attn.c_proj.input
                    w_o = self.hf.transformer.h[layer].attn.c_proj.weight  # [h * d_head, d]
                    zh = z.reshape(*z.shape[:2], h, -1)
                    cb.head_results(layer, torch.einsum("bphe,hed->bphd", zh, w_o.reshape(h, -1, w_o.shape[-1])))
                if cb.edit:  # a copy: the residual stream itself also flows past the MLP
                    blk.ln_2.input = cb.mlp_in(layer, blk.ln_2.input.clone())
                if cb.capture:
                    cb.mlp_out(layer, blk.mlp.output)
            tr.ln_f.input = cb.final(tr.ln_f.input)
            box["logits"] = m.lm_head.output
        logits = box["logits"]
        return logits if positions is None else logits[:, positions]


def adapter_for(model: Model) -> TLAdapter | GPT2NNsightAdapter:
    """The adapter for ``model``, or a :class:`BackendError` naming what circuits support."""
    spec = model.spec
    raw = getattr(model.backend, "model", None) or model.raw
    if (spec.architecture == "hooked-transformer" and raw is not None and hasattr(raw, "set_use_split_qkv_input")
            and hasattr(raw, "blocks") and getattr(raw, "cfg", None) is not None):
        return TLAdapter(raw, spec.n_layers, spec.d_mlp is not None)
    root = getattr(model.backend, "root", None)
    hf = getattr(model.backend, "torch_model", None)
    if getattr(model.backend, "remote", False):
        msg = (f"circuit discovery runs locally only: {model.name} runs on NDIF ({type(model.backend).__name__}); "
               "the edge runs keep kernel-side buffers that every layer's callbacks read and write, which a remote "
               "trace cannot share. "
               "Load the weights locally (iw.load(name)) to discover its circuits")
        raise BackendError(msg)
    if (root is not None and spec.architecture == "gpt2" and hf is not None and hasattr(hf, "lm_head")
            and hasattr(hf, "transformer")):
        cfg = hf.config
        if getattr(cfg, "add_cross_attention", False) or getattr(cfg, "reorder_and_upcast_attn", False):
            msg = ("circuit discovery through nnsight supports plain GPT-2 attention; this GPT-2 has "
                   "cross-attention or reorder_and_upcast_attn")
            raise BackendError(msg)
        return GPT2NNsightAdapter(model.backend, spec.n_layers, spec.n_heads)
    msg = (f"circuit discovery supports TransformerLens HookedTransformer models and Hugging Face GPT-2 "
           f"(GPT2LMHeadModel) through nnsight; {model.name} is a {spec.architecture!r} model on "
           f"{type(model.backend).__name__} over {type(raw).__name__}: per-head q/k/v inputs are not mapped for it. "
           "Load the weights into a HookedTransformer (iw.load accepts one)")
    raise BackendError(msg)
