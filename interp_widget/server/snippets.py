"""Code for a new cell from a selection in the panel: a head, a neuron, a site, a result's node.

The code names the object by a variable the user has (``model``), or, when none is bound to it,
by ``iw.server.get("model-1")``. Selections are checked against the object first, so an
out-of-range head is an error reply, never code that fails later.
"""

from __future__ import annotations

from typing import Any

from interp_widget.errors import SiteIndexError, UnknownSiteError
from interp_widget.server.messages import SnippetTarget
from interp_widget.server.registry import Entry


def reference(entry: Entry, names: list[str], alias: str | None) -> tuple[str, str]:
    """(prelude, expression) naming the entry's object in user code."""
    if names:
        return "", sorted(names, key=lambda n: (len(n), n))[0]
    prelude = "" if alias else "import interp_widget as iw\n"
    return prelude, f'{alias or "iw"}.server.get("{entry.id}")'


def snippet(entry: Entry, obj: Any, target: SnippetTarget, *, names: list[str], alias: str | None) -> tuple[str, str]:
    """(code, description) for ``target`` in ``entry``'s object."""
    prelude, ref = reference(entry, names, alias)
    if entry.kind == "model":
        code, desc = _model(obj, ref, target, alias or "iw")
    elif entry.kind == "view":
        code, desc = _view(obj, ref, target)
    elif entry.kind == "trace":
        code, desc = _trace(obj, ref, target)
    else:
        code, desc = _result(obj, ref, target)
    return prelude + code + "\n", desc


# --- models ---------------------------------------------------------------------------------------
def _model(model: Any, ref: str, t: SnippetTarget, iw: str) -> tuple[str, str]:
    from interp_widget.tracing.sites import Site

    name = model.name
    if t.site is not None:
        site = model.check_site(Site.parse(t.site, head=t.head, position=t.position))
        what = f"site {site}"
    elif t.neuron is not None:
        if t.layer is None:
            raise SiteIndexError("a neuron needs its layer")
        d_mlp = model.spec.d_mlp
        if not d_mlp:
            msg = f"{name} has no MLP neurons (it is attention-only)"
            raise UnknownSiteError(msg)
        if t.neuron >= d_mlp:
            msg = f"neuron {t.neuron} is out of range: {name} has {d_mlp} MLP neurons per layer (0..{d_mlp - 1})"
            raise SiteIndexError(msg)
        site = model.check_site(Site("mlp.hook_post", t.layer, None, t.position))
        what = f"neuron {t.neuron} of layer {t.layer}"
    elif t.layer is not None and t.head is not None:
        site = model.check_site(Site("attn.hook_pattern", t.layer, t.head, t.position))
        what = f"head L{t.layer}H{t.head}"
    else:
        msg = "say what to write code for: a head (layer and head), a neuron (layer and neuron) or a site"
        raise ValueError(msg)

    lines: list[str] = []
    if t.text is not None:
        prompt = repr(t.text)
    else:
        from interp_widget.server.render import default_tokens

        lines += ["import torch", "", f"tokens = torch.tensor([{default_tokens(model)}])"]
        prompt = "tokens"
    index = _index(site, extra=t.neuron)
    var = "neuron" if t.neuron is not None else "pattern" if site.component == "attn.hook_pattern" else "act"
    lines += [
        f"# {what} of {name!r}",
        f"run = {ref}.run({prompt}, capture=[{site.hook_name!r}])",
        f"{var} = run[{site.hook_name!r}][{index}]",
    ]
    if site.component == "attn.hook_pattern" and site.head is not None:
        view_prompt = prompt if t.text is not None else "tokens[0].tolist()"
        lines.append(f"{iw}.attention({ref}, {view_prompt}, layer={site.layer}, head={site.head})")
    else:
        lines.append(var)
    return "\n".join(lines), f"{what} of {name}"


def _index(site: Any, *, extra: int | None = None) -> str:
    """Index of prompt 0 of a captured tensor at ``site``: its head / position, then ``extra`` on the last axis."""
    wanted: dict[int, str] = {}
    if site.head is not None and site.head_axis is not None:
        wanted[site.head_axis] = str(site.head)
    if site.position is not None:
        wanted[site.pos_axis] = str(site.position)
    last = max(wanted, default=0)
    parts = ["0", *(wanted.get(axis, ":") for axis in range(1, last + 1))]
    if extra is not None:  # a neuron: the last axis of [batch, pos, d_mlp]
        parts = ["0", wanted.get(site.pos_axis, ":"), str(extra)]
    return ", ".join(parts)


