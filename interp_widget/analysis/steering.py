"""Steering: add, scale or clamp a direction (an SAE feature or any vector) at a site while generating.

>>> res = iw.steer(model, "the cat", "blocks.0.hook_resid_post", vec, op="add", strength=4.0)  # doctest: +SKIP
>>> res.base_text, res.steered_text                                                           # doctest: +SKIP

A *direction* is a vector of the site's width (``d_model`` for the residual stream, ``d_mlp`` for
``mlp.hook_post``), :func:`mean_difference` of two prompt sets, or an SAE feature: ``(sae, index)``
or :func:`sae_feature` (``sae`` a SAELens SAE, or anything holding one as ``.sae``). The ops:

* ``add``: a vector: ``x + strength * v``; a feature: its activation ``+ strength``.
* ``scale``: a vector: the component of ``x`` along ``v`` times ``strength``; a feature: its activation
  times ``strength``.
* ``clamp``: a vector: the component along ``v`` set to ``strength``; a feature: its activation set to
  ``strength``.

A feature is changed through the SAE: encode, change the one activation, decode, and add the SAE's error
term (``x - decode(encode(x))``), so only that feature changes; in effect the site gets
``decode(f') - decode(f)`` added. Every op is applied as the backend's ``add`` intervention on the steered
batch rows (:mod:`interp_widget.tracing`); ops that read the activation first capture it in a pass that
stops at the site. ``positions`` picks where: ``"all"`` (every position, generated ones too),
``"prompt"``, or a list of prompt positions (negative counts from the prompt's end).

Generation runs without a KV cache (the whole sequence each step; fine for small models). Base and
steered generations run as rows of one batch and share their random numbers (each step draws one
uniform per sample and both rows sample by inverse CDF with it), so the two differ only where steering
changed the distribution. ``progress``: a callable ``progress(done, total)`` called after each token
(an exception it raises stops the run), True (a tqdm bar) or None.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import torch

from interp_widget.analysis.activation_store import progress_reporter
from interp_widget.errors import InputMismatchError, InterventionError, SiteIndexError
from interp_widget.models.loading import load
from interp_widget.tracing.base import Intervention
from interp_widget.tracing.sites import Site

if TYPE_CHECKING:
    from interp_widget.models.model import Model

Op = Literal["add", "scale", "clamp"]
OPS: tuple[str, ...] = ("add", "scale", "clamp")
Positions = Literal["all", "prompt"] | Sequence[int]
Progress = Callable[[int, int], Any]
#: site components whose activations are ``[batch, pos, width]`` (the ones a direction can steer)
STEERABLE = ("hook_resid_pre", "hook_resid_mid", "hook_resid_post", "hook_attn_out", "hook_mlp_out",
             "mlp.hook_pre", "mlp.hook_post", "hook_embed", "hook_pos_embed", "ln_final.hook_normalized")


@dataclass(frozen=True)
class SAEFeature:
    """Feature ``index`` of a SAELens ``sae`` (encode / decode / ``W_dec``), read at ``site``."""

    sae: Any
    index: int
    site: str | None = None

    @property
    def direction(self) -> torch.Tensor:
        """The feature's decoder row (``W_dec[index]``)."""
        return self.sae.W_dec[self.index].detach()

    @property
    def label(self) -> str:
        return f"SAE feature {self.index}"


def unwrap_sae(obj: Any) -> Any:
    """The SAELens module inside ``obj`` (an SAE, or a result holding one as ``.sae``)."""
    for cand in (getattr(obj, "sae", None), obj):
        if cand is not None and hasattr(cand, "W_dec") and callable(getattr(cand, "encode", None)):
            return cand
    msg = f"{type(obj).__name__} is not an SAE: expected a SAELens SAE (encode, decode, W_dec) or a result with .sae"
    raise TypeError(msg)


def sae_site(obj: Any) -> str | None:
    """The hook name an SAE (or SAE result) was trained on, where it says."""
    for holder in (obj, getattr(obj, "sae", None)):
        for attr in ("site", "hook_name"):
            v = getattr(holder, attr, None)
            if isinstance(v, (str, Site)):
                return Site.parse(v).hook_name
    meta = getattr(getattr(unwrap_sae(obj), "cfg", None), "metadata", None)
    name = getattr(meta, "hook_name", None)
    return str(name) if name else None


