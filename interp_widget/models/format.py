"""The project's own save/load format for TransformerLens models.

A model directory holds:

* ``config.json``: ``{"format": "interp-widget", "format_version": 1, "kind": "hooked-transformer",
  "name": ..., "dtype": "float32", "config": {HookedTransformerConfig fields}}``. ``config`` holds
  every config field whose value differs from the dataclass default (derived and runtime fields
  such as ``device``, ``n_params``, ``seed`` and ``init_weights`` are left out), so the file stays
  short and readable;
* ``model.safetensors``: the ``HookedTransformer`` state dict (without its non-persistent masks);
* the tokenizer's files (``tokenizer.json``, ``tokenizer_config.json``), when the model has one;
* ``MODEL_CARD.md``, optional.

>>> import interp_widget as iw
>>> iw.save(model, "my-model")              # doctest: +SKIP
>>> iw.load("my-model")                     # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from interp_widget.errors import BackendError, ModelLoadError

if TYPE_CHECKING:
    from transformer_lens import HookedTransformer

    from interp_widget.models.model import Model

FORMAT = "interp-widget"
FORMAT_VERSION = 1
KIND = "hooked-transformer"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "MODEL_CARD.md"
#: config fields that are derived or describe the runtime, not the model
#: (``seed`` too: a config with a seed reseeds every global RNG when it is built, which loading must not do)
_SKIP_FIELDS = frozenset({"device", "n_params", "n_devices", "tokenizer_prepends_bos", "dtype", "seed", "init_weights"})
#: state-dict entries rebuilt by the model itself (causal masks, constants)
_SKIP_STATE = ("attn.mask", "attn.IGNORE", "rotary_sin", "rotary_cos")


def _jsonable(value: Any) -> Any:
    """Config values as plain JSON (numpy scalars -> float/int); raises TypeError if impossible."""
    if hasattr(value, "item") and not isinstance(value, (list, dict)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        msg = f"non-finite value {value!r}"
        raise TypeError(msg)
    json.dumps(value)
    return value


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """The non-default fields of a ``HookedTransformerConfig`` as a JSON-ready dict."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cfg):
        if f.name in _SKIP_FIELDS:
            continue
        value = getattr(cfg, f.name)
        if f.default is not dataclasses.MISSING and _equal(value, f.default):
            continue
        if f.default_factory is not dataclasses.MISSING and _equal(value, f.default_factory()):
            continue
        try:
            out[f.name] = _jsonable(value)
        except TypeError as e:
            msg = f"cannot save config field {f.name}={value!r} as JSON: {e}"
            raise BackendError(msg) from e
    return out


def _equal(a: Any, b: Any) -> bool:
    try:
        return bool(a == b) and type(a) is type(b)
    except Exception:  # numpy / torch comparisons that do not reduce to a bool
        return False


def _hooked_transformer(model: Any) -> HookedTransformer:
    from transformer_lens import HookedTransformer

    raw = getattr(model, "raw", model)
    if isinstance(raw, HookedTransformer):
        return raw
    msg = (f"interp_widget.save writes TransformerLens HookedTransformer models; got {type(raw).__name__}"
           + (f" (inside {type(model).__name__})" if raw is not model else "")
           + ". Save Hugging Face models with their own save_pretrained().")
    raise BackendError(msg)


