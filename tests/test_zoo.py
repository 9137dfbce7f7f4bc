"""The zoo registry, the character tokenizer and the project's save/load format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from interp_widget import zoo
from interp_widget.errors import BackendError, ModelLoadError
from interp_widget.models import format as fmt
from interp_widget.zoo.tokenizer import BOS_ID, CHARS, UNK_ID, VOCAB, build_tokenizer, check_text, load_tokenizer

pytestmark = pytest.mark.filterwarnings("ignore:HookedTransformer is deprecated:DeprecationWarning")

TEXT = "Hello, World! The cat sat.\nA B C D A B C D 0123456789 it's a-ok?"


def tiny_ht(seed: int = 0) -> object:
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    cfg = HookedTransformerConfig(n_layers=2, d_model=16, n_heads=2, d_head=8, n_ctx=32, d_vocab=len(VOCAB),
                                  attn_only=True, act_fn=None, normalization_type="LN", seed=seed,
                                  model_name="tiny-char")
    ht = HookedTransformer(cfg, tokenizer=build_tokenizer())
    ht.eval()
    return ht


# --- tokenizer ------------------------------------------------------------------------------------
def test_tokenizer_round_trips_text(tmp_path: Path) -> None:
    tok = build_tokenizer()
    ids = tok(TEXT)["input_ids"]
    assert ids[0] == BOS_ID and len(ids) == len(TEXT) + 1  # one token per character, after <bos>
    assert [VOCAB[c] for c in TEXT] == ids[1:]
    assert tok.decode(ids, skip_special_tokens=True) == TEXT
    tok.save_pretrained(str(tmp_path))
    again = load_tokenizer(tmp_path)
    assert again(TEXT)["input_ids"] == ids
    assert again.decode(ids, skip_special_tokens=True) == TEXT


def test_tokenizer_vocabulary_and_unknown_characters() -> None:
    tok = build_tokenizer()
    assert len(tok) == len(VOCAB) == 72
    assert tok.bos_token_id == BOS_ID and tok.unk_token_id == UNK_ID
    assert tok("aé b")["input_ids"] == [BOS_ID, VOCAB["a"], UNK_ID, VOCAB[" "], VOCAB["b"]]
    check_text(CHARS)
    with pytest.raises(ValueError, match=r"'é€'.*not in the character vocabulary"):
        check_text("café €")


def test_transformer_lens_uses_the_tokenizer() -> None:
    ht = tiny_ht()
    assert ht.tokenizer is not None
    toks = ht.to_tokens("ab a")
    assert toks.tolist() == [[BOS_ID, VOCAB["a"], VOCAB["b"], VOCAB[" "], VOCAB["a"]]]
    assert ht.to_str_tokens("ab a") == ["<bos>", "a", "b", " ", "a"]
    assert ht.to_tokens("ab", prepend_bos=False).tolist() == [[VOCAB["a"], VOCAB["b"]]]
    assert ht.to_string(toks[0, 1:]) == "ab a"


# --- save / load -----------------------------------------------------------------------------------
def test_save_load_round_trip_gives_equal_logits(tmp_path: Path) -> None:
    ht = tiny_ht(seed=5)
    with torch.no_grad():  # make every weight non-default, LayerNorm included
        for p in ht.parameters():
            p.add_(0.05 * torch.randn_like(p))
    out = fmt.save(ht, tmp_path / "m", name="tiny", card="# tiny\n")
    files = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "MODEL_CARD.md"} <= files
    config = json.loads((out / "config.json").read_text())
    assert config["format"] == "interp-widget" and config["format_version"] == 1
    assert config["kind"] == "hooked-transformer" and config["name"] == "tiny"
    assert config["config"]["d_model"] == 16 and config["config"]["attn_only"] is True
    assert fmt.is_model_dir(out)

    model = fmt.load_dir(out)
    assert model.name == "tiny" and model.spec.n_layers == 2 and model.spec.d_vocab == len(VOCAB)
    toks = ht.to_tokens(["the cat sat", "A B A B"])
    with torch.no_grad():
        want = ht(toks)
    got = model.run(toks).logits
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    assert model.to_tokens("the cat").tolist() == ht.to_tokens("the cat").tolist()
    assert model.to_str_tokens("ab") == ["<bos>", "a", "b"]
    for a, b in zip(ht.state_dict().items(), model.raw.state_dict().items(), strict=True):
        assert a[0] == b[0] and torch.equal(a[1], b[1]), a[0]


def test_save_accepts_a_model_and_rejects_other_objects(tmp_path: Path) -> None:
    from interp_widget.models.model import Model
    from interp_widget.tracing.tl import TransformerLensBackend

    ht = tiny_ht()
    model = Model(TransformerLensBackend(ht), name="wrapped", raw=ht)
    out = fmt.save(model, tmp_path / "w")
    assert fmt.load_dir(out).name == "wrapped"
    with pytest.raises(BackendError, match="HookedTransformer models; got Linear"):
        fmt.save(torch.nn.Linear(2, 2), tmp_path / "x")


def test_load_dir_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="no model directory"):
        fmt.load_dir(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match=r"has no config\.json"):
        fmt.load_dir(tmp_path / "empty")
    out = fmt.save(tiny_ht(), tmp_path / "m")
    cfg_path, weights = out / "config.json", out / "model.safetensors"
    good_cfg, good_weights = cfg_path.read_text(), weights.read_bytes()

    cfg_path.write_text("{not json")
    with pytest.raises(ModelLoadError, match="not valid JSON"):
        fmt.load_dir(out)
    cfg_path.write_text(json.dumps({"format": "other"}))
    with pytest.raises(ModelLoadError, match="not an interp-widget model config"):
        fmt.load_dir(out)
    cfg_path.write_text(json.dumps({**json.loads(good_cfg), "format_version": 99}))
    with pytest.raises(ModelLoadError, match="format_version 99"):
        fmt.load_dir(out)
    cfg_path.write_text(json.dumps({**json.loads(good_cfg), "config": {**json.loads(good_cfg)["config"], "bogus": 1}}))
    with pytest.raises(ModelLoadError, match="does not know: \\['bogus'\\]"):
        fmt.load_dir(out)
    cfg_path.write_text(json.dumps({**json.loads(good_cfg), "config": {**json.loads(good_cfg)["config"], "d_model": 32}}))
    with pytest.raises(ModelLoadError, match="do not fit the config"):
        fmt.load_dir(out)
    cfg_path.write_text(good_cfg)

    weights.write_bytes(good_weights[: len(good_weights) // 2])
    with pytest.raises(ModelLoadError, match="could not be read"):
        fmt.load_dir(out)
    weights.unlink()
    with pytest.raises(ModelLoadError, match=r"has no model\.safetensors"):
        fmt.load_dir(out)


# --- registry ---------------------------------------------------------------------------------------
def test_zoo_names_and_unknown_name() -> None:
    assert zoo.names()[:2] == ["induction-2l", "minilm"] and "shapes-cnn" in zoo.names()
    assert zoo.has("induction-2l") and not zoo.has("gpt-5")
    with pytest.raises(ModelLoadError, match="no zoo model named 'gpt-5'; the zoo has: induction-2l, minilm, "):
        zoo.load("gpt-5")
    with pytest.raises(ModelLoadError, match="the zoo has"):
        zoo.card("nope")


def test_zoo_induction_2l_loads() -> None:
    d = zoo.path("induction-2l")
    weights = d / "model.safetensors"
    assert weights.is_file() and weights.stat().st_size < 2_000_000
    model = zoo.load("induction-2l")
    assert model.name == "induction-2l"
    assert (model.spec.n_layers, model.spec.n_heads, model.spec.d_mlp) == (2, 4, None)
    assert model.to_str_tokens("AB") == ["<bos>", "A", "B"]
    card = zoo.card("induction-2l")
    assert card.startswith("# induction-2l") and "python scripts/train_induction_2l.py" in card


def test_loading_leaves_the_global_rng_alone(tmp_path: Path) -> None:
    out = fmt.save(tiny_ht(seed=11), tmp_path / "m")
    torch.manual_seed(123)
    want = torch.rand(3)
    torch.manual_seed(123)
    fmt.load_dir(out)
    assert torch.equal(torch.rand(3), want)
