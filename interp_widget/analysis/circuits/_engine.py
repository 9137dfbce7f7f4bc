"""Edge-level runs of a TransformerLens ``HookedTransformer``: capture, gradients and edge patching.

Per-receiver inputs need TransformerLens's split inputs (``use_split_qkv_input``: ``blocks.L.hook_q_input``
etc. are ``[batch, pos, head, d_model]``, one copy of the residual stream per head and per q/k/v;
``use_hook_mlp_in``; ``use_attn_result``). Those are switched on for the duration of a run and restored.
The static interventions of :meth:`Model.run` cannot express "this head's keys see the residual stream
minus one sender's contribution" without the split inputs, so circuits run on the hook points directly.

A run stacks ``G`` variants of the same ``B`` prompts along the batch axis (run ``g`` owns rows
``g*B .. g*B+B-1``), each with its own set of ablated edges: a receiver's input becomes
``x - sum_{s ablated} (a_s - ref_s)`` where ``a_s`` is sender ``s``'s output *in this run* and ``ref_s`` its
replacement (the corrupted run's output for resample ablation, a mean for mean ablation).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from interp_widget.analysis.circuits.graph import EdgeIndex
from interp_widget.errors import BackendError

if TYPE_CHECKING:
    import torch

    from interp_widget.analysis.metrics import Metric
    from interp_widget.models.model import Model

_TARGETS = ("q", "k", "v")


@dataclass
class Counts:
    """How much work was done: batched forward calls, forward passes (one per run of the B prompts), backward passes."""

    calls: int = 0
    forward_passes: int = 0
    backward_passes: int = 0


def hooked_transformer(model: Model) -> Any:
    raw = getattr(model.backend, "model", None) or model.raw
    cfg = getattr(raw, "cfg", None)
    ok = model.spec.architecture == "hooked-transformer" and hasattr(raw, "set_use_split_qkv_input")
    if raw is None or cfg is None or not ok or not hasattr(raw, "blocks"):
        msg = (f"circuit discovery needs a TransformerLens HookedTransformer (split q/k/v inputs per head); "
               f"{model.name} runs on {type(model.backend).__name__} over {type(raw).__name__}. "
               "Load the weights into a HookedTransformer (iw.load accepts one)")
        raise BackendError(msg)
    return raw


def narrowed(metric: Metric, n_pos: int) -> tuple[list[int] | None, Metric]:
    """The positions ``metric`` reads (None: all) and the metric on logits of only those positions."""
    nar = metric.narrow(n_pos)
    return (None, metric) if nar is None else (list(nar[0]), nar[1])


class EdgeRunner:
    """Runs a model with edge-level captures, gradients and ablations (see the module docstring)."""

    def __init__(self, model: Model, *, max_bytes: int = 256 * 2**20) -> None:
        self.model = model
        self.raw = hooked_transformer(model)
        self.ix = EdgeIndex.from_spec(model.spec)
        self.max_bytes = max_bytes
        self.counts = Counts()
        n = len(self.ix.receivers)
        self.offsets = [0] * n
        off = 0
        for r, rec in enumerate(self.ix.receivers):
            self.offsets[r] = off
            off += rec.n_upstream
        self.n_edges = off
        #: per layer: index of the first receiver of that layer (q of head 0)
        self._layer_r: list[int] = []
        r = 0
        h = model.spec.n_heads
        for _ in range(model.spec.n_layers):
            self._layer_r.append(r)
            r += 3 * h + (1 if self.ix.has_mlp else 0)
        self._logits_r = r

    # --- switches -------------------------------------------------------------------
    @contextmanager
    def _split(self) -> Iterator[None]:
        raw = self.raw
        cfg = raw.cfg
        old = (cfg.use_split_qkv_input, cfg.use_attn_result, getattr(cfg, "use_hook_mlp_in", False))
        try:
            raw.set_use_split_qkv_input(True)
            raw.set_use_attn_result(True)
            if self.ix.has_mlp:
                raw.set_use_hook_mlp_in(True)
            yield
        finally:
            raw.set_use_split_qkv_input(old[0])
            raw.set_use_attn_result(old[1])
            if self.ix.has_mlp:
                raw.set_use_hook_mlp_in(old[2])

    def sender_slice(self, layer: int) -> tuple[int, int]:
        """Sender indices of layer ``layer``'s heads."""
        per = self.model.spec.n_heads + (1 if self.ix.has_mlp else 0)
        start = 1 + layer * per
        return start, start + self.model.spec.n_heads

    def receiver_edges(self, r: int) -> slice:
        return slice(self.offsets[r], self.offsets[r] + self.ix.receivers[r].n_upstream)

    # --- the one run ------------------------------------------------------------------
    def run(self, tokens: torch.Tensor, n_runs: int = 1, *, ref: torch.Tensor | None = None,
            ablate: torch.Tensor | None = None, input_value: torch.Tensor | None = None,
            capture: bool = False, grads: bool = False,
            positions: list[int] | None = None) -> tuple[torch.Tensor, torch.Tensor | None, dict[int, Any]]:
        """One batched forward of ``n_runs`` copies of ``tokens`` ``[B, pos]``.

        ``ablate`` ``[n_runs, n_edges]`` (bool) with ``ref`` ``[S, B, pos, d]``: the edges to ablate per run.
        ``input_value`` ``[rows, pos, d]`` replaces the embeddings (``blocks.0.hook_resid_pre``).
        ``positions``: unembed only these positions (logits ``[rows, len(positions), d_vocab]``).
        Returns ``(logits, acts, receiver_inputs)``: ``acts`` ``[S, rows, pos, d]`` when ``capture``;
        ``receiver_inputs`` keyed by first receiver index of each group, kept for autograd when ``grads``.
        """
        import torch

        spec = self.model.spec
        b, p = tokens.shape
        rows = b * n_runs
        s_all = len(self.ix.senders)
        d = spec.d_model
        patching = ablate is not None and bool(ablate.any())
        buf: torch.Tensor | None = None
        if patching or capture:
            buf = torch.zeros(s_all, rows, p, d, dtype=torch.float32)
        recv: dict[int, Any] = {}
        hooks: list[tuple[str, Callable[..., Any]]] = []

        def put(lo: int, x: torch.Tensor) -> None:
            # x: [rows, pos, d] or [rows, pos, n, d] for senders lo..lo+n-1
            assert buf is not None
            v = x.detach().float()
            if v.ndim == 3:
                v = v[:, :, None]
            v = v.permute(2, 0, 1, 3)  # [n, rows, pos, d]
            if patching and ref is not None:
                n = v.shape[0]
                v = (v.reshape(n, n_runs, b, p, d) - ref[lo:lo + n, None]).reshape(n, rows, p, d)
            buf[lo:lo + v.shape[0]] = v

        def fix(x: torch.Tensor, r0: int, n_targets: int) -> torch.Tensor:
            """Subtract the ablated senders' differences from receivers r0..r0+n_targets-1 (same upstream)."""
            if grads:
                recv[r0] = x
            if not patching:
                return x
            assert ablate is not None and buf is not None
            n_up = self.ix.receivers[r0].n_upstream
            m = torch.stack([ablate[:, self.receiver_edges(r0 + j)] for j in range(n_targets)], -1)  # [G, n_up, T]
            used = m.any(0).any(-1).nonzero().flatten()
            if used.numel() == 0:
                return x
            mf = m[:, used].to(x.dtype)
            dsel = buf[:n_up][used] if used.numel() < n_up else buf[:n_up]
            if used.numel() == n_up:
                mf = m.to(x.dtype)
            dsel = dsel.reshape(-1, n_runs, b, p, d).to(x.dtype)
            corr = torch.einsum("sgbpd,gst->gbptd", dsel, mf).reshape(rows, p, n_targets, d)
            return x - (corr if x.ndim == 4 else corr[:, :, 0])

        def hook_input(x: torch.Tensor, hook: Any) -> torch.Tensor:
            if input_value is not None:
                x = input_value.to(x.dtype)
            if grads:
                x = x.detach().requires_grad_(True)
            if buf is not None:
                put(0, x)
            return x

        hooks.append(("blocks.0.hook_resid_pre", hook_input))
        h = spec.n_heads
        for layer in range(spec.n_layers):
            r0 = self._layer_r[layer]
            for t_i, t in enumerate(_TARGETS):
                def hook_qkv(x: torch.Tensor, hook: Any, r: int = r0 + t_i * h) -> torch.Tensor:
                    return fix(x, r, h)
                hooks.append((f"blocks.{layer}.hook_{t}_input", hook_qkv))
            if buf is not None:
                lo, _ = self.sender_slice(layer)

                def hook_res(x: torch.Tensor, hook: Any, lo: int = lo) -> torch.Tensor:
                    put(lo, x)
                    return x
                hooks.append((f"blocks.{layer}.attn.hook_result", hook_res))
            if self.ix.has_mlp:
                def hook_mlp_in(x: torch.Tensor, hook: Any, r: int = r0 + 3 * h) -> torch.Tensor:
                    return fix(x, r, 1)
                hooks.append((f"blocks.{layer}.hook_mlp_in", hook_mlp_in))
                if buf is not None:
                    _, hi = self.sender_slice(layer)

                    def hook_mlp_out(x: torch.Tensor, hook: Any, lo: int = hi) -> torch.Tensor:
                        put(lo, x)
                        return x
                    hooks.append((f"blocks.{layer}.hook_mlp_out", hook_mlp_out))

        def hook_final(x: torch.Tensor, hook: Any) -> torch.Tensor:
            return fix(x, self._logits_r, 1)

        hooks.append((f"blocks.{spec.n_layers - 1}.hook_resid_post", hook_final))
        toks = tokens.repeat(n_runs, 1) if n_runs > 1 else tokens
        with self._split(), torch.set_grad_enabled(grads), self.raw.hooks(fwd_hooks=hooks):
            if positions is None:
                logits = self.raw(toks)
            else:  # the final LayerNorm is per position: slicing before it is exact
                resid = self.raw(toks, stop_at_layer=spec.n_layers)[:, positions]
                if self.raw.cfg.normalization_type is not None:
                    resid = self.raw.ln_final(resid)
                logits = self.raw.unembed(resid)
        self.counts.calls += 1
        self.counts.forward_passes += n_runs
        acts = buf if capture else None
        return logits, acts, recv

    # --- helpers ---------------------------------------------------------------------
    def runs_per_chunk(self, b: int, p: int) -> int:
        per_run = len(self.ix.senders) * b * p * self.model.spec.d_model * 4 * 3
        return max(1, self.max_bytes // max(per_run, 1))

    def ablated_metric(self, tokens: torch.Tensor, metric: Metric, ref: torch.Tensor,
                       ablate: torch.Tensor) -> torch.Tensor:
        """The metric for each row of ``ablate`` ``[G, n_edges]``, in chunks sized to ``max_bytes``."""
        import torch

        b, p = tokens.shape
        step = self.runs_per_chunk(b, p)
        positions, metric = narrowed(metric, p)
        out = []
        with torch.no_grad():
            for i in range(0, ablate.shape[0], step):
                chunk = ablate[i:i + step]
                logits, _, _ = self.run(tokens, chunk.shape[0], ref=ref, ablate=chunk, positions=positions)
                out.append(metric.per_run(logits, b).detach().float())
        return torch.cat(out) if out else torch.zeros(0)

    def capture(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and every sender's output ``[S, B, pos, d]`` (no gradients)."""
        import torch

        with torch.no_grad():
            logits, acts, _ = self.run(tokens, capture=True)
        assert acts is not None
        return logits, acts

    def receiver_grads(self, tokens: torch.Tensor, metric: Metric, *, n_runs: int = 1,
                       input_value: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, dict[int, torch.Tensor]]:
        """d(metric)/d(every receiver input), summed over ``n_runs`` runs: ``{first receiver: grad}``.

        Returns ``(logits, acts, grads)`` with ``acts`` the senders' outputs of the run."""
        import torch

        b = tokens.shape[0]
        positions, metric = narrowed(metric, tokens.shape[1])
        logits, acts, recv = self.run(tokens, n_runs, input_value=input_value, capture=True, grads=True,
                                      positions=positions)
        keys = list(recv)
        value = metric.scalar(logits, b)
        gs = torch.autograd.grad(value, [recv[k] for k in keys], allow_unused=True)
        self.counts.backward_passes += n_runs
        out = {}
        for k, g in zip(keys, gs, strict=True):
            g = torch.zeros_like(recv[k]) if g is None else g.detach().float()
            if n_runs > 1:
                g = g.reshape(n_runs, b, *g.shape[1:]).sum(0)
            out[k] = g
        assert acts is not None
        return logits.detach(), acts, out
