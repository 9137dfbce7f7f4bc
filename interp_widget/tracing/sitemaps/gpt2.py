"""Site map for Hugging Face GPT-2 (``GPT2Model``, ``GPT2LMHeadModel``; transformers 5).

==================================  ==============================================================
TransformerLens site                where it is in the HF model (``h = transformer.h.{L}``)
==================================  ==============================================================
hook_embed / hook_pos_embed         ``wte`` / ``wpe`` output
blocks.L.hook_resid_pre             ``h`` input
blocks.L.attn.hook_q / k / v        ``h.attn.c_attn`` output, split in three, then into heads
blocks.L.attn.hook_attn_scores      input of the softmax inside the eager attention function
blocks.L.attn.hook_pattern          output of that softmax
blocks.L.attn.hook_z                ``h.attn.c_proj`` input, split into heads
blocks.L.attn.hook_result           ``z[h] @ W_O[h]`` (written back as a change to ``c_proj`` output)
blocks.L.hook_attn_out              ``h.attn.c_proj`` output
blocks.L.hook_resid_mid             the ``hidden_states = attn_output + residual`` assignment in ``h``
blocks.L.mlp.hook_pre / hook_post   ``h.mlp.c_fc`` output / ``h.mlp.act`` output
blocks.L.hook_mlp_out               ``h.mlp`` output
blocks.L.hook_resid_post            ``h`` output
ln_final.hook_normalized            ``ln_f``'s normalized input (before its weight and bias)
logits                              ``lm_head`` output (GPT2LMHeadModel only)
==================================  ==============================================================

The attention pattern lives inside a function, not a module: the backend runs
the model with ``attn_implementation="eager"`` and reaches the softmax through
nnsight's ``.source`` (the ``attention_interface(...)`` call in
``GPT2Attention.forward``, then ``nn.functional.softmax`` inside it).
"""

from __future__ import annotations

from typing import Any

from interp_widget.tracing.base import ModelSpec
from interp_widget.tracing.sitemaps._base import (
    BatchExpanded,
    Binding,
    FusedHeads,
    HeadResult,
    Heads,
    LayerNormNormalized,
    MaskedScores,
    OpRef,
    Point,
)
from interp_widget.tracing.sitemaps.registry import SiteMap, find_base


def match(model: Any) -> SiteMap | None:
    base = find_base(model, "GPT2Model")
    if base is None:
        return None
    base_path, gpt = base
    cfg = gpt.config
    n_layers, n_heads, d_model = cfg.n_layer, cfg.n_head, cfg.n_embd
    p = f"{base_path}." if base_path else ""
    has_head = base_path == "transformer" and hasattr(model, "lm_head")
    spec = ModelSpec(
        architecture="gpt2",
        n_layers=n_layers,
        n_heads=n_heads,
        d_model=d_model,
        d_head=d_model // n_heads,
        n_ctx=cfg.n_positions,
        d_vocab=cfg.vocab_size,
        d_mlp=cfg.n_inner or 4 * d_model,
        causal=True,
        name=str(getattr(cfg, "name_or_path", "") or "gpt2"),
    )
    if getattr(cfg, "reorder_and_upcast_attn", False):
        attention = OpRef("self__upcast_and_reordered_attn")
    else:
        attention = OpRef("attention_interface", r"\battention_interface\(")
    softmax = (attention, OpRef("nn_functional_softmax"))

    b: dict[str, Binding] = {
        "hook_embed": Binding(Point(f"{p}wte", "output")),
        "hook_pos_embed": Binding(Point(f"{p}wpe", "output"), BatchExpanded()),
    }
    for layer in range(n_layers):
        h = f"{p}h.{layer}"
        k = f"blocks.{layer}."
        b[k + "hook_resid_pre"] = Binding(Point(h, "input"))
        qkv = Point(f"{h}.attn.c_attn", "output")
        for i, name in enumerate("qkv"):
            b[f"{k}attn.hook_{name}"] = Binding(qkv, FusedHeads(i, 3, n_heads))
        after_qkv = (f"{h}.attn.c_attn", "post")
        b[k + "attn.hook_attn_scores"] = Binding(Point(f"{h}.attn", "input", softmax, after_qkv, 1), MaskedScores())
        b[k + "attn.hook_pattern"] = Binding(Point(f"{h}.attn", "output", softmax, after_qkv, 2))
        z = Point(f"{h}.attn.c_proj", "input")
        b[k + "attn.hook_z"] = Binding(z, Heads(n_heads))
        proj = Point(f"{h}.attn.c_proj", "output")
        b[k + "attn.hook_result"] = Binding(proj, HeadResult(z, f"{h}.attn.c_proj.weight", n_heads, conv1d=True))
        b[k + "hook_attn_out"] = Binding(proj)
        mid = OpRef("hidden_states", r"hidden_states\s*=\s*attn_output\s*\+\s*residual")
        b[k + "hook_resid_mid"] = Binding(Point(h, "output", (mid,), (f"{h}.attn", "post"), 1))
        b[k + "mlp.hook_pre"] = Binding(Point(f"{h}.mlp.c_fc", "output"))
        b[k + "mlp.hook_post"] = Binding(Point(f"{h}.mlp.act", "output"))
        b[k + "hook_mlp_out"] = Binding(Point(f"{h}.mlp", "output"))
        b[k + "hook_resid_post"] = Binding(Point(h, "output"))
    ln_in = Point(f"{p}ln_f", "input")
    b["ln_final.hook_normalized"] = Binding(
        Point(f"{p}ln_f", "output"),
        LayerNormNormalized(ln_in, f"{p}ln_f.weight", f"{p}ln_f.bias", float(cfg.layer_norm_epsilon)),
    )
    if has_head:
        b["logits"] = Binding(Point("lm_head", "output"))
    return SiteMap(spec=spec, bindings=b)
