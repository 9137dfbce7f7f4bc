"""Benchmark: batched activation patching and attribution patching vs TransformerLens's ``patching`` utilities.

A GPT-2-small-shaped ``HookedTransformer`` with random (seeded) weights: 12 layers, 12 heads,
d_model 768, d_mlp 3072, d_vocab 50257, and a 20-token clean / corrupted prompt pair (random tokens;
the corrupted prompt differs at two positions in the middle, as a minimal pair does). Metric: the logit
difference of two tokens at the last position. In the same run, on the same model:

* the head-output sweep (all positions, 12 x 12) and the residual-stream sweep (layer x position,
  12 x 20): TransformerLens's ``get_act_patch_attn_head_out_all_pos`` / ``get_act_patch_resid_pre``
  (one forward pass per site, plus the clean cache) against :func:`interp_widget.analysis.patching.patch`
  through the TransformerLens backend: wall time, forward passes, speed-up, and the largest difference;
* attribution patching (plain AtP and AtP*) over the same two sweeps: time and Pearson correlation
  with exact patching in the same direction (clean run patched with corrupted activations).

What the batched sweep does that the sequential utility does not (all exact; see
``interp_widget/analysis/sweeps.py``): many patched runs per forward pass (a different site per batch
row), each chunk started at its lowest patched layer from the corrupted run's cached residual stream,
only the metric's logit position unembedded, the positions shared by both prompts taken from the
corrupted run's cached keys and values instead of recomputed, and sites whose clean and corrupted
activations are identical not run at all. "fwd passes" counts batched passes (AtP*: its forward and
backward passes, plus one score-only pass per layer for the QK fix).

    python benchmarks/patching.py                  # the full benchmark (a few minutes on one CPU core)
    python benchmarks/patching.py --layers 4       # a quicker, smaller model
    python benchmarks/patching.py --threads 1      # steadier when other jobs share the CPU

Timings are wall-clock on this machine; the ratios are what to compare. Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

from _models import gpt2_shaped  # benchmarks/ is on sys.path when a benchmark runs as a script

os.environ.setdefault("TQDM_DISABLE", "1")  # TransformerLens's utilities draw progress bars



def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--d-vocab", type=int, default=50257)
    ap.add_argument("--tokens", type=int, default=20)
    ap.add_argument("--threads", type=int, default=0,
                    help="torch threads (default: torch's own choice; 1 is steadier on a shared CPU)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-bytes", type=int, default=None, help="chunk memory budget of the batched sweeps")
    args = ap.parse_args()

    import torch
    import transformer_lens.patching as tlp

    from interp_widget.analysis.attribution import attribute
    from interp_widget.analysis.metrics import logit_diff
    from interp_widget.analysis.patching import patch
    from interp_widget.analysis.results import pearson
    from interp_widget.models.model import Model
    from interp_widget.tracing.tl import TransformerLensBackend

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    ht, clean, corrupted = gpt2_shaped(args.layers, args.d_vocab, args.tokens, args.seed)
    model = Model(TransformerLensBackend(ht), name=ht.cfg.model_name)
    ans, wrong = 11, 22
    metric = logit_diff(ans, wrong)

    def tl_metric(logits: torch.Tensor) -> torch.Tensor:
        return (logits[:, -1, ans] - logits[:, -1, wrong]).mean()

    ht(clean)  # warm up
    n_l, n_h, n_p = args.layers, 12, args.tokens
    print(f"model: {ht.cfg.model_name}: {n_l} layers x {n_h} heads, d_model 768, d_mlp 3072, d_vocab {args.d_vocab}; "
          f"{n_p}-token prompt pair; torch threads: {torch.get_num_threads()}")
    rows: list[tuple[str, str, float, int, str]] = []
    exact: dict[str, torch.Tensor] = {}
    for sweep, tl_fn, n_sites in (("heads", tlp.get_act_patch_attn_head_out_all_pos, n_l * n_h),
                                  ("resid_pre", tlp.get_act_patch_resid_pre, n_l * n_p)):

        def tl_run(fn: Any = tl_fn) -> torch.Tensor:
            _, cache = ht.run_with_cache(clean)
            return fn(ht, corrupted, cache, tl_metric)

        ref, t_tl = timed(tl_run)
        ours, t_ours = timed(lambda sweep=sweep: patch(model, clean, corrupted, metric, sweep,
                                                       max_bytes=args.max_bytes))
        diff = float((ours.values - ref.cpu()).abs().max())
        rows.append((sweep, "TransformerLens patching", t_tl, n_sites + 1, ""))
        skipped, shared = int(ours.meta["unchanged_sites"]), int(ours.meta["shared_prefix"])
        rows.append((sweep, "interp_widget patch (batched)", t_ours, int(ours.meta["forward_passes"]),
                     f"{t_tl / t_ours:.1f}x faster; max |diff| {diff:.1e}"
                     + (f"; {skipped} unchanged sites not run" if skipped else "")
                     + (f"; shared prefix of {shared} positions from cache" if shared else "")))
        noise, _ = timed(lambda sweep=sweep: patch(model, clean, corrupted, metric, sweep, direction="noise",
                                                   max_bytes=args.max_bytes))
        exact[sweep] = noise.values
        for method in ("atp", "atp*"):
            a, t_a = timed(lambda sweep=sweep, method=method: attribute(model, clean, corrupted, metric, sweep,
                                                                         method=method))  # type: ignore[misc]
            r = pearson(a.values, exact[sweep])
            rows.append((sweep, f"attribution {method.upper()}", t_a, int(a.meta["forward_passes"]),
                         f"{t_tl / t_a:.0f}x faster than TL; pearson r vs exact = {r:.3f}"))

    w = max(len(r[1]) for r in rows)
    print(f"\n{'sweep':<10} {'method':<{w}} {'time (s)':>9} {'fwd passes':>10}  note")
    print("-" * (w + 60))
    for sweep, method, t, passes, note in rows:
        print(f"{sweep:<10} {method:<{w}} {t:>9.2f} {passes:>10}  {note}")


if __name__ == "__main__":
    main()
