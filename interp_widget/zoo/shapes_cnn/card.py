"""Measure ``shapes-cnn``'s units and write its model card (``card.json`` + ``MODEL_CARD.md``).

Everything here uses plain forward hooks and the stimulus functions, not ``interp_widget.tuning``;
``tests/test_vision_shapes_cnn.py`` recomputes the card and checks its claims by other routes
(line stimuli through ``tuning``, feature visualisation).

* **Orientation** of every ``conv1`` and ``conv2`` channel, from full-field *gratings*
  (orientation x frequency x phase; the response is the channel's spatial maximum, best over phase
  at the unit's preferred frequency, minus its response to uniform grey). For ``conv1`` the card also gives the orientation read off the *weights*
  (the peak of the kernel's power spectrum): no stimulus at all. A unit is *orientation-tuned* when
  its orientation selectivity ``(R_pref - R_orth) / (|R_pref| + |R_orth|)`` is at least
  :data:`MIN_OSI` and, for ``conv1``, the weights and the gratings agree within 15 degrees.
* **Curvature** of every ``conv2`` and ``conv3`` channel, from arcs (curvature x orientation); a
  unit is *curvature-tuned* when its best curvature is at least :data:`MIN_CURVATURE` and it
  responds at least :data:`MIN_CURVE_RATIO` times more to that curve than to any straight line
  (responses minus the response to the blank background).
"""

from __future__ import annotations

import json
from typing import Any

import torch

from interp_widget.analysis.vision import stimuli
from interp_widget.analysis.vision.orientation import angle_diff, kernel_orientation
from interp_widget.zoo import shapes_cnn

SIZE = 32
ORIENTATIONS = [7.5 * i for i in range(24)]
FREQUENCIES = [0.08, 0.12, 0.16, 0.2, 0.25]
PHASES = [45.0 * i for i in range(8)]
CURVATURES = [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3]
CURVE_ORIENTATIONS = [30.0 * i for i in range(12)]
MIN_OSI = 0.6
MIN_CURVATURE = 0.1
MIN_CURVE_RATIO = 1.5
REPRODUCE = "python scripts/train_shapes_cnn.py"


def layer_max(net: torch.nn.Module, images: torch.Tensor, layers: list[str]) -> dict[str, torch.Tensor]:
    """``layer -> [n, channels]``: each channel's spatial maximum, via forward hooks."""
    out: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
    mods = dict(net.named_modules())
    handles = [mods[name].register_forward_hook(
        lambda _m, _i, o, name=name: out[name].append(o.detach().amax(dim=(2, 3)))) for name in layers]
    try:
        with torch.no_grad():
            for i in range(0, len(images), 256):
                net(images[i:i + 256])
    finally:
        for h in handles:
            h.remove()
    return {name: torch.cat(v) for name, v in out.items()}


