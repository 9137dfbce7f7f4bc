"""The nnsight backend against Hugging Face's own outputs, torch hooks and autograd."""

from __future__ import annotations

import _tiny_models as tiny
import pytest
import torch

from interp_widget.errors import (
    BackendError,
    ContextLengthError,
    InterventionError,
    SiteIndexError,
    UnknownSiteError,
)
from interp_widget.models.model import Model
from interp_widget.tracing import interventions as iv
from interp_widget.tracing.base import Intervention
from interp_widget.tracing.nnsight_backend import NNsightBackend
from interp_widget.tracing.sites import Site


@pytest.fixture(scope="module")
def gpt2() -> Model:
    return Model(NNsightBackend(tiny.hf_gpt2(), tokenizer=tiny.tokenizer()))


def _hf_reference(model: torch.nn.Module, tokens: torch.Tensor) -> object:
    with torch.no_grad():
        return model(tokens, output_hidden_states=True, output_attentions=True)


def test_gpt2_matches_hugging_face_outputs(gpt2: Model) -> None:
    tokens = gpt2.to_tokens([tiny.text(9, seed=1), tiny.text(9, seed=2)])
    names = [f"blocks.{i}.hook_resid_pre" for i in range(2)] + [f"blocks.{i}.attn.hook_pattern" for i in range(2)]
    run = gpt2.run(tokens, capture=names)
    ref = _hf_reference(tiny.hf_gpt2(), tokens)
    assert run.logits is not None and torch.allclose(run.logits, ref.logits, atol=1e-5)
    for i in range(2):
        assert torch.allclose(run.cache[f"blocks.{i}.hook_resid_pre"], ref.hidden_states[i], atol=1e-5)
        assert torch.allclose(run.cache[f"blocks.{i}.attn.hook_pattern"], ref.attentions[i], atol=1e-6)


def test_module_sites_capture_and_intervene_like_torch_hooks(gpt2: Model) -> None:
    tokens = gpt2.to_tokens(tiny.text(7))
    site = "module:transformer.h.0.mlp.c_fc"
    assert site in {i.site.hook_name for i in gpt2.sites()}
    run = gpt2.run(tokens, capture=[site], interventions=[iv.scale("module:transformer.h.1.ln_2", 0.0, position=2)])
    ref_model, seen = tiny.hf_gpt2(), {}

    def grab(module: torch.nn.Module, args: object, out: torch.Tensor) -> None:
        seen["fc"] = out.detach().clone()

    def zero_pos2(module: torch.nn.Module, args: object, out: torch.Tensor) -> torch.Tensor:
        out = out.clone()
        out[:, 2] = 0
        return out

    handles = [ref_model.transformer.h[0].mlp.c_fc.register_forward_hook(grab),
               ref_model.transformer.h[1].ln_2.register_forward_hook(zero_pos2)]
    try:
        with torch.no_grad():
            ref = ref_model(tokens).logits
    finally:
        for h in handles:
            h.remove()
    assert torch.allclose(run.cache[site], seen["fc"], atol=1e-6)
    assert run.logits is not None and torch.allclose(run.logits, ref, atol=1e-5)
    # the same site through its TransformerLens name (mlp.hook_pre is c_fc's output)
    assert torch.allclose(gpt2.run(tokens, capture=["blocks.0.mlp.hook_pre"]).cache["blocks.0.mlp.hook_pre"],
                          seen["fc"], atol=1e-6)


