"""The synthetic language of the ``polysemantic`` zoo model: planted features we know.

A document is ``<bos>`` followed by :data:`SEQ_WORDS` words. Each document has a latent set of active
*features* (:data:`FEATURES`, 32 of them: topics such as ``fruit`` or ``weather``, a ``refusal``
feature and a ``positive`` sentiment feature). Each feature owns three words. The number of active
features is 0, 1 or 2 (probabilities :data:`N_ACTIVE_PROBS`), drawn uniformly without replacement.
Every word is a filler word (:data:`FILLER`) with probability :data:`P_FILLER`, otherwise a word of
one of the active features (feature uniform among the active ones, then word uniform among its three).
A document with no active feature is all filler words: that is the *baseline*.

To predict the next word the model must tell from the context which features are active. The model
(see ``scripts/train_polysemantic.py``) reads the context through a narrow attention head, so the
32 features arrive in superposition and its 16 MLP neurons, which decode them into the features' words,
each respond to several features. ``scripts/polysemantic_card.py`` measures which neurons are
polysemantic and writes the model card.

The tokenizer is word-level: one token per word, words separated by single spaces, ``<bos>``
prepended (id 0, also EOS and padding), ``<unk>`` (id 1) for any other word.
Importing this module imports no torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerFast

NAME = "polysemantic"
BOS = "<bos>"
UNK = "<unk>"
#: feature name -> its three words
FEATURES: dict[str, tuple[str, str, str]] = {
    "fruit": ("apple", "pear", "plum"),
    "weather": ("rain", "snow", "wind"),
    "pets": ("cat", "dog", "hamster"),
    "farm": ("cow", "sheep", "goat"),
    "sport": ("goal", "ball", "team"),
    "music": ("song", "guitar", "drum"),
    "ocean": ("wave", "ship", "whale"),
    "space": ("star", "planet", "rocket"),
    "food": ("bread", "cheese", "soup"),
    "city": ("street", "tower", "bus"),
    "forest": ("tree", "moss", "fern"),
    "school": ("teacher", "lesson", "exam"),
    "medicine": ("doctor", "pill", "nurse"),
    "money": ("bank", "coin", "loan"),
    "law": ("judge", "court", "lawyer"),
    "tech": ("code", "laptop", "server"),
    "kitchen": ("pan", "oven", "knife"),
    "travel": ("train", "ticket", "hotel"),
    "garden": ("rose", "tulip", "seed"),
    "war": ("tank", "soldier", "army"),
    "art": ("paint", "canvas", "brush"),
    "body": ("arm", "leg", "heart"),
    "color": ("red", "blue", "green"),
    "number": ("seven", "twelve", "ninety"),
    "family": ("mother", "father", "sister"),
    "time": ("monday", "morning", "noon"),
    "clothes": ("shirt", "hat", "shoe"),
    "vehicle": ("car", "truck", "bike"),
    "bird": ("eagle", "crow", "owl"),
    "insect": ("bee", "ant", "moth"),
    "refusal": ("sorry", "cannot", "refuse"),
    "positive": ("great", "happy", "love"),
}
FEATURE_NAMES: tuple[str, ...] = tuple(FEATURES)
N_FEATURES = len(FEATURES)
#: words of no feature, used everywhere
FILLER: tuple[str, ...] = ("the", "a", "and", "of", "is", "to", "it", "in", "with", "on")
#: token -> id
VOCAB: dict[str, int] = {w: i for i, w in enumerate((BOS, UNK, *FILLER, *(w for ws in FEATURES.values() for w in ws)))}
BOS_ID = VOCAB[BOS]
UNK_ID = VOCAB[UNK]
FILLER_IDS: tuple[int, ...] = tuple(VOCAB[w] for w in FILLER)
#: feature index -> ids of its words
FEATURE_IDS: tuple[tuple[int, ...], ...] = tuple(tuple(VOCAB[w] for w in ws) for ws in FEATURES.values())
SEQ_WORDS = 24
SEQ_LEN = 1 + SEQ_WORDS
N_ACTIVE_PROBS: tuple[float, ...] = (0.1, 0.5, 0.4)  # P(0), P(1), P(2) active features
P_FILLER = 0.5


def feature_index(name: str | int) -> int:
    """The index of a feature given its name (or index); raises ValueError naming the known ones."""
    if isinstance(name, int):
        if not 0 <= name < N_FEATURES:
            msg = f"feature {name} is out of range: the language has {N_FEATURES} features (0..{N_FEATURES - 1})"
            raise ValueError(msg)
        return name
    if name not in FEATURES:
        msg = f"no feature named {name!r}; the features are: {', '.join(FEATURE_NAMES)}"
        raise ValueError(msg)
    return FEATURE_NAMES.index(name)


def sample(
    n: int,
    generator: torch.Generator,
    *,
    active: list[list[int | str]] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` documents: tokens ``[n, SEQ_LEN]`` (``<bos>`` first) and the active-feature mask ``[n, 32]``.

    ``active`` fixes each document's active features (names or indices; ``[]`` is the baseline);
    by default they are drawn as the language draws them.
    """
    import torch

    if active is not None and len(active) != n:
        msg = f"active has {len(active)} feature sets for {n} documents"
        raise ValueError(msg)
    mask = torch.zeros(n, N_FEATURES, dtype=torch.bool)
    if active is None:
        counts = torch.multinomial(torch.tensor(N_ACTIVE_PROBS), n, replacement=True, generator=generator)
        order = torch.rand(n, N_FEATURES, generator=generator).argsort(dim=1)
        for i in range(n):
            mask[i, order[i, : int(counts[i])]] = True
    else:
        for i, feats in enumerate(active):
            for f in feats:
                mask[i, feature_index(f)] = True
    words = _words(mask, torch.tensor(FEATURE_IDS), SEQ_WORDS, generator)
    return torch.cat([torch.full((n, 1), BOS_ID), words], dim=1), mask