def grating_tuning(net: torch.nn.Module, layers: list[str]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """``layer -> (responses [channels, len(ORIENTATIONS)], preferred frequency [channels])``.

    A response is the best over phase at the unit's preferred frequency, minus its response to a
    uniform grey image (the grating's mean).
    """
    imgs = torch.stack([stimuli.grating(o, f, p, size=SIZE) for o in ORIENTATIONS for f in FREQUENCIES for p in PHASES])
    acts = layer_max(net, imgs, layers)
    grey = layer_max(net, torch.full((1, 3, SIZE, SIZE), 0.5), layers)
    out = {}
    for k, v in acts.items():
        r = v.view(len(ORIENTATIONS), len(FREQUENCIES), len(PHASES), -1).amax(2) - grey[k][0]  # [O, F, C]
        f = r.amax(0).argmax(0)  # [C]
        out[k] = (r.gather(1, f.view(1, 1, -1).expand(len(ORIENTATIONS), 1, -1))[:, 0].t(),
                  torch.tensor(FREQUENCIES)[f])
    return out


def curve_tuning(net: torch.nn.Module, layers: list[str]) -> dict[str, torch.Tensor]:
    """``layer -> [channels, len(CURVATURES), len(CURVE_ORIENTATIONS)]``: arcs 20 px long through the
    centre, minus the response to the blank (black) background."""
    imgs = torch.stack([stimuli.curve(c, o, size=SIZE, length=20.0, width=1.5)
                        for c in CURVATURES for o in CURVE_ORIENTATIONS])
    acts = layer_max(net, imgs, layers)
    blank = layer_max(net, torch.zeros(1, 3, SIZE, SIZE), layers)
    return {k: (v - blank[k][0]).view(len(CURVATURES), len(CURVE_ORIENTATIONS), -1).permute(2, 0, 1)
            for k, v in acts.items()}


def _osi(curve: torch.Tensor, i: int) -> float:
    orth = curve[(i + len(ORIENTATIONS) // 2) % len(ORIENTATIONS)]
    return float((curve[i] - orth) / (curve[i].abs() + orth.abs()).clamp_min(1e-6))


def measure(net: torch.nn.Module) -> dict[str, Any]:
    """Every number of the card (deterministic for given weights)."""
    grat = grating_tuning(net, ["conv1", "conv2"])
    curv = curve_tuning(net, ["conv2", "conv3"])
    w1 = dict(net.named_modules())["conv1"].weight
    orientation: list[dict[str, Any]] = []
    for layer, (resp, freq) in grat.items():
        for c in range(resp.shape[0]):
            i = int(resp[c].argmax())
            row: dict[str, Any] = {"unit": f"{layer}:{c}", "grating_orientation": ORIENTATIONS[i],
                                   "grating_frequency": float(freq[c]),
                                   "osi": round(_osi(resp[c], i), 4), "peak": round(float(resp[c, i]), 4)}
            tuned = row["osi"] >= MIN_OSI and row["peak"] > 0
            if layer == "conv1":
                ori, kfreq = kernel_orientation(w1[c])
                row["weight_orientation"] = round(ori, 2)
                row["weight_frequency"] = round(kfreq, 4)
                tuned = tuned and kfreq > 0 and float(angle_diff(ori, ORIENTATIONS[i])) <= 15
            row["tuned"] = bool(tuned)
            orientation.append(row)
    curvature: list[dict[str, Any]] = []
    for layer, resp in curv.items():
        for c in range(resp.shape[0]):
            best_per_k = resp[c].amax(1)
            k = int(best_per_k.argmax())
            straight = float(best_per_k[0])
            peak = float(best_per_k[k])
            ratio = peak / straight if straight > 1e-6 else 999.0 if peak > 0 else 0.0
            curvature.append({
                "unit": f"{layer}:{c}", "curvature": CURVATURES[k],
                "curve_orientation": CURVE_ORIENTATIONS[int(resp[c, k].argmax())],
                "peak": round(peak, 4), "straight": round(straight, 4),
                "ratio": round(min(ratio, 999.0), 3),
                "tuned": bool(CURVATURES[k] >= MIN_CURVATURE and ratio >= MIN_CURVE_RATIO and peak > 0),
            })
    return {"orientation": orientation, "curvature": curvature}


def write_card(training: dict[str, Any] | None = None) -> dict[str, Any]:
    """Measure the shipped weights and write ``card.json`` and ``MODEL_CARD.md`` (training stats kept if None)."""
    path = shapes_cnn.HERE / "card.json"
    if training is None and path.is_file():
        training = json.loads(path.read_text()).get("training")
    card = {"name": shapes_cnn.NAME, "classes": stimuli.CLASSES, "training": training or {},
            "settings": {"size": SIZE, "orientations": ORIENTATIONS, "frequencies": FREQUENCIES, "phases": PHASES,
                         "curvatures": CURVATURES, "curve_orientations": CURVE_ORIENTATIONS, "min_osi": MIN_OSI,
                         "min_curvature": MIN_CURVATURE, "min_curve_ratio": MIN_CURVE_RATIO},
            **measure(shapes_cnn.load_module())}
    path.write_text(json.dumps(card, indent=1) + "\n")
    (shapes_cnn.HERE / "MODEL_CARD.md").write_text(markdown(card))
    return card


def markdown(card: dict[str, Any]) -> str:
    tr = card["training"]
    lines = [
        "# shapes-cnn", "",
        "A 3-layer CNN (conv1 16 5x5, conv2 32 3x3, conv3 48 3x3; ReLU, 2x2 max-pooling, global average pooling,",
        f"linear classifier) trained to classify {len(card['classes'])} kinds of synthetic 32x32 images drawn by",
        "`interp_widget.analysis.vision.stimuli.ShapesDataset`: straight lines or gratings in 8 orientation bins,",
        "curves in 2 curvature x 4 orientation bins, rings and textures. The task forces orientation- and",
        "curvature-selective units. Orientation is in degrees, counter-clockwise from horizontal, mod 180.", "",
        f"Reproduce: `{REPRODUCE}` (seed {tr.get('seed', '?')}, one CPU thread, {tr.get('seconds', '?')} s).", "",
        f"Accuracy: {tr.get('val_accuracy', float('nan')):.3f} on held-out images "
        f"({tr.get('train_accuracy', float('nan')):.3f} on training images).", "",
        "## Orientation-tuned units", "",
        "Preferred orientation from full-field gratings (best phase at the preferred frequency, minus the",
        "response to uniform grey); for conv1 also read off the kernel's power spectrum (no stimulus).",
        f"OSI: (R_pref - R_orth) / (|R_pref| + |R_orth|); listed when OSI >= {card['settings']['min_osi']}"
        " (and, for conv1, weights and gratings agree within 15 degrees).", "",
        "| unit | gratings (deg) | weights (deg) | OSI |", "|---|---|---|---|",
    ]
    for r in card["orientation"]:
        if r["tuned"]:
            w = f"{r['weight_orientation']:.1f}" if "weight_orientation" in r else "-"
            lines.append(f"| `{r['unit']}` | {r['grating_orientation']:.1f} | {w} | {r['osi']:.2f} |")
    lines += ["", "## Curvature-tuned units", "",
              "Arcs 20 px long through the centre; best curvature (1/px), the arc's orientation there (tangent",
              "direction, mod 360: which way it opens), and the response ratio to the best straight line",
              "(both minus the blank background's response; 999 means no response to straight lines).", "",
              "| unit | curvature (1/px) | orientation (deg) | ratio to straight |", "|---|---|---|---|"]
    for r in card["curvature"]:
        if r["tuned"]:
            lines.append(f"| `{r['unit']}` | {r['curvature']:.2f} | {r['curve_orientation']:.0f} | {r['ratio']:.2f} |")
    lines += ["", "Every number above is recomputed from the weights by `tests/test_vision_shapes_cnn.py`.", ""]
    return "\n".join(lines)
