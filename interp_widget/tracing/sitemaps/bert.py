"""Site map for Hugging Face BERT (``BertModel`` and models built on it, e.g. MiniLM; transformers 5).

Sites follow TransformerLens's ``HookedEncoder`` (a post-LayerNorm block):
``resid_mid = resid_pre + attn_out`` and ``resid_post = LN1(resid_mid) + mlp_out``
are the sums *before* each LayerNorm, and ``resid_pre`` of layer L is the
layer's (normalized) input, so ``resid_pre`` of layer L equals Hugging Face's
``hidden_states[L]``. (``L = layer``, ``x = encoder.layer.{L}``.)

==================================  ==============================================================
TransformerLens site                where it is in the HF model
==================================  ==============================================================
hook_embed / hook_pos_embed         ``embeddings.word_embeddings`` / ``position_embeddings`` output
blocks.L.hook_resid_pre             ``x`` input
blocks.L.attn.hook_q / k / v        ``x.attention.self.query`` / ``key`` / ``value`` output, in heads
blocks.L.attn.hook_attn_scores      input of the softmax inside the eager attention function
blocks.L.attn.hook_pattern          output of that softmax
blocks.L.attn.hook_z                ``x.attention.output.dense`` input, in heads
blocks.L.attn.hook_result           ``z[h] @ W_O[h]`` (written back as a change to that dense output)
blocks.L.hook_attn_out              ``x.attention.output.dense`` output
blocks.L.hook_resid_mid             ``x.attention.output.LayerNorm`` input
blocks.L.mlp.hook_pre / hook_post   ``x.intermediate.dense`` output / ``intermediate_act_fn`` output
blocks.L.hook_mlp_out               ``x.output.dense`` output
blocks.L.hook_resid_post            ``x.output.LayerNorm`` input
logits                              ``cls`` output (``BertForMaskedLM`` only)
==================================  ==============================================================

A plain ``BertModel`` has no logits: ``RunResult.logits`` is ``None`` and a
metric receives the last hidden state.
"""

from __future__ import annotations

from typing import Any

from interp_widget.tracing.base import ModelSpec
from interp_widget.tracing.sitemaps._base import BatchExpanded, Binding, HeadResult, Heads, MaskedScores, OpRef, Point
from interp_widget.tracing.sitemaps.registry import SiteMap, find_base


def match(model: Any) -> SiteMap | None:
    base = find_base(model, "BertModel")
    if base is None:
        return None
    base_path, bert = base
    cfg = bert.config
    n_layers, n_heads, d_model = cfg.num_hidden_layers, cfg.num_attention_heads, cfg.hidden_size
    p = f"{base_path}." if base_path else ""
    has_head = base_path == "bert" and type(model).__name__ == "BertForMaskedLM"
    spec = ModelSpec(
        architecture="bert",
        n_layers=n_layers,
        n_heads=n_heads,
        d_model=d_model,
        d_head=d_model // n_heads,
        n_ctx=cfg.max_position_embeddings,
        d_vocab=cfg.vocab_size,
        d_mlp=cfg.intermediate_size,
        causal=bool(getattr(cfg, "is_decoder", False)),
        name=str(getattr(cfg, "name_or_path", "") or "bert"),
    )
    softmax = (OpRef("attention_interface", r"\battention_interface\("), OpRef("nn_functional_softmax"))
    emb = f"{p}embeddings"
    b: dict[str, Binding] = {
        "hook_embed": Binding(Point(f"{emb}.word_embeddings", "output")),
        "hook_pos_embed": Binding(Point(f"{emb}.position_embeddings", "output"), BatchExpanded()),
    }
    for layer in range(n_layers):
        x = f"{p}encoder.layer.{layer}"
        k = f"blocks.{layer}."
        b[k + "hook_resid_pre"] = Binding(Point(x, "input"))
        for name, module in (("q", "query"), ("k", "key"), ("v", "value")):
            b[f"{k}attn.hook_{name}"] = Binding(Point(f"{x}.attention.self.{module}", "output"), Heads(n_heads))
        after_v = (f"{x}.attention.self.value", "post")
        attn = f"{x}.attention.self"
        b[k + "attn.hook_attn_scores"] = Binding(Point(attn, "input", softmax, after_v, 1), MaskedScores())
        b[k + "attn.hook_pattern"] = Binding(Point(attn, "output", softmax, after_v, 2))
        dense = f"{x}.attention.output.dense"
        z = Point(dense, "input")
        b[k + "attn.hook_z"] = Binding(z, Heads(n_heads))
        b[k + "attn.hook_result"] = Binding(Point(dense, "output"), HeadResult(z, f"{dense}.weight", n_heads, False))
        b[k + "hook_attn_out"] = Binding(Point(dense, "output"))
        b[k + "hook_resid_mid"] = Binding(Point(f"{x}.attention.output.LayerNorm", "input"))
        b[k + "mlp.hook_pre"] = Binding(Point(f"{x}.intermediate.dense", "output"))
        b[k + "mlp.hook_post"] = Binding(Point(f"{x}.intermediate.intermediate_act_fn", "output"))
        b[k + "hook_mlp_out"] = Binding(Point(f"{x}.output.dense", "output"))
        b[k + "hook_resid_post"] = Binding(Point(f"{x}.output.LayerNorm", "input"))
    if has_head:
        b["logits"] = Binding(Point("cls", "output"))
    return SiteMap(spec=spec, bindings=b)
