"""``interp_widget.load``: turn whatever the user has into a :class:`~interp_widget.models.model.Model`.

Accepted, in the order they are tried:

* a :class:`Model` (returned as is, renamed if ``name`` is given);
* a TransformerLens ``HookedTransformer`` or ``TransformerBridge`` -> TransformerLens backend;
* an nnsight model (``nnsight.NNsight`` / ``LanguageModel``) -> nnsight backend;
* a Hugging Face ``PreTrainedModel`` or any ``torch.nn.Module`` -> wrapped with nnsight
  (pass ``tokenizer=`` to be able to give text; a Hugging Face model's tokenizer is looked
  up from its ``name_or_path`` when that is a local directory or cached);
* a string:
  - a zoo name (:func:`interp_widget.zoo.names`) -> :func:`interp_widget.zoo.load`;
  - a local directory: with ``"format": "interp-widget"`` in its ``config.json`` ->
    :func:`interp_widget.models.format.load_dir`; otherwise a Hugging Face
    ``save_pretrained`` directory (model + tokenizer) -> nnsight backend;
  - otherwise a pretrained name: one TransformerLens knows -> ``HookedTransformer.from_pretrained``,
    anything else -> the Hugging Face class named in its config (``AutoModel`` family).
    Weights that are neither cached nor downloadable raise :class:`ModelLoadError`
    saying so (no long network retries when the Hub cannot be reached).

``remote=True`` (with ``host=`` / ``api_key=`` or the environment, see :mod:`interp_widget.remote`)
gives a model whose runs execute on NDIF: ``obj`` is then a repo id or an nnsight model.
Model objects stay where they are; ``device`` applies to weights loaded from a
name or a directory. Extra keyword arguments go to the loader (``from_pretrained``).
Nothing heavy is imported until ``load`` is called.
"""

from __future__ import annotations

import importlib
import json
import os
import socket
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from interp_widget.errors import ModelLoadError
from interp_widget.models.model import Model

_TRUE = {"1", "true", "yes", "on"}


def load(obj: Any, *, name: str | None = None, device: str = "cpu", **kw: Any) -> Model:
    """Load ``obj`` as a :class:`Model`; see the module docstring for what ``obj`` may be."""
    if kw.get("remote"):  # runs on an NDIF server: see interp_widget.tracing.remote
        from interp_widget.tracing.remote.backend import load_remote

        kw.pop("remote")
        return load_remote(obj, name=name, **kw)
    kw.pop("remote", None)
    if isinstance(obj, Model):
        if name:
            obj.name = name
        return obj
    if isinstance(obj, (str, os.PathLike)):
        return _load_string(os.fspath(obj), name=name, device=device, kw=kw)
    if _from_package(obj, "transformer_lens") and hasattr(obj, "hook_dict"):
        from interp_widget.tracing.tl import TransformerLensBackend

        return Model(TransformerLensBackend(obj, name=name or ""), name=name or "", raw=obj)
    if _from_package(obj, "nnsight"):
        from interp_widget.tracing.nnsight_backend import NNsightBackend

        return Model(NNsightBackend(obj, tokenizer=kw.get("tokenizer"), name=name or ""), name=name or "", raw=obj)
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(obj, torch.nn.Module):
        from interp_widget.tracing.nnsight_backend import NNsightBackend

        tokenizer = kw.get("tokenizer")
        if tokenizer is None and _from_package(obj, "transformers"):
            tokenizer = _hf_tokenizer(getattr(getattr(obj, "config", None), "name_or_path", "") or "")
        return Model(NNsightBackend(obj, tokenizer=tokenizer, name=name or ""), name=name or "", raw=obj)
    msg = (f"cannot load a {type(obj).__name__}: pass a zoo name, a pretrained model name, a local directory, "
           "or a model object (TransformerLens, nnsight, Hugging Face or torch.nn.Module)")
    raise ModelLoadError(msg)


def _from_package(obj: Any, package: str) -> bool:
    return any((c.__module__ or "").split(".")[0] == package for c in type(obj).__mro__)


def _load_string(source: str, *, name: str | None, device: str, kw: dict[str, Any]) -> Model:
    zoo = importlib.import_module("interp_widget.zoo")
    has, names = getattr(zoo, "has", None), getattr(zoo, "names", None)
    if (callable(has) and has(source)) or (callable(names) and source in names()):
        return load(zoo.load(source), name=name)
    path = Path(source).expanduser()
    if path.is_dir():
        config_file = path / "config.json"
        if not config_file.is_file():
            msg = f"cannot load the directory {str(path)!r}: it has no config.json (not a saved model)"
            raise ModelLoadError(msg)
        try:
            config = json.loads(config_file.read_text())
        except (OSError, ValueError) as e:
            msg = f"cannot load {str(path)!r}: its config.json is not valid JSON ({e})"
            raise ModelLoadError(msg) from e
        if isinstance(config, dict) and config.get("format") == "interp-widget":
            fmt = importlib.import_module("interp_widget.models.format")
            return load(fmt.load_dir(str(path)), name=name)
        return _load_hf(str(path), name=name or path.name, device=device, kw=kw)
    if source.startswith((".", "/", "~")) or path.is_file() or (len(path.parts) > 2 and path.parent.is_dir()):
        msg = f"cannot load {source!r}: it is not a model directory (nor a zoo name or a pretrained model name)"
        raise ModelLoadError(msg)
    return _load_pretrained(source, name=name, device=device, kw=kw)