def sae_feature(sae: Any, index: int) -> SAEFeature:
    """Feature ``index`` of ``sae``; raises naming the range when there is no such feature."""
    module = unwrap_sae(sae)
    n = int(module.W_dec.shape[0])
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < n:
        msg = f"feature {index} is out of range: the SAE has {n} features (0..{n - 1})"
        raise SiteIndexError(msg)
    return SAEFeature(module, index, sae_site(sae))


def as_direction(obj: Any) -> SAEFeature | torch.Tensor:
    """An :class:`SAEFeature` or a 1-d float tensor from what a user passes as a direction."""
    if isinstance(obj, SAEFeature):
        return obj
    if isinstance(obj, tuple) and len(obj) == 2 and isinstance(obj[1], numbers.Integral):
        return sae_feature(obj[0], int(obj[1]))
    try:
        v = torch.as_tensor(obj.detach() if isinstance(obj, torch.Tensor) else obj, dtype=torch.float32)
    except (TypeError, ValueError, RuntimeError) as exc:
        msg = f"a direction is a vector, an SAE feature (sae, index) or sae_feature(...), not {type(obj).__name__}"
        raise TypeError(msg) from exc
    if v.ndim != 1 or not torch.isfinite(v).all():
        msg = f"a direction must be a finite 1-d vector; got shape {tuple(v.shape)}"
        raise InterventionError(msg)
    return v


@dataclass
class Steering:
    """One steering edit: ``op`` with ``strength`` along ``direction`` at ``site`` on ``positions``."""

    site: Site
    direction: SAEFeature | torch.Tensor
    op: Op
    strength: float
    positions: Positions = "all"

    @property
    def reads_activation(self) -> bool:
        return isinstance(self.direction, SAEFeature) or self.op != "add"

    @property
    def label(self) -> str:
        d = self.direction
        return d.label if isinstance(d, SAEFeature) else f"vector (norm {float(d.norm()):.3g})"

    def mask(self, n_pos: int, n_prompt: int) -> torch.Tensor:
        """Bool ``[n_pos]``: the positions this edit touches in a sequence of ``n_pos`` tokens."""
        m = torch.zeros(n_pos, dtype=torch.bool)
        if self.positions == "all":
            m[:] = True
        elif self.positions == "prompt":
            m[:n_prompt] = True
        else:
            for p in self.positions:  # type: ignore[union-attr]
                m[p if p >= 0 else n_prompt + p] = True
        return m

    def delta(self, x: torch.Tensor | None, n_rows: int, n_pos: int, mask: torch.Tensor) -> torch.Tensor:
        """What to add to the site's activation ``x`` (``[n_rows, n_pos, width]``) of the steered rows."""
        d = self.direction
        if isinstance(d, SAEFeature):
            assert x is not None
            sae = d.sae
            with torch.no_grad():
                xs = x.to(sae.W_dec.dtype).to(sae.W_dec.device)
                f = sae.encode(xs)
                g = f.clone()
                i = d.index
                g[..., i] = {"add": f[..., i] + self.strength, "scale": f[..., i] * self.strength,
                             "clamp": torch.full_like(f[..., i], self.strength)}[self.op]
                out = (sae.decode(g) - sae.decode(f)).to(x)
        else:
            v = d.to(x.device if x is not None else "cpu")
            if self.op == "add":
                out = (self.strength * v).expand(n_rows, n_pos, v.shape[0])
            else:
                assert x is not None
                u = v / v.norm()
                proj = x @ u
                new = proj * self.strength if self.op == "scale" else torch.full_like(proj, self.strength)
                out = (new - proj)[..., None] * u
        return out * mask.to(out.device)[None, :, None]


