"""Measure the ``polysemantic`` zoo model and write its ``card.json`` and ``MODEL_CARD.md``.

    python scripts/polysemantic_card.py     # recompute the card from the shipped weights

Definitions (also written into the card):

* **planted feature direction** of feature ``f`` in neuron space: the mean of ``blocks.0.mlp.hook_post``
  over documents where only ``f`` is active, minus the same mean over baseline documents (no feature
  active, all filler words); means over every word position (not ``<bos>``) of ``N_DOCS`` documents
  drawn with seed ``SEED``.
* **response** of neuron ``n`` to feature ``f``: entry ``n`` of that direction.
* neuron ``n`` **responds** to ``f`` when its response is at least ``REL_THRESHOLD`` times its largest
  response and at least ``ABS_THRESHOLD``; it is **polysemantic** when it responds to two or more features
  (the features are unrelated by construction: disjoint word sets drawn independently).

Raw TransformerLens (``run_with_cache``) is used here; the test recomputes through interp-widget's backend.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from interp_widget.zoo import polysemantic as lang  # noqa: E402

SITE = "blocks.0.mlp.hook_post"
N_DOCS = 64
SEED = 1234
REL_THRESHOLD = 0.5
ABS_THRESHOLD = 0.25
EVAL_DOCS = 512
EVAL_SEED = 4321
OUT_DIR = ROOT / "interp_widget" / "zoo" / "polysemantic"


def controlled_documents(n_docs: int = N_DOCS, seed: int = SEED) -> tuple[torch.Tensor, torch.Tensor]:
    """Documents ``[(1 + 32) * n_docs, 25]``: ``n_docs`` baseline documents, then ``n_docs`` per feature with only it active.

    Returns the tokens and the group of each document (-1 for the baseline, else the feature index).
    """
    g = torch.Generator().manual_seed(seed)
    active: list[list[int | str]] = [[]] * n_docs + [[f] for f in range(lang.N_FEATURES) for _ in range(n_docs)]
    toks, _ = lang.sample(len(active), g, active=active)
    group = torch.arange(-1, lang.N_FEATURES).repeat_interleave(n_docs)
    return toks, group


def feature_directions(acts: torch.Tensor, group: torch.Tensor) -> torch.Tensor:
    """``[32, d_mlp]``: per feature, mean activation (documents of its group, word positions) minus the baseline's."""
    per_doc = acts[:, 1:].mean(dim=1)  # [docs, d_mlp], <bos> left out
    base = per_doc[group == -1].mean(dim=0)
    return torch.stack([per_doc[group == f].mean(dim=0) - base for f in range(lang.N_FEATURES)])


def polysemantic_neurons(directions: torch.Tensor) -> dict[int, list[int]]:
    """Neuron -> the features it responds to (strongest first), for neurons responding to two or more."""
    resp = directions.T  # [d_mlp, F]
    out: dict[int, list[int]] = {}
    for n in range(resp.shape[0]):
        top = float(resp[n].max())
        feats = [f for f in resp[n].argsort(descending=True).tolist()
                 if resp[n, f] >= max(REL_THRESHOLD * top, ABS_THRESHOLD)]
        if len(feats) >= 2:
            out[n] = feats
    return out


def losses(ht: Any) -> dict[str, float]:
    """Next-word losses (nats): the model's, an oracle's that knows the active features, the unigram's."""
    g = torch.Generator().manual_seed(EVAL_SEED)
    toks, mask = lang.sample(EVAL_DOCS, g)
    with torch.no_grad():
        logp = ht(toks).log_softmax(-1)[:, :-1]
    targets = toks[:, 1:]
    nll = -logp.gather(2, targets[..., None])[..., 0]
    probs = lang.next_word_distribution(mask)  # what a model that knew the active features would say
    oracle = -probs.gather(1, targets).log()
    counts = torch.bincount(targets.flatten(), minlength=probs.shape[1]).float()
    unigram = -(counts / counts.sum())[targets].log()
    return {"model": float(nll.mean()), "model_last_word": float(nll[:, -1].mean()),
            "oracle": float(oracle.mean()), "unigram": float(unigram.mean())}


def evaluate(ht: Any) -> dict[str, Any]:
    toks, group = controlled_documents()
    with torch.no_grad():
        _, cache = ht.run_with_cache(toks, names_filter=SITE)
    directions = feature_directions(cache[SITE], group)
    poly = polysemantic_neurons(directions)
    return {"loss": losses(ht), "directions": directions, "polysemantic": poly}


