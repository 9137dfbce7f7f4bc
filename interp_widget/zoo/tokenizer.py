"""A character-level tokenizer for the zoo's toy models.

It is a real Hugging Face :class:`~transformers.PreTrainedTokenizerFast` built
with the ``tokenizers`` library, so TransformerLens's ``to_tokens`` /
``to_str_tokens`` and ``save_pretrained`` / ``from_pretrained`` work on it.

Vocabulary (:data:`VOCAB`, 72 ids): ``<bos>`` (0, also used as EOS and
padding), ``<unk>`` (1), then one id per character: space, newline, ``a-z``,
``A-Z``, ``0-9`` and ``. , ! ? ' -``.

Every character is one token. **Characters outside the vocabulary become
``<unk>``** (id 1): tokenizing never fails, but such text does not round-trip;
:func:`check_text` raises a clear error for callers who want to refuse it.
Text made of vocabulary characters round-trips exactly:
``tok.decode(tok(text)["input_ids"], skip_special_tokens=True) == text``.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

NAME = "interp-widget/char-tokenizer"
BOS = "<bos>"
UNK = "<unk>"
SPECIAL_TOKENS: tuple[str, ...] = (BOS, UNK)
#: the characters, in id order after the special tokens
CHARS: str = " \n" + string.ascii_lowercase + string.ascii_uppercase + string.digits + ".,!?'-"
#: token -> id
VOCAB: dict[str, int] = {tok: i for i, tok in enumerate((*SPECIAL_TOKENS, *CHARS))}
BOS_ID = VOCAB[BOS]
UNK_ID = VOCAB[UNK]
#: ids of the ordinary (character) tokens, the ones the toy models are trained on
CHAR_IDS: tuple[int, ...] = tuple(VOCAB[c] for c in CHARS)


def check_text(text: str) -> None:
    """Raise ``ValueError`` naming the characters of ``text`` that the vocabulary lacks."""
    bad = sorted(set(text) - set(CHARS))
    if bad:
        msg = (f"characters {''.join(bad)!r} are not in the character vocabulary "
               f"(letters, digits, space, newline and {CHARS[-6:]!r}); they would become {UNK}")
        raise ValueError(msg)


def build_tokenizer() -> PreTrainedTokenizerFast:
    """Build the character tokenizer: prepends ``<bos>``, one token per character."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordLevel(vocab=dict(VOCAB), unk_token=UNK))
    # every character (newline included) is its own pre-token; nothing is stripped or normalised
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    backend.decoder = decoders.Fuse()
    backend.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, BOS_ID)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=BOS,
        eos_token=BOS,
        pad_token=BOS,
        unk_token=UNK,
        add_bos_token=True,
        padding_side="right",
        clean_up_tokenization_spaces=False,
        model_max_length=1_000_000,
        # TransformerLens reads name_or_path and add_bos_token from init_kwargs
        name_or_path=NAME,
    )


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerFast:
    """Load a tokenizer saved with ``save_pretrained`` (offline, from a local directory)."""
    from transformers import PreTrainedTokenizerFast

    # add_bos_token is not kept by save_pretrained in transformers 5: set it again, so
    # TransformerLens uses this tokenizer as is instead of reloading it from disk
    return PreTrainedTokenizerFast.from_pretrained(str(path), local_files_only=True, add_bos_token=True)