def make_steering(model: Model, site: Site | str | None, direction: Any, op: str, strength: float,
                  positions: Positions, n_prompt: int) -> Steering:
    """Check a steering request against ``model``: the site, the direction's width, the op, the positions."""
    d = as_direction(direction)
    if site is None:
        site = d.site if isinstance(d, SAEFeature) else None
        if site is None:
            msg = "name the site to steer (e.g. 'blocks.0.hook_resid_post'); this direction does not say"
            raise InputMismatchError(msg)
    s = model.check_site(site)
    if isinstance(d, SAEFeature) and d.site is not None and Site.parse(d.site).hook_name != s.hook_name:
        msg = f"this SAE reads {d.site}, not {s.hook_name}: steer its features at its own site (or pass site=None)"
        raise InputMismatchError(msg)
    if s.component not in STEERABLE or s.head is not None:
        msg = f"{s.hook_name} cannot be steered with a direction: use a [batch, pos, width] site ({', '.join(STEERABLE)})"
        raise InterventionError(msg)
    if s.position is not None:
        msg = f"pass positions=[{s.position}] instead of a position in the site {s}"
        raise InputMismatchError(msg)
    if op not in OPS:
        msg = f"unknown steering op {op!r}; use one of {', '.join(OPS)}"
        raise InputMismatchError(msg)
    width = _width(model, s)
    got = int(d.sae.W_dec.shape[1] if isinstance(d, SAEFeature) else d.shape[0])
    if got != width:
        what = "the SAE's input" if isinstance(d, SAEFeature) else "the direction"
        msg = f"{what} has width {got} but {s.hook_name} has width {width}"
        raise InputMismatchError(msg)
    if isinstance(d, torch.Tensor) and op != "add" and float(d.norm()) == 0.0:
        msg = f"{op} needs a non-zero direction (the component along it is scaled or set)"
        raise InterventionError(msg)
    if not isinstance(positions, str):
        positions = [int(p) for p in positions]
        bad = [p for p in positions if not -n_prompt <= p < n_prompt]
        if bad:
            msg = f"position {bad[0]} is out of range: the prompt has {n_prompt} tokens (0..{n_prompt - 1})"
            raise SiteIndexError(msg)
    elif positions not in ("all", "prompt"):
        msg = f"positions must be 'all', 'prompt' or a list of prompt positions, not {positions!r}"
        raise InputMismatchError(msg)
    return Steering(s, d, op, float(strength), positions)  # type: ignore[arg-type]


def _width(model: Model, s: Site) -> int:
    spec = model.spec
    if s.component in ("mlp.hook_pre", "mlp.hook_post"):
        return int(spec.d_mlp or 0)
    return int(spec.d_model)


def _capture(model: Model, tokens: torch.Tensor, site: Site) -> torch.Tensor:
    backend = model.backend
    if getattr(backend, "supports_stop_after_capture", False):
        run = backend.run(tokens, capture=[site], stop_after_capture=True)  # type: ignore[call-arg]
    else:
        run = backend.run(tokens, capture=[site])
    return run.cache[site.hook_name]


def steered_logits(model: Model, tokens: torch.Tensor, steering: Steering, *, n_prompt: int | None = None,
                   rows: Sequence[int] | None = None) -> torch.Tensor:
    """Logits ``[batch, pos, vocab]`` of one forward pass with ``steering`` on ``rows`` (None: every row)."""
    n_rows_all, n_pos = int(tokens.shape[0]), int(tokens.shape[1])
    idx = list(range(n_rows_all)) if rows is None else [int(r) for r in rows]
    mask = steering.mask(n_pos, n_pos if n_prompt is None else n_prompt)
    ivs: list[Intervention] = []
    if idx and bool(mask.any()):
        x = _capture(model, tokens[idx], steering.site) if steering.reads_activation else None
        delta = steering.delta(x, len(idx), n_pos, mask)
        ivs.append(Intervention(steering.site, "add", delta, None if rows is None else idx))
    logits = model.backend.run(tokens, interventions=ivs).logits
    assert logits is not None
    return logits


@dataclass
class SteeringResult:
    """Base and steered generations from one prompt, side by side (``n_samples`` of each)."""

    model_name: str
    prompt: str
    site: str
    op: str
    strength: float
    direction: str
    positions: str
    prompt_tokens: list[str]
    base_tokens: torch.Tensor  # [n_samples, n_new] token ids
    steered_tokens: torch.Tensor
    base_str_tokens: list[list[str]]
    steered_str_tokens: list[list[str]]
    base_text: list[str]
    steered_text: list[str]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_samples(self) -> int:
        return int(self.base_tokens.shape[0])

    def differs(self) -> list[bool]:
        """Per sample: whether steering changed the generated tokens."""
        return [bool((b != s).any()) for b, s in zip(self.base_tokens, self.steered_tokens, strict=True)]

    def __repr__(self) -> str:
        head = (f"<SteeringResult {self.model_name!r}: {self.op} {self.direction} x {self.strength:g} at {self.site} "
                f"({self.positions}); {self.n_samples} sample(s)>")
        lines = [head, f"  prompt:  {self.prompt!r}"]
        for b, s in zip(self.base_text[:4], self.steered_text[:4], strict=True):
            lines += [f"  base:    {b!r}", f"  steered: {s!r}"]
        return "\n".join(lines)