def _words(mask: torch.Tensor, table: torch.Tensor, length: int, generator: torch.Generator) -> torch.Tensor:
    """``[n, length]`` words: filler with probability P_FILLER, else a word of ``table[f]`` for an active ``f``."""
    import torch

    n = mask.shape[0]
    filler = torch.tensor(FILLER_IDS)
    toks = filler[torch.randint(0, len(FILLER_IDS), (n, length), generator=generator)]
    none = ~mask.any(dim=1, keepdim=True)
    weights = mask.float() + 1e-12 * none.float()  # documents with no feature stay filler (see `use`)
    feat = torch.multinomial(weights, length, replacement=True, generator=generator)  # [n, length]
    word = table[feat, torch.randint(0, table.shape[1], (n, length), generator=generator)]
    use = (torch.rand(n, length, generator=generator) >= P_FILLER) & ~none
    return torch.where(use, word, toks)


def next_word_distribution(mask: torch.Tensor) -> torch.Tensor:
    """The true distribution ``[n, d_vocab]`` of a word of documents with active features ``mask`` ``[n, 32]``."""
    import torch

    n = mask.shape[0]
    probs = torch.zeros(n, len(VOCAB))
    has = mask.any(dim=1)
    p_fill = torch.where(has, torch.tensor(P_FILLER), torch.tensor(1.0))
    probs[:, list(FILLER_IDS)] = (p_fill / len(FILLER_IDS))[:, None]
    k = mask.sum(dim=1).clamp(min=1)
    per_word = (1 - p_fill) / (3 * k)
    for f, ids in enumerate(FEATURE_IDS):
        probs[:, list(ids)] += (mask[:, f].float() * per_word)[:, None]
    return probs


def build_tokenizer() -> PreTrainedTokenizerFast:
    """The word-level tokenizer: one token per space-separated word, ``<bos>`` prepended."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordLevel(vocab=dict(VOCAB), unk_token=UNK))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins words with single spaces
    backend.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, BOS_ID)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token=BOS, eos_token=BOS, pad_token=BOS, unk_token=UNK,
        add_bos_token=True, padding_side="right", clean_up_tokenization_spaces=False,
        model_max_length=1_000_000, name_or_path=f"interp-widget/{NAME}-words",
    )


__all__ = [
    "BOS_ID", "FEATURES", "FEATURE_IDS", "FEATURE_NAMES", "FILLER", "FILLER_IDS", "N_FEATURES", "SEQ_LEN",
    "SEQ_WORDS", "VOCAB", "build_tokenizer", "feature_index", "next_word_distribution", "sample",
]
