"""Tuning curves: sweep one stimulus parameter and record each unit's response (the joint tuning view).

Vision: ``tuning(net, ["conv2:5", "conv2:9"], "line", range(0, 180, 5))`` renders a line at each
orientation (:mod:`.stimuli`; any other parameter is fixed by keyword, e.g. ``width=2``) and reads
each channel's spatial maximum (``reduce="max"``), mean, centre, or a neuron ``"conv2:5@3,4"``.
``stimulus`` may also be a function ``value -> image [3, H, W]``.

Language models (a :class:`Model` with a tokenizer): ``stimulus`` is a template prompt with ``{}``
(``"The number {} is"``) and ``values`` the strings or numbers put in it (``param`` "token" or
"number"); or a plain prompt with ``param="position"`` to read the units at each of its positions.
Units are ``"hook_name:index"`` (``"blocks.1.hook_resid_post:7"``, the index into the trailing
dimensions, read at ``position``, default the last token) or ``"logits:TOKEN_ID"``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from interp_widget.analysis.sweeps import Progress
from interp_widget.analysis.vision import stimuli as stim
from interp_widget.analysis.vision.results import TuningCurves
from interp_widget.analysis.vision.units import (
    Unit,
    check_unit,
    layer_outputs,
    model_device,
    probe_shapes,
    reduce,
    torch_module,
)
from interp_widget.errors import SiteIndexError

Tensor = torch.Tensor


def tuning(
    model: Any,
    units: str | Sequence[str],
    stimulus: str | Callable[[Any], Tensor],
    values: Sequence[Any] | Tensor | None = None,
    *,
    param: str | None = None,
    reduce: str = "max",
    size: int = 32,
    position: int = -1,
    batch: int = 128,
    progress: Progress | None = None,
    **params: Any,
) -> TuningCurves:
    """Each unit's response as ``param`` of ``stimulus`` takes ``values``; see the module docstring."""
    unit_list = [units] if isinstance(units, str) else list(units)
    if not unit_list:
        msg = "tuning needs at least one unit"
        raise ValueError(msg)
    if isinstance(stimulus, str) and stimulus not in stim.STIMULI and _is_language_model(model):
        return _lm_tuning(model, unit_list, stimulus, values, param=param, position=position, progress=progress)
    if values is None:
        msg = "tuning needs the parameter values to sweep (values=...)"
        raise ValueError(msg)
    return _vision_tuning(model, unit_list, stimulus, values, param=param, mode=reduce, size=size,
                          batch=batch, progress=progress, params=params)


# --- vision ------------------------------------------------------------------------------------------
def _vision_tuning(model: Any, units: list[str], stimulus: str | Callable[[Any], Tensor], values: Any, *,
                   param: str | None, mode: str, size: int, batch: int, progress: Progress | None,
                   params: dict[str, Any]) -> TuningCurves:
    net = torch_module(model)
    parsed = [Unit.parse(u) for u in units]
    layers = list(dict.fromkeys(u.layer for u in parsed))
    shapes = probe_shapes(net, layers, size)
    for u in parsed:
        check_unit(u, shapes[u.layer])
    vals = [float(v) for v in values] if not isinstance(values, Tensor) else values.flatten().tolist()
    if callable(stimulus):
        name, p, unit_of = getattr(stimulus, "__name__", "stimulus"), param or "value", ""
        render = stimulus
    else:
        if stimulus not in stim.STIMULI:
            stim.make(stimulus)  # raises the "unknown stimulus" error
        name = stimulus
        p = param or stim.STIMULI[stimulus][1]
        unit_of = stim.PARAM_UNITS.get(p, "")
        fixed = {"size": size, **params} if stimulus != "texture" or "size" not in params else params

        def render(v: Any) -> Tensor:
            return stim.make(name, **{**fixed, p: v})

    images = torch.stack([render(v) for v in vals]).clamp(0, 1)
    dev = model_device(net)
    acts = torch.zeros(len(parsed), len(vals))
    was = net.training
    net.eval()
    try:
        for start in range(0, len(vals), batch):
            out = layer_outputs(net, images[start:start + batch].to(dev), layers)
            for k, u in enumerate(parsed):
                acts[k, start:start + batch] = reduce(out[u.layer], u, mode).float().cpu()
            if progress is not None:
                progress(min(start + batch, len(vals)), len(vals))
    finally:
        net.train(was)

    def detail(i: int) -> dict[str, Tensor]:
        was_d = net.training
        net.eval()
        try:
            return {k: v[0].cpu() for k, v in layer_outputs(net, images[i:i + 1].to(dev), layers).items()}
        finally:
            net.train(was_d)

    return TuningCurves(param=p, unit_of_param=unit_of, values=torch.tensor(vals), units=[u.label for u in parsed],
                        activations=acts, stimuli=images, detail=detail,
                        meta={"stimulus": name, "reduce": mode, "size": size, "params": dict(params)})


