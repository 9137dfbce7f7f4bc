"""Model: what :func:`interp_widget.load` returns and every analysis takes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from interp_widget.errors import SiteIndexError, UnknownSiteError
from interp_widget.server.registry import track
from interp_widget.tracing.base import Backend, Intervention, Metric, ModelSpec, RunResult, SiteInfo
from interp_widget.tracing.sites import Site

if TYPE_CHECKING:
    import torch


class Model:
    """A loaded model: a :class:`~interp_widget.tracing.base.Backend` plus a display name.

    ``model.raw`` is the object underneath (a HookedTransformer, an nnsight model, ...).
    """

    def __init__(self, backend: Backend, name: str = "", raw: Any = None) -> None:
        self.backend = backend
        self.name = name or backend.spec.name or type(raw).__name__
        self.raw = raw
        track(self, "model")  # the side panel's registry (weak reference)

    # --- description -------------------------------------------------------
    @property
    def spec(self) -> ModelSpec:
        return self.backend.spec

    @property
    def tokenizer(self) -> Any:
        return self.backend.tokenizer

    def sites(self) -> list[SiteInfo]:
        return self.backend.sites()

    def check_site(self, site: Site | str) -> Site:
        """Parse ``site`` and check its layer / head against this model; return it."""
        s = Site.parse(site)
        spec = self.spec
        if s.layer is not None and spec.n_layers > 0 and not 0 <= s.layer < spec.n_layers:
            msg = f"layer {s.layer} is out of range: {self.name} has {spec.n_layers} layers (0..{spec.n_layers - 1})"
            raise SiteIndexError(msg)
        if s.head is not None and spec.n_heads > 0 and not 0 <= s.head < spec.n_heads:
            msg = f"head {s.head} is out of range: {self.name} has {spec.n_heads} heads per layer (0..{spec.n_heads - 1})"
            raise SiteIndexError(msg)
        known = {i.site.hook_name for i in self.sites()}
        if s.hook_name not in known:
            msg = f"{self.name} has no site {s.hook_name!r}"
            raise UnknownSiteError(msg)
        return s

    # --- running -------------------------------------------------------------
    def to_tokens(self, text: str | Sequence[str], *, prepend_bos: bool = True) -> torch.Tensor:
        return self.backend.to_tokens(text, prepend_bos=prepend_bos)

    def to_str_tokens(self, tokens: torch.Tensor | str) -> list[str]:
        return self.backend.to_str_tokens(tokens)

    def run(
        self,
        tokens: torch.Tensor | str | Sequence[str],
        *,
        capture: Sequence[Site | str] = (),
        interventions: Sequence[Intervention] = (),
        grads: Sequence[Site | str] = (),
        metric: Metric | None = None,
    ) -> RunResult:
        """Run with captures, interventions and gradients; see :meth:`Backend.run`."""
        if isinstance(tokens, str) or (isinstance(tokens, Sequence) and tokens and isinstance(tokens[0], str)):
            tokens = self.to_tokens(tokens)  # type: ignore[arg-type]
        cap = [self.check_site(s) for s in capture]
        grd = [self.check_site(s) for s in grads]
        for iv in interventions:
            self.check_site(iv.site)
        return self.backend.run(tokens, capture=cap, interventions=interventions, grads=grd, metric=metric)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        s = self.spec
        return (f"<interp_widget.Model {self.name!r}: {s.architecture}, {s.n_layers} layers x {s.n_heads} heads, "
                f"d_model={s.d_model}, n_ctx={s.n_ctx}, backend={type(self.backend).__name__}>")
