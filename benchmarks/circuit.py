"""Benchmark: circuit discovery (EAP, EAP-IG, exact ACDC-style pruning) vs brute-force edge patching.

A GPT-2-small-shaped ``HookedTransformer`` with random (seeded) weights: 12 layers, 12 heads, d_model 768,
d_mlp 3072, d_vocab 50257; 20-token clean / corrupted prompts (random tokens, the corrupted one differs at
two positions in the middle). Metric: the logit difference of two tokens at the last position. The edge
graph has input + 144 heads + 12 MLPs as senders and every head's q/k/v, every MLP and the logits as
receivers: 32,491 edges.

In the same run, on the same model:

* brute force: exact edge patching of a random sample of edges, one forward pass per edge (sequential,
  batch 1), and its per-edge time extrapolated to every edge;
* the same sample by the batched edge patching (many edges per forward pass);
* EAP (1 corrupted forward + 1 clean forward and backward), EAP-IG (``--ig-steps`` interpolation points,
  batched into one forward and backward), each with its Spearman rank correlation against the sample's
  exact effects, and its speed-up over brute-forcing every edge;
* exact pruning seeded from EAP-IG: the ``--candidates`` best edges are verified by patching (batched),
  greedily pruned at a threshold of 1% of the clean-corrupted gap and then checked to a fixed point.

"forward passes" count runs of the prompt (a batched call of 64 patched runs counts 64); "calls" count
batched forward calls. Timings are wall-clock on this machine; compare the ratios.

    python benchmarks/circuit.py                   # the full benchmark (minutes on one CPU core)
    python benchmarks/circuit.py --layers 4        # quicker
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from _models import gpt2_shaped  # benchmarks/ is on sys.path when a benchmark runs as a script


def spearman(a: Any, b: Any) -> float:
    ra, rb = a.argsort().argsort().double(), b.argsort().argsort().double()
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra * rb).sum() / (ra.norm() * rb.norm()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--d-vocab", type=int, default=50257)
    ap.add_argument("--pos", type=int, default=20)
    ap.add_argument("--sample", type=int, default=40, help="edges patched by brute force")
    ap.add_argument("--ig-steps", type=int, default=5)
    ap.add_argument("--candidates", type=int, default=128, help="edges the exact pruning verifies")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from interp_widget.analysis.circuits import EdgeRunner, circuit, edge_patch
    from interp_widget.analysis.metrics import bind_metric, logit_diff
    from interp_widget.models.model import Model
    from interp_widget.tracing.tl import TransformerLensBackend

    ht, clean, corrupted = gpt2_shaped(args.layers, args.d_vocab, args.pos, args.seed)
    model = Model(TransformerLensBackend(ht), raw=ht)
    metric = logit_diff(11, 22)
    circuit(model, clean, corrupted, metric, method="eap")  # warm-up
    rows: list[tuple[str, float, str, str]] = []

    run = EdgeRunner(model)
    _, corr_acts = run.capture(corrupted)
    clean_logits, _ = run.capture(clean)
    m = bind_metric(metric, model, tokens=clean, reference_logits=clean_logits)
    clean_m = float(m.per_run(clean_logits, 1)[0])
    n_edges = run.n_edges
    sample = torch.randperm(n_edges, generator=torch.Generator().manual_seed(args.seed))[:args.sample].tolist()
    names = [run.ix.edge_name(e) for e in sample]
    t0 = time.perf_counter()
    brute = []
    for e in sample:
        mask = torch.zeros(1, n_edges, dtype=torch.bool)
        mask[0, e] = True
        brute.append(clean_m - float(run.ablated_metric(clean, m, corr_acts, mask)[0]))
    t_brute = time.perf_counter() - t0
    per_edge = t_brute / len(sample)
    t_all = per_edge * n_edges
    exact = torch.tensor(brute)
    rows.append((f"brute force, {len(sample)} sampled edges (sequential)", t_brute, f"{len(sample)}", "1.0x"))
    rows.append((f"brute force, all {n_edges} edges (extrapolated)", t_all, f"{n_edges}", "1.0x"))

    t0 = time.perf_counter()
    batched = edge_patch(model, clean, corrupted, metric, names)
    t_b = time.perf_counter() - t0
    diff = max(abs(batched[n] - v) for n, v in zip(names, brute, strict=True))
    rows.append((f"batched edge patching, {len(sample)} sampled edges", t_b, f"{len(sample)}",
                 f"{t_brute / t_b:.1f}x vs sequential (max diff {diff:.1e})"))

    graphs = {}
    for method in ("eap", "eap-ig"):
        t0 = time.perf_counter()
        g = circuit(model, clean, corrupted, metric, method=method, ig_steps=args.ig_steps)
        t = time.perf_counter() - t0
        graphs[method] = g
        rho = spearman(g.scores[sample], exact)
        mt = g.meta
        rows.append((f"{method} (all edges)", t, f"{mt['forward_passes']} fwd + {mt['backward_passes']} bwd",
                     f"{t_all / t:,.0f}x vs brute force; Spearman {rho:.3f} on the sample"))
    t0 = time.perf_counter()
    a = circuit(model, clean, corrupted, metric, method="acdc", seed="eap-ig", ig_steps=args.ig_steps,
                max_candidates=args.candidates)
    t = time.perf_counter() - t0
    mt = a.meta
    rows.append((f"exact pruning ({args.candidates} candidates, threshold {mt['threshold']:.3g})", t,
                 f"{mt['forward_passes']} fwd + {mt['backward_passes']} bwd in {mt['calls']} calls",
                 f"{t_all / t:,.0f}x vs brute force; kept {int(a.kept.sum())} edges, "
                 f"{mt['edges_measured']} removals measured"))

    print(f"model: {args.layers} layers x 12 heads, d_model 768, d_vocab {args.d_vocab}; {args.pos} tokens; "
          f"{n_edges} edges; torch threads {torch.get_num_threads()}")
    print(f"clean metric {a.clean_metric:.4f}, corrupted {a.corrupted_metric:.4f}")
    w = max(len(r[0]) for r in rows)
    print(f"{'method':<{w}}  {'seconds':>9}  {'passes':<34} ratio")
    for name, sec, passes, ratio in rows:
        print(f"{name:<{w}}  {sec:9.2f}  {passes:<34} {ratio}")


if __name__ == "__main__":
    main()