def _sample(logits: torch.Tensor, u: torch.Tensor, *, greedy: bool, temperature: float,
            top_k: int | None) -> torch.Tensor:
    """Next tokens ``[rows]`` from last-position logits ``[rows, vocab]``: argmax, or inverse CDF at ``u``."""
    if greedy:
        return logits.argmax(-1)
    z = logits.double() / temperature
    if top_k is not None and top_k < z.shape[-1]:
        kth = z.topk(top_k, dim=-1).values[..., -1:]
        z = z.masked_fill(z < kth, float("-inf"))
    cdf = torch.softmax(z, dim=-1).cumsum(-1)
    pick = torch.searchsorted(cdf, (u.double() * cdf[:, -1])[:, None].contiguous()).squeeze(-1)
    return pick.clamp(max=z.shape[-1] - 1)


def steer(
    model: Model | Any,
    prompt: str,
    site: Site | str | None = None,
    direction: Any = None,
    *,
    op: Op = "add",
    strength: float = 4.0,
    positions: Positions = "all",
    max_new_tokens: int = 20,
    n_samples: int = 1,
    greedy: bool = False,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int = 0,
    progress: Progress | bool | None = None,
) -> SteeringResult:
    """Generate from ``prompt`` with and without steering; see the module docstring.

    ``direction``: a vector, ``(sae, index)``, :func:`sae_feature` or :func:`mean_difference`'s vector;
    ``site`` may be left out for an SAE feature whose SAE names its hook. ``greedy=True`` takes the argmax;
    otherwise tokens are sampled (``temperature``, ``top_k``) with a generator seeded by ``seed``.
    """
    m = load(model)
    if direction is None:
        msg = "steer() needs a direction: a vector, an SAE feature (sae, index), or mean_difference(...)"
        raise InputMismatchError(msg)
    if max_new_tokens < 1 or n_samples < 1:
        msg = f"max_new_tokens and n_samples must be >= 1; got {max_new_tokens} and {n_samples}"
        raise InputMismatchError(msg)
    if not greedy and not temperature > 0:
        msg = f"temperature must be > 0 (or pass greedy=True); got {temperature}"
        raise InputMismatchError(msg)
    prompt_ids = m.to_tokens(prompt)
    n_prompt = int(prompt_ids.shape[1])
    n_ctx = m.spec.n_ctx
    if n_ctx and n_prompt + max_new_tokens > n_ctx:
        msg = (f"the prompt is {n_prompt} tokens and max_new_tokens is {max_new_tokens}, past {m.name}'s context "
               f"window of {n_ctx} tokens: ask for at most {max(0, n_ctx - n_prompt)} new tokens")
        raise InputMismatchError(msg)
    st = make_steering(m, site, direction, op, strength, positions, n_prompt)
    tokens = prompt_ids.repeat(2 * n_samples, 1)
    steered_rows = list(range(n_samples, 2 * n_samples))
    gen = torch.Generator().manual_seed(seed)
    with progress_reporter(progress, max_new_tokens, "steering") as report:
        for step in range(max_new_tokens):
            with torch.no_grad():
                logits = steered_logits(m, tokens, st, n_prompt=n_prompt, rows=steered_rows)[:, -1].float().cpu()
            u = torch.rand(n_samples, generator=gen).repeat(2)  # base row j and steered row n + j share u[j]
            nxt = _sample(logits, u, greedy=greedy, temperature=temperature, top_k=top_k)
            tokens = torch.cat([tokens, nxt[:, None].to(tokens)], dim=1)
            report(step + 1)
    new = tokens[:, n_prompt:].cpu()
    base, steered = new[:n_samples], new[n_samples:]
    tok = m.tokenizer

    def strs(rows: torch.Tensor) -> list[list[str]]:
        return [m.to_str_tokens(r) for r in rows]

    def texts(rows: torch.Tensor) -> list[str]:
        return [tok.decode(r.tolist()) if tok is not None else " ".join(map(str, r.tolist())) for r in rows]

    return SteeringResult(
        model_name=m.name, prompt=prompt, site=st.site.hook_name, op=st.op, strength=st.strength,
        direction=st.label, positions=st.positions if isinstance(st.positions, str) else str(list(st.positions)),
        prompt_tokens=m.to_str_tokens(prompt_ids), base_tokens=base, steered_tokens=steered,
        base_str_tokens=strs(base), steered_str_tokens=strs(steered), base_text=texts(base),
        steered_text=texts(steered),
        meta={"seed": seed, "greedy": greedy, "temperature": temperature, "top_k": top_k,
              "max_new_tokens": max_new_tokens},
    )