# --- views ------------------------------------------------------------------------------------------
def _view(w: Any, ref: str, t: SnippetTarget) -> tuple[str, str]:
    if not hasattr(w, "layer") or not hasattr(w, "head"):
        return ref, f"the {type(w).__name__}"
    prompt = t.prompt if t.prompt is not None else int(getattr(w, "prompt", 0))
    layer = t.layer if t.layer is not None else int(w.layer)
    head = t.head if t.head is not None else int(w.head)
    data = getattr(w, "data", None)
    if data is not None and hasattr(data, "check_index"):
        data.check_index(prompt=prompt, layer=layer, head=head)
    lines = [f"{ref}.prompt, {ref}.layer, {ref}.head = {prompt}, {layer}, {head}  # select L{layer}H{head} in the view"]
    if data is not None and hasattr(data, "patterns"):
        lines.append(f"pattern = {ref}.data.patterns[{prompt}][{layer}, {head}]  # float16 [query_pos, key_pos]")
        lines.append("pattern")
    return "\n".join(lines), f"head L{layer}H{head} of prompt {prompt} in the view"


# --- traces --------------------------------------------------------------------------------------------
def _trace(run: Any, ref: str, t: SnippetTarget) -> tuple[str, str]:
    from interp_widget.tracing.sites import Site

    cache = getattr(run, "cache", {}) or {}
    if t.site is None:
        if t.layer is not None and t.head is not None:
            t = t.model_copy(update={"site": f"blocks.{t.layer}.attn.hook_pattern"})
        else:
            return ref, "the run"
    site = Site.parse(t.site or "", head=t.head, position=t.position)
    if site.hook_name not in cache:
        known = ", ".join(cache) or "none"
        msg = f"this run did not capture {site.hook_name!r}; it captured: {known}"
        raise UnknownSiteError(msg)
    shape = tuple(cache[site.hook_name].shape)
    if site.head is not None and site.head_axis is not None and site.head >= shape[site.head_axis]:
        msg = f"head {site.head} is out of range: the run has {shape[site.head_axis]} heads (0..{shape[site.head_axis] - 1})"
        raise SiteIndexError(msg)
    if site.position is not None and site.position >= shape[site.pos_axis]:
        msg = f"position {site.position} is out of range: the run has {shape[site.pos_axis]} positions"
        raise SiteIndexError(msg)
    return f"{ref}[{site.hook_name!r}][{_index(site)}]", f"{site} in the run"


# --- results -------------------------------------------------------------------------------------------
def _result(res: Any, ref: str, t: SnippetTarget) -> tuple[str, str]:
    if isinstance(getattr(res, "scores", None), dict) and hasattr(res, "n_layers"):  # HeadScores
        return _head_scores(res, ref, t)
    axes = tuple(getattr(res, "axes", ()) or ())
    values = getattr(res, "values", None)
    if not axes or values is None:
        return ref, f"the {type(res).__name__}"
    index = dict(t.index or {})
    for axis, value in (("layer", t.layer), ("head", t.head), ("pos", t.position), ("position", t.position)):
        if value is not None and axis in axes and axis not in index:
            index[axis] = value
    if not index:
        return ref, f"the {type(res).__name__}"
    unknown = sorted(set(index) - set(axes))
    if unknown:
        msg = f"the result has no axis {', '.join(map(repr, unknown))}; its axes are {', '.join(axes)}"
        raise SiteIndexError(msg)
    missing = [a for a in axes if a not in index]
    if missing:
        msg = f"give an index for every axis of the result ({', '.join(axes)}); missing: {', '.join(missing)}"
        raise SiteIndexError(msg)
    shape = tuple(values.shape)
    labels = getattr(res, "labels", {}) or {}
    names: list[str] = []
    for axis, n in zip(axes, shape, strict=False):
        i = index[axis]
        if i >= n:
            msg = f"{axis} {i} is out of range: the result has {n} along {axis} (0..{n - 1})"
            raise SiteIndexError(msg)
        lab = labels.get(axis, [])
        names.append(f"{axis}={lab[i]}" if i < len(lab) else f"{axis}={i}")
    idx = ", ".join(str(index[a]) for a in axes)
    return f"{ref}.values[{idx}]  # {', '.join(names)}", f"{', '.join(names)} of the {getattr(res, 'kind', 'result')}"


def _head_scores(res: Any, ref: str, t: SnippetTarget) -> tuple[str, str]:
    kinds = list(res.scores)
    kind = t.score or (kinds[0] if kinds else "")
    if kind not in res.scores:
        msg = f"no {kind!r} scores; these scores have kinds {kinds}"
        raise KeyError(msg)
    if t.layer is None or t.head is None:
        return f"{ref}[{kind!r}]", f"{kind} scores of every head"
    for name, value, n in (("layer", t.layer, res.n_layers), ("head", t.head, res.n_heads)):
        if value >= n:
            msg = f"{name} {value} is out of range: the scores have {n} {name}s (0..{n - 1})"
            raise SiteIndexError(msg)
    return f"{ref}[{kind!r}][{t.layer}, {t.head}]  # L{t.layer}H{t.head}", f"{kind} score of head L{t.layer}H{t.head}"
