"""Edge attribution patching: EAP (Syed et al. 2023) and EAP with integrated gradients (Hanna et al. 2024).

The score of edge ``s -> r`` is ``(a_s(clean) - a_s(corrupted)) . dM/dx_r``: sender ``s``'s output
difference dotted with the gradient of the metric with respect to receiver ``r``'s input, summed over
prompts' positions (the metric is already a mean over prompts). Every receiver input is the sum of its
upstream senders' outputs, so one clean forward and backward (plus one corrupted forward for the
differences) scores every edge at once. The score estimates ``M(clean) - M(clean with the edge's sender
contribution corrupted)``: positive edges support the clean behaviour.

EAP-IG replaces the clean gradient by its average over ``steps`` points on the straight line from the
corrupted to the clean input embeddings (``alpha = k/steps``, ``k = 1..steps``), computed in one batched
forward and backward.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from interp_widget.analysis.circuits._engine import EdgeRunner

if TYPE_CHECKING:
    import torch

    from interp_widget.analysis.metrics import Metric


def scores_from_grads(runner: EdgeRunner, delta: torch.Tensor, grads: dict[int, torch.Tensor]) -> torch.Tensor:
    """Edge scores ``[n_edges]`` from sender differences ``[S, B, pos, d]`` and receiver-input gradients."""
    import torch

    scores = torch.zeros(runner.n_edges)
    for r0, g in grads.items():
        n_up = runner.ix.receivers[r0].n_upstream
        dl = delta[:n_up].to(g.dtype)
        # a head group's gradient is [B, pos, head, d] (receivers r0 .. r0 + H - 1), else [B, pos, d]
        sc = torch.einsum("sbpd,bphd->hs", dl, g) if g.ndim == 4 else torch.einsum("sbpd,bpd->s", dl, g)[None]
        for j in range(sc.shape[0]):
            scores[runner.receiver_edges(r0 + j)] = sc[j]
    return scores


def eap_scores(runner: EdgeRunner, clean: torch.Tensor, metric: Metric, clean_acts: torch.Tensor,
               corr_acts: torch.Tensor, *, ig_steps: int | None = None) -> torch.Tensor:
    """EAP (``ig_steps=None``: one clean forward and backward) or EAP-IG scores ``[n_edges]``.

    ``clean_acts`` / ``corr_acts``: every sender's output ``[S, B, pos, d]`` on the clean / corrupted prompts."""
    import torch

    if ig_steps is None:
        _, _, grads = runner.receiver_grads(clean, metric)
    else:
        if ig_steps < 1:
            msg = f"ig_steps must be at least 1, not {ig_steps}"
            raise ValueError(msg)
        e_clean, e_corr = clean_acts[0], corr_acts[0]
        alphas = torch.arange(1, ig_steps + 1, dtype=torch.float32) / ig_steps
        x = (e_corr[None] + alphas[:, None, None, None] * (e_clean - e_corr)[None]).reshape(-1, *e_clean.shape[1:])
        _, _, grads = runner.receiver_grads(clean, metric, n_runs=ig_steps, input_value=x)
        grads = {k: g / ig_steps for k, g in grads.items()}
    return scores_from_grads(runner, clean_acts - corr_acts, grads)