def save(model: Model | HookedTransformer, path: str | Path, *, name: str | None = None,
         card: str | None = None) -> Path:
    """Write ``model`` (a :class:`Model` over a HookedTransformer, or a HookedTransformer) to directory ``path``.

    ``name`` defaults to the model's name; ``card`` (markdown) is written to ``MODEL_CARD.md``.
    Existing files of the format in ``path`` are overwritten. Returns the directory.
    """
    from safetensors.torch import save_file

    ht = _hooked_transformer(model)
    out = Path(path)
    if out.exists() and not out.is_dir():
        msg = f"cannot save a model to {out}: it exists and is not a directory"
        raise BackendError(msg)
    out.mkdir(parents=True, exist_ok=True)
    if name is None:
        name = getattr(model, "name", "") or ht.cfg.model_name
    state = {k: v.detach().cpu().contiguous() for k, v in ht.state_dict().items() if not k.endswith(_SKIP_STATE)}
    save_file(state, str(out / WEIGHTS_FILE), metadata={"format": FORMAT, "format_version": str(FORMAT_VERSION)})
    (out / WEIGHTS_FILE).chmod(0o644)  # safetensors creates it readable by its owner only
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": KIND,
        "name": name,
        "dtype": str(ht.cfg.dtype).removeprefix("torch."),
        "config": config_to_dict(ht.cfg),
    }
    (out / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    if ht.tokenizer is not None:
        ht.tokenizer.save_pretrained(str(out))
    if card is not None:
        (out / CARD_FILE).write_text(card)
    return out


def is_model_dir(path: str | Path) -> bool:
    """True if ``path`` is a directory whose ``config.json`` says ``"format": "interp-widget"``."""
    cfg = Path(path) / CONFIG_FILE
    try:
        return bool(json.loads(cfg.read_text()).get("format") == FORMAT)
    except (OSError, ValueError, AttributeError):
        return False


def read_config(path: str | Path) -> dict[str, Any]:
    """Read and check ``config.json`` of a model directory; raise ModelLoadError naming the problem."""
    d = Path(path)
    if not d.is_dir():
        msg = f"no model directory at {d}" + (" (it is a file)" if d.exists() else "")
        raise ModelLoadError(msg)
    cfg_path = d / CONFIG_FILE
    if not cfg_path.is_file():
        msg = f"{d} is not an interp-widget model directory: it has no {CONFIG_FILE}"
        raise ModelLoadError(msg)
    try:
        config = json.loads(cfg_path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        msg = f"{cfg_path} is not valid JSON: {e}"
        raise ModelLoadError(msg) from e
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        got = config.get("format") if isinstance(config, dict) else type(config).__name__
        msg = f"{cfg_path} is not an interp-widget model config (format={got!r}, expected {FORMAT!r})"
        raise ModelLoadError(msg)
    version = config.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        msg = (f"{cfg_path} has format_version {version!r}; this interp_widget reads version <= {FORMAT_VERSION}"
               " (upgrade interp_widget)")
        raise ModelLoadError(msg)
    if config.get("kind") != KIND:
        msg = f"{cfg_path} holds a model of kind {config.get('kind')!r}; only {KIND!r} is supported"
        raise ModelLoadError(msg)
    if not isinstance(config.get("config"), dict):
        msg = f"{cfg_path} has no 'config' object with the HookedTransformerConfig fields"
        raise ModelLoadError(msg)
    return config


def load_hooked_transformer(path: str | Path, *, device: str | None = None) -> tuple[HookedTransformer, dict[str, Any]]:
    """Build the ``HookedTransformer`` stored in ``path``; returns it and the parsed config.json."""
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    d = Path(path)
    config = read_config(d)
    fields = dict(config["config"])
    dtype_name = config.get("dtype", "float32")
    dtype = getattr(torch, str(dtype_name), None)
    if not isinstance(dtype, torch.dtype):
        msg = f"{d / CONFIG_FILE}: unknown dtype {dtype_name!r}"
        raise ModelLoadError(msg)
    fields["dtype"] = dtype
    fields["device"] = device or "cpu"
    fields["init_weights"] = False  # every weight comes from the file
    known = {f.name for f in dataclasses.fields(HookedTransformerConfig)}
    unknown = sorted(set(fields) - known)
    if unknown:
        msg = (f"{d / CONFIG_FILE} has config fields this TransformerLens does not know: {unknown} "
               "(saved with a different TransformerLens version?)")
        raise ModelLoadError(msg)
    try:
        cfg = HookedTransformerConfig(**fields)
    except Exception as e:
        msg = f"{d / CONFIG_FILE}: invalid HookedTransformerConfig: {e}"
        raise ModelLoadError(msg) from e
    weights = d / WEIGHTS_FILE
    if not weights.is_file():
        msg = f"{d} has no {WEIGHTS_FILE}"
        raise ModelLoadError(msg)
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as e:
        msg = f"{weights} could not be read (corrupt or truncated?): {e}"
        raise ModelLoadError(msg) from e
    tokenizer = None
    if (d / "tokenizer.json").is_file() or (d / "tokenizer_config.json").is_file():
        tokenizer = _load_tokenizer(d)
    with warnings.catch_warnings():  # "HookedTransformer is deprecated" (TL 3.x): it is the class we store
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*HookedTransformer is deprecated")
        ht = HookedTransformer(cfg, tokenizer=tokenizer, move_to_device=False)
    missing, unexpected = _load_state(ht, state)
    if missing or unexpected:
        msg = (f"{weights} does not match its config: missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
               f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}")
        raise ModelLoadError(msg)
    if fields["device"] != "cpu":
        ht.to(fields["device"], print_details=False)
    ht.eval()
    return ht, config


def _load_state(ht: HookedTransformer, state: dict[str, Any]) -> tuple[list[str], list[str]]:
    expected = {k for k in ht.state_dict() if not k.endswith(_SKIP_STATE)}
    missing = sorted(expected - set(state))
    unexpected = sorted(set(state) - expected)
    if missing or unexpected:
        return missing, unexpected
    try:
        ht.load_state_dict(state, strict=False)
    except RuntimeError as e:  # shape mismatch
        msg = f"weights do not fit the config: {e}"
        raise ModelLoadError(msg) from e
    return [], []


def _load_tokenizer(d: Path) -> Any:
    from transformers import AutoTokenizer

    try:
        # TransformerLens asks for a BOS-prepending tokenizer; giving it one keeps it from reloading
        return AutoTokenizer.from_pretrained(str(d), local_files_only=True, add_bos_token=True)
    except Exception as e:
        msg = f"the tokenizer files in {d} could not be loaded: {e}"
        raise ModelLoadError(msg) from e


def load_dir(path: str | Path, *, device: str | None = None) -> Model:
    """Load a model directory written by :func:`save` as a :class:`Model` on the TransformerLens backend."""
    from interp_widget.models.model import Model
    from interp_widget.tracing.tl import TransformerLensBackend

    ht, config = load_hooked_transformer(path, device=device)
    name = str(config.get("name") or Path(path).name)
    return Model(TransformerLensBackend(ht, name=name), name=name, raw=ht)
