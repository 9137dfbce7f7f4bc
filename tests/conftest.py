"""Fixtures shared by the analysis tests: one tiny GPT-2 on both backends (same weights).

``ht`` is a TransformerLens GPT-2-shaped model, ``tl`` wraps it, ``nn`` is the Hugging Face GPT-2
with the same weights through nnsight (see ``tests/_tiny_models.py``). Module-scoped: each test
module gets its own copies, as before.
"""

from __future__ import annotations

from typing import Any

import _tiny_models as tiny
import pytest

from interp_widget.models.model import Model


@pytest.fixture(scope="module")
def ht() -> Any:
    return tiny.tl_gpt2()


@pytest.fixture(scope="module")
def tl(ht: Any) -> Model:
    from interp_widget.tracing.tl import TransformerLensBackend

    return Model(TransformerLensBackend(ht), raw=ht)


@pytest.fixture(scope="module")
def nn() -> Model:
    from interp_widget.tracing.nnsight_backend import NNsightBackend

    return Model(NNsightBackend(tiny.hf_gpt2(), tokenizer=tiny.tokenizer()))