def mean_difference(model: Model | Any, prompts_a: Sequence[str], prompts_b: Sequence[str], site: Site | str, *,
                    position: int | Literal["mean"] = "mean") -> torch.Tensor:
    """``mean(act(a)) - mean(act(b))`` at ``site``: a steering vector from A towards B's opposite.

    Each prompt's activation is its mean over positions (the BOS position left out when there are others)
    or, with an int ``position``, the activation at that position (-1: the last token).
    """
    m = load(model)
    s = m.check_site(site)
    if s.component not in STEERABLE:
        msg = f"{s.hook_name} is not a [batch, pos, width] site; mean_difference needs one ({', '.join(STEERABLE)})"
        raise InterventionError(msg)

    def mean_of(prompts: Sequence[str], which: str) -> torch.Tensor:
        if isinstance(prompts, str) or not prompts:
            msg = f"prompts_{which} must be a non-empty list of prompts"
            raise InputMismatchError(msg)
        rows = []
        for p in prompts:
            act = m.run(m.to_tokens(p), capture=[s]).cache[s.hook_name][0].float()
            if position == "mean":
                rows.append(act[1:].mean(0) if act.shape[0] > 1 else act[0])
            else:
                if not -act.shape[0] <= position < act.shape[0]:
                    msg = f"position {position} is out of range for {p!r}, which has {act.shape[0]} tokens"
                    raise SiteIndexError(msg)
                rows.append(act[position])
        return torch.stack(rows).mean(0)

    return (mean_of(prompts_a, "a") - mean_of(prompts_b, "b")).cpu()


@dataclass
class SteeringEffect:
    """How often generated tokens fall in a token set, without and with steering."""

    tokens: list[str]
    base_fraction: float
    steered_fraction: float
    n_generated: int
    result: SteeringResult

    @property
    def change(self) -> float:
        return self.steered_fraction - self.base_fraction

    def __repr__(self) -> str:
        return (f"<SteeringEffect: {self.base_fraction:.1%} -> {self.steered_fraction:.1%} of {self.n_generated} "
                f"generated tokens in {self.tokens[:8]}{'...' if len(self.tokens) > 8 else ''} "
                f"(change {self.change:+.1%})>")


def steering_effect(model: Model | Any, prompt: str, site: Site | str | None, direction: Any, tokens: Sequence[str | int],
                    *, n_samples: int = 16, max_new_tokens: int = 20, **kwargs: Any) -> SteeringEffect:
    """The fraction of generated tokens that are in ``tokens``, for base and steered sampling (same seeds)."""
    m = load(model)
    if not tokens:
        msg = "steering_effect needs a non-empty token set"
        raise InputMismatchError(msg)
    from interp_widget.analysis.metrics import token_id

    ids = torch.tensor([token_id(m, t) for t in tokens])
    res = steer(m, prompt, site, direction, n_samples=n_samples, max_new_tokens=max_new_tokens, **kwargs)
    n = res.base_tokens.numel()
    frac_base = float(torch.isin(res.base_tokens, ids).sum()) / n
    frac_steer = float(torch.isin(res.steered_tokens, ids).sum()) / n
    return SteeringEffect([str(t) for t in tokens], frac_base, frac_steer, n, res)
