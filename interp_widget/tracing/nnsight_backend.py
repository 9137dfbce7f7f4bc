"""The nnsight backend: Hugging Face models and any torch module, traced with nnsight 0.8.

Sites
    A model whose architecture has a site map (:mod:`interp_widget.tracing.sitemaps`:
    GPT-2, BERT/MiniLM) has the TransformerLens sites, mapped onto module paths and
    ``.source`` operations. Every model (known or not) also has one generic site per
    submodule, ``module:<path>`` (its output; a tuple output is represented by its
    first element), e.g. ``module:transformer.h.0.ln_1``.

One trace per run
    :meth:`NNsightBackend.run` opens exactly one ``model.trace(...)`` for the whole
    batch. Inside it one function (:func:`_interleave`) visits the needed points in
    forward order (found once per backend by a probe forward pass with torch hooks
    that records the order in which modules are entered and left), reads each value,
    applies the interventions in order, writes the edited value back (an nnsight
    swap), captures, and at the end evaluates ``metric`` and its gradients with
    ``torch.autograd.grad`` while the model is still inside the trace. Everything the
    run needs travels as plain dataclasses, so a remote (NDIF) backend can subclass
    this one and override :meth:`NNsightBackend._execute` (``remote=True``) and
    :meth:`NNsightBackend._forward_order` (no local forward pass) without changing callers.

Run state
    For the run only, a Hugging Face model is switched to ``attn_implementation="eager"``
    (attention weights are only computed there) and a model in training mode to eval
    mode; both are restored afterwards, also on error. Wrapping a module in nnsight
    installs nnsight's forward wrapper on it permanently; it is inert outside a trace.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import nnsight
import torch
from nnsight.intervention.envoy import Envoy

from interp_widget.errors import BackendError
from interp_widget.tracing._common import (
    apply_interventions,
    as_token_batch,
    build_plan,
    check_context,
    scalar_metric,
    shape_of,
    str_tokens,
)
from interp_widget.tracing.base import Intervention, Metric, ModelSpec, RunResult, SiteInfo
from interp_widget.tracing.sitemaps import site_map_for
from interp_widget.tracing.sitemaps._base import Binding, Codec, FirstTensor, OpRef, Point
from interp_widget.tracing.sites import GLOBAL_COMPONENTS, LAYER_COMPONENTS, MODULE_PREFIX, Site

_COMPONENT_ORDER = {c: i for i, c in enumerate((*GLOBAL_COMPONENTS, *LAYER_COMPONENTS))}


@dataclass
class _Action:
    """What to do with one site at a point."""

    name: str
    codec: Codec
    interventions: list[Intervention] = field(default_factory=list)
    capture: bool = False
    grad: bool = False
    final: bool = False


@dataclass
class _Step:
    point: Point
    actions: list[_Action] = field(default_factory=list)


# --- inside the trace ----------------------------------------------------------------------


def _find_op(source: Any, ref: OpRef) -> str:
    """The label of the one operation in ``source`` matching ``ref``."""
    compiled = source.compiled
    lines = compiled.source.split("\n")
    pattern = re.compile(rf"{re.escape(ref.prefix)}_\d+")
    found = [n for n in source.names if pattern.fullmatch(n)
             and (not ref.line or re.search(ref.line, lines[compiled.lines[n] - 1]))]
    if len(found) != 1:
        msg = (f"cannot locate the operation {ref.prefix!r} (line matching {ref.line!r}) in {source.prefix}: "
               f"found {found or 'none'}; the installed transformers version may have changed this model's code")
        raise BackendError(msg)
    return found[0]


def _module_envoy(root: Any, path: str) -> Any:
    """The envoy of the submodule at ``path`` (nnsight moves a child named ``output``/``input``... to ``E_<name>``)."""
    env = root
    for part in path.split(".") if path else ():
        name = part
        if inspect.isdatadescriptor(getattr(Envoy, part, None)):
            name = Envoy.OVERLOAD_PREFIX + part
        env = getattr(env, name)
    return env


class _RunContext:
    """Values seen so far in one run, and access to envoys and parameters."""

    def __init__(self, root: Any, batch: int) -> None:
        self.root = root
        self.batch = batch
        self.values: dict[Point, Any] = {}
        self._envoys: dict[tuple[str, tuple[OpRef, ...]], Any] = {}

    def value(self, point: Point) -> Any:
        return self.values[point]

    def param(self, path: str) -> torch.Tensor:
        return self.root._module.get_parameter(path)

    def envoy(self, point: Point) -> Any:
        key = (point.module, point.ops)
        env = self._envoys.get(key)
        if env is None:
            env = _module_envoy(self.root, point.module)
            for ref in point.ops:
                source = env.source
                env = source.node(_find_op(source, ref))
            self._envoys[key] = env
        return env


def _interleave(root: Any, batch: int, steps: list[_Step], metric: Metric | None,
                grad_names: list[str]) -> dict[str, Any]:
    """The body of one trace: visit ``steps`` in forward order; see the module docstring."""
    ctx = _RunContext(root, batch)
    cache: dict[str, torch.Tensor] = {}
    graph: dict[str, torch.Tensor] = {}
    final: torch.Tensor | None = None
    for step in steps:
        env = ctx.envoy(step.point)
        value = getattr(env, step.point.attr)
        original = value
        for act in step.actions:
            t = act.codec.extract(value, ctx)
            new = t
            if act.interventions:
                new = apply_interventions(t, act.interventions)
            elif act.grad and not act.codec.identity:
                new = t.clone()  # a node of its own, so the gradient reaches it through insert()
            if act.grad and not new.requires_grad:
                new = new.detach().requires_grad_(True)
            if new is not t:
                value = act.codec.insert(value, t, new, ctx)
            if act.capture:
                cache[act.name] = new.detach().clone()
            if act.grad:
                graph[act.name] = new
            if act.final:
                final = new
        if value is not original:
            setattr(env, step.point.attr, value)
        ctx.values[step.point] = value
    out: dict[str, Any] = {"cache": cache, "final": None if final is None else final.detach(), "grads": {}}
    if metric is not None and final is not None:
        m = scalar_metric(metric(final))
        out["metric"] = float(m.detach())
        if grad_names:
            tensors = [graph[n] for n in grad_names]
            got = torch.autograd.grad(m, tensors, allow_unused=True)
            out["grads"] = {n: (g if g is not None else torch.zeros_like(t)).detach()
                            for n, g, t in zip(grad_names, got, tensors, strict=True)}
    return out


# --- the backend ---------------------------------------------------------------------------


class NNsightBackend:
    """A :class:`~interp_widget.tracing.base.Backend` over an nnsight model or any torch module."""

    def __init__(self, model: Any, *, tokenizer: Any = None, name: str = "") -> None:
        if isinstance(model, Envoy):
            root = model
        elif isinstance(model, torch.nn.Module):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # nnsight warns about BERT's submodules named `output`
                root = nnsight.NNsight(model)
        else:
            msg = f"the nnsight backend needs an nnsight model or a torch.nn.Module, not {type(model).__name__}"
            raise BackendError(msg)
        self.root = root
        self.torch_model: torch.nn.Module = root._module
        self._tokenizer = tokenizer if tokenizer is not None else getattr(root, "tokenizer", None)
        site_map = site_map_for(self.torch_model)
        self._bindings: dict[str, Binding] = {}
        if site_map is not None:
            spec = site_map.spec
            self._bindings.update(site_map.bindings)
            self.has_logits = "logits" in self._bindings
        else:
            spec = ModelSpec(architecture=f"torch:{type(self.torch_model).__name__}", n_layers=0, n_heads=0,
                             d_model=0, d_head=0, n_ctx=0, d_vocab=0, causal=False)
            self.has_logits = True  # the module's output stands in for logits
        if name:
            spec = dataclasses.replace(spec, name=name)
        self.spec = spec
        self._name = spec.name or type(self.torch_model).__name__
        self._known_architecture = site_map is not None
        for path, _ in self.torch_model.named_modules():
            if path:
                self._bindings[MODULE_PREFIX + path] = Binding(Point(path, "output"), FirstTensor())
        self._final = self._bindings.get("logits") or Binding(Point("", "output"), FirstTensor())
        self._order: dict[tuple[str, str], int] | None = None
        self._site_infos: list[SiteInfo] | None = None
        self._special_tokens: bool | None = None
        self._check_source_ops()

    def _check_source_ops(self) -> None:
        """Find layer 0's module-level ``.source`` operations now, so a model whose code changed fails early."""
        for name, binding in self._bindings.items():
            if name.startswith("blocks.0.") and binding.point.ops:
                _find_op(_module_envoy(self.root, binding.point.module).source, binding.point.ops[0])

    # --- description -------------------------------------------------------------------------
    @property
    def tokenizer(self) -> Any:
        return self._tokenizer

    def sites(self) -> list[SiteInfo]:
        if self._site_infos is None:
            self._site_infos = [SiteInfo(s, shape_of(s)) for s in map(Site.parse, self._bindings)]
        return list(self._site_infos)

    # --- tokens ------------------------------------------------------------------------------
    def _adds_special_tokens(self) -> bool:
        if self._special_tokens is None:
            tok: Any = self._tokenizer
            self._special_tokens = tok("a")["input_ids"] != tok("a", add_special_tokens=False)["input_ids"]
        return self._special_tokens

    def to_tokens(self, text: str | Sequence[str], *, prepend_bos: bool = True) -> torch.Tensor:
        """Token ids [batch, pos], right-padded; BOS (or the tokenizer's own special tokens) when ``prepend_bos``."""
        tok = self._tokenizer
        if tok is None:
            msg = f"{self._name} has no tokenizer; pass token ids (or pass tokenizer= when loading)"
            raise BackendError(msg)
        texts = [text] if isinstance(text, str) else list(text)
        if self._adds_special_tokens():
            ids = [tok(t, add_special_tokens=prepend_bos)["input_ids"] for t in texts]
        else:
            ids = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
            if prepend_bos and tok.bos_token_id is not None:
                ids = [[tok.bos_token_id, *i] for i in ids]
        longest = max((len(i) for i in ids), default=0)
        check_context(longest, self.spec.n_ctx, self._name)
        pad = next((x for x in (tok.pad_token_id, tok.eos_token_id) if x is not None), 0)
        return torch.tensor([[*i, *[pad] * (longest - len(i))] for i in ids], dtype=torch.long)

    def to_str_tokens(self, tokens: torch.Tensor | str) -> list[str]:
        if isinstance(tokens, str):
            tokens = self.to_tokens(tokens)
        return str_tokens(self._tokenizer, as_token_batch(tokens))

    # --- running -----------------------------------------------------------------------------
    def run(
        self,
        tokens: torch.Tensor,
        *,
        capture: Sequence[Site | str] = (),
        interventions: Sequence[Intervention] = (),
        grads: Sequence[Site | str] = (),
        metric: Metric | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> RunResult:
        """One trace over the batch. ``tokens`` may be any input tensor for a module without a known architecture."""
        if self._known_architecture or self._tokenizer is not None:
            tokens = as_token_batch(tokens)
            check_context(tokens.shape[1], self.spec.n_ctx, self._name)
        batch = tokens.shape[0]
        n_pos = tokens.shape[1] if tokens.ndim >= 2 else None
        plan = build_plan(spec=self.spec, known=self._bindings, model_name=self._name, batch=batch, n_pos=n_pos,
                          capture=capture, interventions=interventions, grads=grads, metric=metric)
        grad_names = [Site.parse(g).with_().hook_name for g in grads]
        device = next(self.torch_model.parameters(), torch.empty(0)).device
        kwargs: dict[str, Any] = {}
        if attention_mask is not None:
            kwargs["attention_mask"] = attention_mask.to(device)
        with contextlib.ExitStack() as stack:
            self._enter_run_state(stack)
            stack.enter_context(torch.set_grad_enabled(bool(grad_names)))
            steps = self._steps(plan, tokens.to(device))
            out = self._execute(tokens.to(device), kwargs, steps, metric, grad_names)
        logits = out["final"] if self.has_logits else None
        return RunResult(logits=logits, cache=out["cache"], grads=out["grads"], metric=out.get("metric"))

    def _execute(self, inputs: torch.Tensor, kwargs: dict[str, Any], steps: list[_Step], metric: Metric | None,
                 grad_names: list[str]) -> dict[str, Any]:
        """Run one trace. A remote backend overrides this (same body, ``remote=True``)."""
        root = self.root
        with root.trace(inputs, **kwargs):
            result = nnsight.save(_interleave(root, inputs.shape[0], steps, metric, grad_names))
        return result

    def _enter_run_state(self, stack: contextlib.ExitStack) -> None:
        model: Any = self.torch_model
        config = getattr(model, "config", None)
        impl = getattr(config, "_attn_implementation", None)
        if impl not in (None, "eager") and hasattr(model, "set_attn_implementation"):
            model.set_attn_implementation("eager")
            stack.callback(model.set_attn_implementation, impl)
        if model.training:
            model.eval()
            stack.callback(model.train, True)

    def _forward_order(self, inputs: torch.Tensor) -> dict[tuple[str, str], int]:
        """The order in which modules are entered ("pre") and left ("post") in one forward pass (probed once)."""
        if self._order is None:
            order: dict[tuple[str, str], int] = {}
            handles = []

            def pre(path: str) -> Any:
                def hook(module: Any, args: Any) -> None:  # must return None: a value would replace the args
                    order.setdefault((path, "pre"), len(order))
                return hook

            def post(path: str) -> Any:
                def hook(module: Any, args: Any, output: Any) -> None:
                    order.setdefault((path, "post"), len(order))
                return hook

            try:
                for path, module in self.torch_model.named_modules():
                    handles.append(module.register_forward_pre_hook(pre(path)))
                    handles.append(module.register_forward_hook(post(path)))
                with torch.no_grad():
                    self.torch_model(inputs[:1])
            finally:
                for h in handles:
                    h.remove()
            self._order = order
        return self._order

    def _steps(self, plan: dict[str, Any], inputs: torch.Tensor) -> list[_Step]:
        steps: dict[Point, _Step] = {}

        def step(point: Point) -> _Step:
            return steps.setdefault(point, _Step(point))

        def rank(name: str) -> tuple[int, str]:
            return (_COMPONENT_ORDER.get(Site.parse(name).component, len(_COMPONENT_ORDER)), name)

        for name in sorted(plan, key=rank):
            p = plan[name]
            binding = self._bindings[name]
            for needed in binding.codec.needs:
                step(needed)
            step(binding.point).actions.append(
                _Action(name, binding.codec, p.interventions, p.capture, p.grad, final=binding is self._final))
        if not any(a.final for s in steps.values() for a in s.actions):
            step(self._final.point).actions.append(_Action("logits", self._final.codec, final=True))
        for s in steps.values():
            if s.point.ops:  # instrument the module's forward before it runs (permanent; inert outside a trace)
                _ = _module_envoy(self.root, s.point.module).source
        order = self._forward_order(inputs)

        def key(s: _Step) -> tuple[int, int]:
            event = s.point.event
            if event not in order:
                msg = f"module {event[0]!r} did not run in a forward pass of {self._name}, so it cannot be traced"
                raise BackendError(msg)
            return (order[event], s.point.sub)

        return sorted(steps.values(), key=key)