def write_card(out: Path, results: dict[str, Any], training: dict[str, Any]) -> None:
    dirs: torch.Tensor = results["directions"]
    poly: dict[int, list[int]] = results["polysemantic"]
    names = lang.FEATURE_NAMES
    card = {
        "model": lang.NAME,
        "reproduce": "python scripts/train_polysemantic.py",
        "training": training,
        "language": {"features": {k: list(v) for k, v in lang.FEATURES.items()},
                     "filler": list(lang.FILLER), "seq_words": lang.SEQ_WORDS, "n_active_probs": list(lang.N_ACTIVE_PROBS),
                     "p_filler": lang.P_FILLER},
        "loss": {k: round(v, 4) for k, v in results["loss"].items()},
        "features": {"site": SITE, "n_docs": N_DOCS, "seed": SEED, "rel_threshold": REL_THRESHOLD,
                     "abs_threshold": ABS_THRESHOLD,
                     "directions": {names[f]: [round(float(x), 4) for x in dirs[f]] for f in range(len(names))}},
        "polysemantic_neurons": {str(n): [names[f] for f in feats] for n, feats in poly.items()},
    }
    (out / "card.json").write_text(json.dumps(card, indent=1) + "\n")
    (out / "MODEL_CARD.md").write_text(markdown(card, dirs))


def markdown(card: dict[str, Any], dirs: torch.Tensor) -> str:
    names = lang.FEATURE_NAMES
    loss = card["loss"]
    lines = [
        f"# {lang.NAME}",
        "",
        "A 1-layer transformer (d_model 64, one attention head of width 8, **16 ReLU MLP neurons**) trained on a "
        "synthetic language with "
        f"**{len(names)} planted features**: more features than neurons, so neurons are polysemantic.",
        "",
        f"Reproduce: `{card['reproduce']}` (seed {card['training']['seed']}, one CPU thread); "
        "this card: `python scripts/polysemantic_card.py`; `tests/test_polysemantic_card.py` recomputes it.",
        "",
        "## The language",
        "",
        f"A document is `<bos>` and {lang.SEQ_WORDS} words. 0, 1 or 2 features are active (probabilities "
        f"{', '.join(map(str, lang.N_ACTIVE_PROBS))}). Each word is a filler word ({', '.join(lang.FILLER)}) with "
        f"probability {lang.P_FILLER}, else a word of an active feature. The features and their words:",
        "",
        ", ".join(f"**{k}** ({' '.join(v)})" for k, v in lang.FEATURES.items()) + ".",
        "",
        f"Next-word loss (nats, 512 fresh documents): model {loss['model']} (last word {loss['model_last_word']}), "
        f"an oracle that knows the active features from the start {loss['oracle']}, unigram {loss['unigram']}.",
        "",
        "## How features are measured",
        "",
        f"The **planted direction** of a feature in neuron space is the mean of `{card['features']['site']}` over "
        f"{N_DOCS} documents where only that feature is active, minus the mean over {N_DOCS} baseline documents "
        f"(no active feature: filler words only); means over every word position (not `<bos>`), seed {SEED}. "
        "The **response** of neuron n to a feature is entry n of its direction. A neuron **responds** to a feature "
        f"when the response is at least {REL_THRESHOLD} x its largest response and at least {ABS_THRESHOLD}; it is "
        "**polysemantic** when it responds to two or more features. Planted features are unrelated by construction "
        "(disjoint words, drawn independently).",
        "",
        "## Polysemantic neurons",
        "",
        "| neuron | features (response) |",
        "|---|---|",
    ]
    for n, feats in card["polysemantic_neurons"].items():
        cells = ", ".join(f"{f} ({float(dirs[names.index(f), int(n)]):.2f})" for f in feats)
        lines.append(f"| `{card['features']['site']}:{n}` | {cells} |")
    mono = [n for n in range(dirs.shape[1]) if str(n) not in card["polysemantic_neurons"]]
    lines += ["", f"Other neurons (monosemantic or silent by this measure): {', '.join(map(str, mono)) or 'none'}.",
              ""]
    return "\n".join(lines)


def main() -> None:
    from interp_widget.models.format import load_hooked_transformer

    torch.set_num_threads(1)
    ht, _ = load_hooked_transformer(OUT_DIR)
    old = json.loads((OUT_DIR / "card.json").read_text())
    write_card(OUT_DIR, evaluate(ht), old["training"])
    print(f"wrote {OUT_DIR / 'card.json'} and MODEL_CARD.md")


if __name__ == "__main__":
    main()