# --- pretrained names ------------------------------------------------------------------------


def _offline() -> bool:
    return any(os.environ.get(v, "").strip().lower() in _TRUE for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _hub_reachable(timeout: float = 3.0) -> bool:
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        with socket.create_connection((url.hostname or "huggingface.co", url.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def _cached(repo: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - huggingface_hub comes with transformers
        return False
    return isinstance(try_to_load_from_cache(repo, "config.json"), str)


def _not_available(name: str, reason: str) -> ModelLoadError:
    return ModelLoadError(
        f"cannot load {name!r}: its weights are not available locally and no network is reachable ({reason}). "
        f"Download them where there is network (e.g. `huggingface-cli download {name}`) and copy the cache, "
        "or pass a local directory or a model object to interp_widget.load.")


def _check_available(name: str, repo: str) -> None:
    """Fail fast, with a clear message, when the weights are not cached and cannot be downloaded."""
    if _cached(repo):
        return
    if _offline():
        raise _not_available(name, "HF_HUB_OFFLINE is set")
    if not _hub_reachable():
        raise _not_available(name, "the Hugging Face Hub cannot be contacted")


def _looks_offline(err: BaseException) -> bool:
    e: BaseException | None = err
    while e is not None:
        kind = type(e).__name__
        text = str(e).lower()
        if ("LocalEntryNotFound" in kind or "Offline" in kind or "Connect" in kind or "Timeout" in kind
                or "couldn't connect" in text or "offline" in text):
            return True
        e = e.__cause__ or e.__context__
    return False


def _tl_official_name(name: str) -> str | None:
    """TransformerLens's official name for ``name``, for decoder models it can load as a HookedTransformer."""
    try:
        from transformer_lens.loading_from_pretrained import get_official_model_name

        official = str(get_official_model_name(name))
    except (ImportError, ValueError):
        return None
    tail = official.lower().split("/")[-1]
    if "bert" in tail or tail.startswith("t5"):
        return None  # encoders / encoder-decoders are not HookedTransformers
    return official


def _load_pretrained(source: str, *, name: str | None, device: str, kw: dict[str, Any]) -> Model:
    official = _tl_official_name(source)
    if official is not None:
        _check_available(source, official)
        from transformer_lens import HookedTransformer

        from interp_widget.tracing.tl import TransformerLensBackend

        try:
            model = HookedTransformer.from_pretrained(source, device=device, **kw)
        except Exception as e:
            if _looks_offline(e):
                raise _not_available(source, type(e).__name__) from e
            msg = f"cannot load {source!r} with TransformerLens: {e}"
            raise ModelLoadError(msg) from e
        return Model(TransformerLensBackend(model, name=name or source), name=name or source, raw=model)
    _check_available(source, source)
    return _load_hf(source, name=name or source, device=device, kw=kw)


# --- Hugging Face ----------------------------------------------------------------------------


def _hf_tokenizer(source: str, *, local_only: bool = True) -> Any:
    """The tokenizer saved with a model (a directory, or cached / downloadable by name), or None."""
    if not source:
        return None
    try:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(source, local_files_only=local_only)
    except Exception:  # no tokenizer saved or cached: text input then needs tokenizer=
        return None


def _load_hf(source: str, *, name: str, device: str, kw: dict[str, Any]) -> Model:
    import transformers

    from interp_widget.tracing.nnsight_backend import NNsightBackend

    kw = dict(kw)
    tokenizer = kw.pop("tokenizer", None)
    try:
        config = transformers.AutoConfig.from_pretrained(source)
        archs = list(getattr(config, "architectures", None) or [])
        cls = getattr(transformers, archs[0], None) if archs else None
        if cls is None:
            cls = transformers.AutoModelForCausalLM if getattr(config, "is_decoder", False) else transformers.AutoModel
        kw.setdefault("attn_implementation", "eager")
        model = cls.from_pretrained(source, **kw)
    except Exception as e:
        if _looks_offline(e):
            raise _not_available(source, type(e).__name__) from e
        msg = f"cannot load {source!r} with transformers: {e}"
        raise ModelLoadError(msg) from e
    model = model.to(device).eval()  # type: ignore[arg-type]
    if tokenizer is None:
        tokenizer = _hf_tokenizer(source, local_only=False)
    return Model(NNsightBackend(model, tokenizer=tokenizer, name=name), name=name, raw=model)
