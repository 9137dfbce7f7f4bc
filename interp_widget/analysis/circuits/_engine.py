"""Edge-level runs of a model: capture, gradients and edge patching.

Where the senders and receivers are in each kind of model is the business of
:mod:`._adapters` (TransformerLens split-input hook points; Hugging Face GPT-2 through nnsight).
The static interventions of :meth:`Model.run` cannot express "this head's keys see the residual stream
minus one sender's contribution", so circuits run through those adapters.

A run stacks ``G`` variants of the same ``B`` prompts along the batch axis (run ``g`` owns rows
``g*B .. g*B+B-1``), each with its own set of ablated edges: a receiver's input becomes
``x - sum_{s ablated} (a_s - ref_s)`` where ``a_s`` is sender ``s``'s output *in this run* and ``ref_s`` its
replacement (the corrupted run's output for resample ablation, a mean for mean ablation).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from interp_widget.analysis.circuits._adapters import adapter_for
from interp_widget.analysis.circuits.graph import EdgeIndex

if TYPE_CHECKING:
    import torch

    from interp_widget.analysis.metrics import Metric
    from interp_widget.models.model import Model

@dataclass
class Counts:
    """How much work was done: batched forward calls, forward passes (one per run of the B prompts), backward passes."""

    calls: int = 0
    forward_passes: int = 0
    backward_passes: int = 0


def narrowed(metric: Metric, n_pos: int) -> tuple[list[int] | None, Metric]:
    """The positions ``metric`` reads (None: all) and the metric on logits of only those positions."""
    nar = metric.narrow(n_pos)
    return (None, metric) if nar is None else (list(nar[0]), nar[1])


class EdgeRunner:
    """Runs a model with edge-level captures, gradients and ablations (see the module docstring)."""

    def __init__(self, model: Model, *, max_bytes: int = 256 * 2**20) -> None:
        self.model = model
        self.adapter = adapter_for(model)
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

        runner = self

        class Hooks:
            capture = buf is not None
            edit = patching or grads

            def input(self, x: torch.Tensor) -> torch.Tensor:
                if input_value is not None:
                    x = input_value.to(x.dtype)
                if grads:
                    x = x.detach().requires_grad_(True)
                if buf is not None:
                    put(0, x)
                return x

            def qkv(self, layer: int, t: int, x: torch.Tensor) -> torch.Tensor:
                return fix(x, runner._layer_r[layer] + t * spec.n_heads, spec.n_heads)

            def head_results(self, layer: int, x: torch.Tensor) -> None:
                put(runner.sender_slice(layer)[0], x)

            def mlp_in(self, layer: int, x: torch.Tensor) -> torch.Tensor:
                return fix(x, runner._layer_r[layer] + 3 * spec.n_heads, 1)

            def mlp_out(self, layer: int, x: torch.Tensor) -> None:
                put(runner.sender_slice(layer)[1], x)

            def final(self, x: torch.Tensor) -> torch.Tensor:
                return fix(x, runner._logits_r, 1)

        toks = tokens.repeat(n_runs, 1) if n_runs > 1 else tokens
        with torch.set_grad_enabled(grads):
            logits = self.adapter.forward(toks, Hooks(), positions)
        self.counts.calls += 1
        self.counts.forward_passes += n_runs
        acts = buf if capture else None
        return logits, acts, recv

    # --- helpers ---------------------------------------------------------------------
    def runs_per_chunk(self, b: int, p: int) -> int:
        per_run = len(self.ix.senders) * b * p * self.model.spec.d_model * 4 * 3
        return max(1, self.max_bytes // max(per_run, 1))

    def ablated_metric(self, tokens: torch.Tensor, metric: Metric, ref: torch.Tensor,
                       ablate: torch.Tensor, report: Callable[[int], None] | None = None) -> torch.Tensor:
        """The metric for each row of ``ablate`` ``[G, n_edges]``, in chunks sized to ``max_bytes``;
        ``report(rows_done)`` after each chunk (an exception it raises stops the work)."""
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
                if report is not None:
                    report(min(i + step, ablate.shape[0]))
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