# --- language models ---------------------------------------------------------------------------------
def _is_language_model(model: Any) -> bool:
    return getattr(model, "backend", None) is not None and getattr(model, "tokenizer", None) is not None


def _lm_units(units: list[str]) -> list[Unit]:
    out = []
    for u in units:
        p = Unit.parse(u)
        if p.channel is None or p.x is not None:
            msg = f"a language-model unit is 'hook_name:index' (e.g. 'blocks.1.hook_resid_post:7'), not {u!r}"
            raise ValueError(msg)
        out.append(p)
    return out


def _read(tokens: Tensor, model: Any, units: list[Unit], position: int) -> tuple[Tensor, dict[str, Tensor]]:
    """``[n_units, batch]`` at ``position`` (or ``[n_units, batch, pos]`` when position is None) + the cache."""
    sites = list(dict.fromkeys(u.layer for u in units if u.layer != "logits"))
    res = model.run(tokens, capture=sites)
    layers = {s: res[s] for s in sites}
    if res.logits is not None:
        layers["logits"] = res.logits
    rows = []
    for u in units:
        if u.layer not in layers:
            msg = f"{u.layer!r} is not available from this model's run"
            raise SiteIndexError(msg)
        a = layers[u.layer]
        flat = a.flatten(2) if a.dim() > 3 else a  # [b, pos, features]
        n = flat.shape[-1]
        if not 0 <= int(u.channel or 0) < n:
            msg = f"index {u.channel} is out of range: {u.layer} has {n} features per position (0..{n - 1})"
            raise SiteIndexError(msg)
        rows.append(flat[..., u.channel].float())
    return torch.stack(rows), layers


def _lm_tuning(model: Any, units: list[str], stimulus: str, values: Any, *, param: str | None, position: int,
               progress: Progress | None) -> TuningCurves:
    parsed = _lm_units(units)
    if param == "position" or "{}" not in stimulus:
        tokens = model.to_tokens(stimulus)
        n_pos = tokens.shape[1]
        pos = list(range(n_pos)) if values is None else [int(v) for v in values]
        for q in pos:
            if not -n_pos <= q < n_pos:
                msg = f"position {q} is out of range: the prompt has {n_pos} tokens (0..{n_pos - 1})"
                raise SiteIndexError(msg)
        with torch.no_grad():
            acts, cache = _read(tokens, model, parsed, position)
        strs = model.to_str_tokens(tokens)
        prompts = ["".join(strs[: q % n_pos + 1]) for q in pos]

        def detail_pos(i: int) -> dict[str, Tensor]:
            q = pos[i] % n_pos
            return {k: v[0, q].cpu() for k, v in cache.items()}

        return TuningCurves(param="position", unit_of_param="", values=torch.tensor(pos, dtype=torch.float32),
                            units=[u.label for u in parsed], activations=acts[:, 0, pos].cpu(), stimuli=prompts,
                            detail=detail_pos, meta={"prompt": stimulus, "tokens": strs})
    if values is None:
        msg = "tuning a template prompt needs the values to put in it (values=...)"
        raise ValueError(msg)
    vals = list(values)
    numeric = all(isinstance(v, (int, float)) for v in vals)
    p = param or ("number" if numeric else "token")
    prompts = [stimulus.format(v) for v in vals]
    toks = [model.to_tokens(s) for s in prompts]
    acts = torch.zeros(len(parsed), len(vals))
    with torch.no_grad():
        if len({t.shape[1] for t in toks}) == 1:  # one batched run
            a, _ = _read(torch.cat(toks), model, parsed, position)
            acts = a[:, :, position].cpu()
            if progress is not None:
                progress(len(vals), len(vals))
        else:  # prompts of different lengths: one run each
            for i, t in enumerate(toks):
                a, _ = _read(t, model, parsed, position)
                acts[:, i] = a[:, 0, position].cpu()
                if progress is not None:
                    progress(i + 1, len(vals))

    def detail(i: int) -> dict[str, Tensor]:
        with torch.no_grad():
            _, cache = _read(toks[i], model, parsed, position)
        return {k: v[0].cpu() for k, v in cache.items()}

    x = torch.tensor([float(v) for v in vals]) if numeric else torch.arange(len(vals), dtype=torch.float32)
    return TuningCurves(param=p, unit_of_param="", values=x, units=[u.label for u in parsed], activations=acts,
                        stimuli=prompts, detail=detail,
                        meta={"template": stimulus, "position": position, "labels": [str(v) for v in vals]})


__all__ = ["tuning"]
