"""Tiny seeded models for the tracing tests (imported by the test modules; built once per process).

* a word-level tokenizer: ``<bos>``, ``<unk>`` and the 48 letters ``a..z A..V`` (vocab 50), one token per
  whitespace-separated word, saved to a temporary directory (TransformerLens reloads tokenizers by path);
* a GPT-2-shaped Hugging Face model: 2 layers, d_model 32, 4 heads, n_ctx 32, vocab 50, eager attention,
  weights drawn with a larger spread than Hugging Face's init so attention patterns are far from uniform;
* the same weights as a TransformerLens ``HookedTransformer`` (HF -> TL with ``convert_gpt2_weights``, all of
  TransformerLens's weight processing off) and as a ``TransformerBridge``;
* a tiny random ``BertModel`` (2 layers, d_model 32, 4 heads).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import shutil
import string
import tempfile
import warnings
from collections.abc import Iterator
from typing import Any

import torch

LETTERS = (string.ascii_lowercase + string.ascii_uppercase)[:48]
N_LAYERS, D_MODEL, N_HEADS, N_CTX, D_VOCAB = 2, 32, 4, 32, 50


@functools.cache
def tokenizer_dir() -> str:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<bos>": 0, "<unk>": 1, **{c: i + 2 for i, c in enumerate(LETTERS)}}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<bos>", unk_token="<unk>", pad_token="<bos>")
    path = tempfile.mkdtemp(prefix="iw-tiny-tok-")
    tok.save_pretrained(path)
    return path


def tokenizer() -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tokenizer_dir())


def text(n_words: int, seed: int = 0) -> str:
    g = torch.Generator().manual_seed(seed)
    return " ".join(LETTERS[int(i)] for i in torch.randint(len(LETTERS), (n_words,), generator=g))


def _spread_init(model: torch.nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim >= 2:
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
            elif ("ln" in name.lower() or "norm" in name.lower()) and name.endswith("weight"):
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))


@functools.cache
def _hf_gpt2(seed: int) -> Any:
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = GPT2Config(vocab_size=D_VOCAB, n_positions=N_CTX, n_embd=D_MODEL, n_layer=N_LAYERS, n_head=N_HEADS,
                     bos_token_id=0, eos_token_id=0, attn_implementation="eager")
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(cfg)
    _spread_init(model, seed)
    return model.eval()


def hf_gpt2(seed: int = 0) -> Any:
    """A fresh copy (wrapping a model in nnsight or a bridge changes it in place)."""
    return copy.deepcopy(_hf_gpt2(seed))


@contextlib.contextmanager
def saved_hf_gpt2(seed: int = 0) -> Iterator[str]:
    """A temporary directory holding the tiny GPT-2 and its tokenizer (``from_pretrained`` / ``iw.load`` by
    path); removed on exit."""
    d = tempfile.mkdtemp(prefix="iw-tiny-gpt2-")
    try:
        hf_gpt2(seed).save_pretrained(d)
        tokenizer().save_pretrained(d)
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def tl_gpt2(seed: int = 0) -> Any:
    from transformer_lens import HookedTransformer, HookedTransformerConfig
    from transformer_lens.pretrained.weight_conversions.gpt2 import convert_gpt2_weights

    cfg = HookedTransformerConfig(n_layers=N_LAYERS, d_model=D_MODEL, n_ctx=N_CTX, d_head=D_MODEL // N_HEADS,
                                  n_heads=N_HEADS, d_mlp=4 * D_MODEL, d_vocab=D_VOCAB, act_fn="gelu_new",
                                  normalization_type="LN", default_prepend_bos=True, model_name="tiny-gpt2")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        model = HookedTransformer(cfg, tokenizer=tokenizer())
    state = convert_gpt2_weights(_hf_gpt2(seed), cfg)
    model.load_and_process_state_dict({k: v.detach().clone() for k, v in state.items()}, fold_ln=False,
                                      center_writing_weights=False, center_unembed=False,
                                      fold_value_biases=False, refactor_factored_attn_matrices=False)
    return model.eval()


def tl_attn_only(seed: int = 0) -> Any:
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    cfg = HookedTransformerConfig(n_layers=2, d_model=16, n_ctx=16, d_head=4, n_heads=4, d_vocab=D_VOCAB,
                                  attn_only=True, normalization_type=None, seed=seed, model_name="tiny-attn-only")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return HookedTransformer(cfg, tokenizer=tokenizer()).eval()


def bridge_gpt2(seed: int = 0) -> Any:
    from transformer_lens.model_bridge import TransformerBridge

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return TransformerBridge.boot_transformers("gpt2", hf_model=hf_gpt2(seed), tokenizer=tokenizer())


@functools.cache
def _hf_bert(seed: int) -> Any:
    from transformers import BertConfig, BertModel

    cfg = BertConfig(vocab_size=D_VOCAB, hidden_size=D_MODEL, num_hidden_layers=N_LAYERS, num_attention_heads=N_HEADS,
                     intermediate_size=4 * D_MODEL, max_position_embeddings=N_CTX, attn_implementation="eager")
    torch.manual_seed(seed)
    model = BertModel(cfg)
    _spread_init(model, seed)
    return model.eval()


def hf_bert(seed: int = 0) -> Any:
    return copy.deepcopy(_hf_bert(seed))