def test_gradients_match_autograd_on_the_plain_model(gpt2: Model) -> None:
    tokens = gpt2.to_tokens(tiny.text(6))
    run = gpt2.run(tokens, grads=["blocks.1.hook_resid_pre", "hook_embed"],
                   metric=lambda logits: logits[0, -1].logsumexp(-1))
    ref_model, acts = tiny.hf_gpt2(), {}

    def keep(name: str):
        def hook(module: torch.nn.Module, args: object, out: torch.Tensor) -> None:
            out.retain_grad()
            acts[name] = out
        return hook

    def keep_input(module: torch.nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        args[0].retain_grad()
        acts["resid"] = args[0]

    handles = [ref_model.transformer.wte.register_forward_hook(keep("embed")),
               ref_model.transformer.h[1].register_forward_pre_hook(keep_input)]
    try:
        ref_model(tokens).logits[0, -1].logsumexp(-1).backward()
    finally:
        for h in handles:
            h.remove()
    assert torch.allclose(run.grads["blocks.1.hook_resid_pre"], acts["resid"].grad, atol=1e-5)
    assert torch.allclose(run.grads["hook_embed"], acts["embed"].grad, atol=1e-5)
    assert run.metric is not None


def test_run_state_is_restored_even_after_an_error() -> None:
    model = tiny.hf_gpt2()
    model.set_attn_implementation("sdpa")
    model.train()
    backend = NNsightBackend(model, tokenizer=tiny.tokenizer())
    tokens = backend.to_tokens(tiny.text(5))
    before = backend.run(tokens)
    assert model.config._attn_implementation == "sdpa" and model.training
    bad = Intervention(Site("attn.hook_z", 0, head=1), "set", torch.ones(3, 3))
    with pytest.raises(InterventionError, match="does not fit"):
        backend.run(tokens, interventions=[bad])
    assert model.config._attn_implementation == "sdpa" and model.training
    after = backend.run(tokens, capture=["blocks.0.attn.hook_pattern"])
    assert before.logits is not None and after.logits is not None
    assert torch.equal(before.logits, after.logits)  # nothing from the failed run lingers
    model.eval()
    with torch.no_grad():  # and outside a trace the model is the plain model again
        assert torch.allclose(model(tokens).logits, after.logits, atol=1e-5)


def test_language_model_wrapper_and_errors(gpt2: Model) -> None:
    from nnsight import LanguageModel

    lm = LanguageModel(tiny.hf_gpt2(), tokenizer=tiny.tokenizer())
    model = Model(NNsightBackend(lm))
    tokens = model.to_tokens(tiny.text(8))
    a = model.run(tokens, capture=["blocks.1.attn.hook_z"])
    b = gpt2.run(tokens, capture=["blocks.1.attn.hook_z"])
    assert torch.allclose(a.cache["blocks.1.attn.hook_z"], b.cache["blocks.1.attn.hook_z"], atol=1e-6)
    with pytest.raises(UnknownSiteError, match="no site"):
        model.run(tokens, capture=["module:transformer.h.7"])
    with pytest.raises(SiteIndexError, match=r"has 4 heads per layer \(0..3\)"):
        model.run(tokens, interventions=[iv.zero("blocks.0.attn.hook_z", head=4)])
    with pytest.raises(SiteIndexError, match=r"2 layers \(0..1\)"):
        model.backend.run(tokens, capture=["blocks.2.hook_resid_pre"])
    with pytest.raises(SiteIndexError, match=r"has 9 positions \(0..8\)"):
        model.run(tokens, interventions=[iv.zero("blocks.0.hook_resid_pre", position=9)])
    with pytest.raises(SiteIndexError, match="row 3"):
        model.run(tokens, interventions=[iv.zero("blocks.0.hook_resid_pre", rows=[3])])
    with pytest.raises(ContextLengthError, match="context window of 32"):
        model.to_tokens(tiny.text(40))
    with pytest.raises(ContextLengthError):
        model.run(torch.zeros(1, 33, dtype=torch.long))
    with pytest.raises(BackendError, match="metric"):
        model.run(tokens, grads=["logits"])


def test_bert_matches_hugging_face_outputs() -> None:
    model = tiny.hf_bert()
    backend = NNsightBackend(model)
    assert backend.spec.architecture == "bert" and not backend.spec.causal
    tokens = torch.randint(0, tiny.D_VOCAB, (2, 10), generator=torch.Generator().manual_seed(0))
    names = [i.site.hook_name for i in backend.sites() if not i.site.is_module]
    run = backend.run(tokens, capture=names)
    ref = _hf_reference(tiny.hf_bert(), tokens)
    assert run.logits is None
    for layer in range(tiny.N_LAYERS):
        assert torch.allclose(run.cache[f"blocks.{layer}.attn.hook_pattern"], ref.attentions[layer], atol=1e-6)
        assert torch.allclose(run.cache[f"blocks.{layer}.hook_resid_pre"], ref.hidden_states[layer], atol=1e-6)
        # TransformerLens's HookedEncoder sums: resid_mid = resid_pre + attn_out; result heads sum to attn_out - b_O
        c = run.cache
        k = f"blocks.{layer}."
        assert torch.allclose(c[k + "hook_resid_mid"], c[k + "hook_resid_pre"] + c[k + "hook_attn_out"], atol=1e-5)
        bias = model.encoder.layer[layer].attention.output.dense.bias
        assert torch.allclose(c[k + "attn.hook_result"].sum(-2) + bias, c[k + "hook_attn_out"], atol=1e-5)
        assert torch.allclose(c[k + "attn.hook_pattern"], c[k + "attn.hook_attn_scores"].softmax(-1), atol=1e-6)
    # an intervention through the whole encoder: zeroing every head's pattern row 0 of layer 1 changes the output
    zeroed = backend.run(tokens, interventions=[iv.zero("blocks.1.attn.hook_pattern", position=0)],
                         capture=["blocks.1.hook_attn_out"])
    z = zeroed.cache["blocks.1.hook_attn_out"][:, 0]
    assert torch.allclose(z, model.encoder.layer[1].attention.output.dense.bias.expand_as(z), atol=1e-6)


def test_minilm_patterns_and_residuals_match_hugging_face() -> None:
    from interp_widget.zoo.minilm import load

    model = load()
    raw = model.raw
    tokens = model.to_tokens(["The cat sat on the mat.", "Attention is all you need"])
    assert model.spec.n_layers == 6 and model.spec.n_heads == 12 and model.spec.d_model == 384
    assert model.to_str_tokens(tokens[:1])[0] == "[CLS]"
    mask = (tokens != model.tokenizer.pad_token_id).long()
    names = [f"blocks.{i}.attn.hook_pattern" for i in range(6)] + [f"blocks.{i}.hook_resid_pre" for i in range(6)]
    run = model.backend.run(tokens, capture=names, attention_mask=mask)
    with torch.no_grad():
        ref = raw(tokens, attention_mask=mask, output_attentions=True, output_hidden_states=True)
    for i in range(6):
        assert (run.cache[f"blocks.{i}.attn.hook_pattern"] - ref.attentions[i]).abs().max() < 1e-5
        assert (run.cache[f"blocks.{i}.hook_resid_pre"] - ref.hidden_states[i]).abs().max() < 1e-5


def test_generic_torch_module() -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    backend = NNsightBackend(net)
    assert backend.spec.architecture == "torch:Sequential"
    assert {i.site.hook_name for i in backend.sites()} == {"module:0", "module:1", "module:2"}
    x = torch.randn(4, 5)
    run = backend.run(x, capture=["module:1"], interventions=[iv.zero("module:0", rows=[2])],
                      grads=["module:1"], metric=lambda out: out.sum())
    h = net[0](x)
    h[2] = 0
    a = net[1](h)
    a.retain_grad()
    out = net[2](a)
    out.sum().backward()
    assert run.logits is not None and torch.allclose(run.logits, out.detach(), atol=1e-6)
    assert torch.allclose(run.cache["module:1"], a.detach(), atol=1e-6)
    assert torch.allclose(run.grads["module:1"], a.grad, atol=1e-6)
    with pytest.raises(BackendError, match="no tokenizer"):
        backend.to_tokens("hello")
    with pytest.raises(UnknownSiteError, match=r"no site 'blocks.0.hook_resid_pre'"):
        backend.run(x, capture=["blocks.0.hook_resid_pre"])
