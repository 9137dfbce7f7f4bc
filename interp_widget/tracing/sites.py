"""Sites: typed names for the places in a model where activations live.

TransformerLens hook names are the canonical vocabulary. A :class:`Site` is a
hook name plus an optional head and query/token position selection::

    Site.parse("blocks.3.attn.hook_pattern", head=5)
    Site("attn.hook_pattern", layer=3, head=5).hook_name == "blocks.3.attn.hook_pattern"

Tensor layouts follow TransformerLens (batch first):

=====================================  ==============================
component                              shape
=====================================  ==============================
hook_embed, hook_pos_embed             batch pos d_model
hook_resid_pre/mid/post                batch pos d_model
attn.hook_q/k/v/z                      batch pos head d_head
attn.hook_attn_scores, attn.hook_pattern  batch head query_pos key_pos
attn.hook_result                       batch pos head d_model
hook_attn_out, hook_mlp_out            batch pos d_model
mlp.hook_pre, mlp.hook_post            batch pos d_mlp
ln_final.hook_normalized               batch pos d_model
logits (pseudo-site)                   batch pos d_vocab
=====================================  ==============================

``head`` selects along the head axis, ``position`` along the (query) position
axis; both are optional.

Generic module sites. A model with no TransformerLens-style site map (any torch
module wrapped by the nnsight backend) exposes each submodule's output as the site
``module:<path>``, e.g. ``Site.parse("module:encoder.layers.0.fc1")`` or
``Site.module("encoder.layers.0.fc1")``. Such a site has no layer and no head;
its position axis is taken to be axis 1 (``batch pos ...``). A module returning
a tuple is represented by the tuple's first element.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from interp_widget.errors import UnknownSiteError

#: per-layer components, as TransformerLens names them after ``blocks.{L}.``
LAYER_COMPONENTS: tuple[str, ...] = (
    "hook_resid_pre",
    "hook_resid_mid",
    "hook_resid_post",
    "attn.hook_q",
    "attn.hook_k",
    "attn.hook_v",
    "attn.hook_z",
    "attn.hook_attn_scores",
    "attn.hook_pattern",
    "attn.hook_result",
    "hook_attn_out",
    "mlp.hook_pre",
    "mlp.hook_post",
    "hook_mlp_out",
)
#: components that are not inside a block
GLOBAL_COMPONENTS: tuple[str, ...] = ("hook_embed", "hook_pos_embed", "ln_final.hook_normalized", "logits")
#: prefix of a generic module site (``module:<module path>``); see the module docstring
MODULE_PREFIX = "module:"

#: components whose tensors have a head axis, and which axis it is
HEAD_AXIS: dict[str, int] = {
    "attn.hook_q": 2,
    "attn.hook_k": 2,
    "attn.hook_v": 2,
    "attn.hook_z": 2,
    "attn.hook_result": 2,
    "attn.hook_attn_scores": 1,
    "attn.hook_pattern": 1,
}
#: the (query) position axis of each component
POS_AXIS: dict[str, int] = {c: (2 if c in ("attn.hook_attn_scores", "attn.hook_pattern") else 1) for c in (*LAYER_COMPONENTS, *GLOBAL_COMPONENTS)}

_LAYER_RE = re.compile(r"^blocks\.(\d+)\.(.+)$")


@dataclass(frozen=True, order=True)
class Site:
    """One place in a model: a component, its layer, and an optional head / position."""

    component: str
    layer: int | None = None
    head: int | None = None
    position: int | None = None

    def __post_init__(self) -> None:
        if self.component.startswith(MODULE_PREFIX):
            if not self.component[len(MODULE_PREFIX):]:
                msg = f"a module site needs a module path after {MODULE_PREFIX!r} (e.g. 'module:layers.0.fc1')"
                raise UnknownSiteError(msg)
            if self.layer is not None or self.head is not None:
                msg = f"module site {self.component!r} takes no layer or head (got layer={self.layer}, head={self.head})"
                raise UnknownSiteError(msg)
            return
        if self.component in GLOBAL_COMPONENTS:
            if self.layer is not None:
                msg = f"site {self.component!r} is not inside a layer; got layer={self.layer}"
                raise UnknownSiteError(msg)
        elif self.component in LAYER_COMPONENTS:
            if self.layer is None:
                msg = f"site {self.component!r} needs a layer (e.g. 'blocks.0.{self.component}')"
                raise UnknownSiteError(msg)
        else:
            known = ", ".join((*GLOBAL_COMPONENTS, *(f"blocks.L.{c}" for c in LAYER_COMPONENTS), "module:<path>"))
            msg = f"unknown site component {self.component!r}; known: {known}"
            raise UnknownSiteError(msg)
        if self.head is not None and self.component not in HEAD_AXIS:
            msg = f"site {self.hook_name!r} has no head axis; head={self.head} cannot be selected"
            raise UnknownSiteError(msg)

    @property
    def hook_name(self) -> str:
        """The TransformerLens hook name, e.g. ``blocks.3.attn.hook_pattern``."""
        if self.layer is None:
            return self.component
        return f"blocks.{self.layer}.{self.component}"

    @property
    def head_axis(self) -> int | None:
        return HEAD_AXIS.get(self.component)

    @property
    def pos_axis(self) -> int:
        return POS_AXIS.get(self.component, 1)

    @property
    def is_module(self) -> bool:
        """True for a generic ``module:<path>`` site."""
        return self.component.startswith(MODULE_PREFIX)

    @classmethod
    def module(cls, path: str, *, position: int | None = None) -> Site:
        """The generic site for the output of the submodule at ``path``."""
        return cls(MODULE_PREFIX + path, None, None, position)

    def with_(self, *, head: int | None = None, position: int | None = None) -> Site:
        return Site(self.component, self.layer, head, position)

    @classmethod
    def parse(cls, name: str | Site, *, head: int | None = None, position: int | None = None) -> Site:
        """Parse a TransformerLens hook name (or pass a Site through)."""
        if isinstance(name, Site):
            if head is None and position is None:
                return name
            return Site(name.component, name.layer, head if head is not None else name.head,
                        position if position is not None else name.position)
        if not isinstance(name, str):
            msg = f"a site is a hook name string or a Site, not {type(name).__name__}"
            raise TypeError(msg)
        m = _LAYER_RE.match(name)
        if m:
            return cls(m.group(2), int(m.group(1)), head, position)
        return cls(name, None, head, position)

    def __str__(self) -> str:
        extra = []
        if self.head is not None:
            extra.append(f"head={self.head}")
        if self.position is not None:
            extra.append(f"pos={self.position}")
        return self.hook_name + (f"[{', '.join(extra)}]" if extra else "")


def as_site(s: str | Site) -> Site:
    return Site.parse(s)
