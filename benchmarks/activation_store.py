"""Benchmark: peak memory of activation capture as the token count grows 10x, vs keeping everything in memory.

A seeded random 1-layer ``HookedTransformer`` (d_model 512, 128-token sequences) runs over ``N`` and
``10 N`` random tokens, capturing ``blocks.0.hook_resid_post`` (2 KiB per token, float32):

* *store*: :func:`interp_widget.analysis.activation_store.capture_activations` to a temporary directory
  (``--shard-tokens`` tokens per shard);
* *naive*: the usual loop, ``acts.append(run.cache[site])`` per batch then ``torch.cat`` at the end.

Each (method, size) runs in its own subprocess. After the model is built and one small capture has run, the
process's peak-RSS mark is reset (``/proc/self/clear_refs``) and the resident size noted; the
figure reported is the new peak (``VmHWM``) minus that baseline: the memory the capture itself needed.
The printed ratio ``peak(10 N) / peak(N)`` is about 1x for a bounded store and about 10x for the naive loop.

    python benchmarks/activation_store.py                   # N = 20,000 and 200,000 tokens
    python benchmarks/activation_store.py --tokens 5000     # quicker

Linux only (``/proc``). Nothing here asserts a number.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEQ, D_MODEL, BATCH = 128, 512, 16


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    msg = f"no {field} in /proc/self/status"
    raise RuntimeError(msg)


def child(method: str, n_tokens: int, shard_tokens: int) -> dict[str, float]:
    """Run one capture in this process; return its peak memory above the baseline (MiB)."""
    import time
    import warnings

    import torch

    sys.path.insert(0, str(ROOT))
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    from interp_widget.analysis.activation_store import capture_activations
    from interp_widget.models.loading import load

    torch.set_num_threads(1)
    cfg = HookedTransformerConfig(n_layers=1, d_model=D_MODEL, n_ctx=SEQ, d_head=64, n_heads=8, d_vocab=512,
                                  attn_only=True, normalization_type=None, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = load(HookedTransformer(cfg).eval())
    site = "blocks.0.hook_resid_post"
    tokens = torch.randint(0, 512, (n_tokens // SEQ, SEQ), generator=torch.Generator().manual_seed(0))
    with tempfile.TemporaryDirectory() as d:  # warm up: imports, allocator and kernels (both methods alike)
        capture_activations(model, site, tokens[:BATCH], d, shard_tokens=shard_tokens, batch_size=BATCH,
                            progress=False)
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak-RSS mark
    base = _status_kb("VmRSS")
    t0 = time.perf_counter()
    if method == "store":
        with tempfile.TemporaryDirectory() as d:
            store = capture_activations(model, site, tokens, d, shard_tokens=shard_tokens, batch_size=BATCH,
                                        progress=False)
            n = len(store)
    else:
        acts = []
        with torch.no_grad():
            for i in range(0, len(tokens), BATCH):
                acts.append(model.run(tokens[i:i + BATCH], capture=[site]).cache[site].reshape(-1, D_MODEL))
        n = int(torch.cat(acts).shape[0])
    seconds = time.perf_counter() - t0
    peak = _status_kb("VmHWM")
    return {"tokens": n, "peak_mib": (peak - base) / 1024, "seconds": seconds}


def run(method: str, n_tokens: int, shard_tokens: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--child", method, str(n_tokens), str(shard_tokens)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=20_000, help="the smaller token count N (the larger is 10 N)")
    ap.add_argument("--shard-tokens", type=int, default=8192)
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], int(args.child[1]), int(args.child[2]))))
        return
    sizes = [args.tokens, 10 * args.tokens]
    data_mib = {n: (n // SEQ) * SEQ * D_MODEL * 4 / 2**20 for n in sizes}
    print(f"site blocks.0.hook_resid_post, d_model {D_MODEL}: {D_MODEL * 4} bytes per token; "
          f"shards of {args.shard_tokens} tokens ({args.shard_tokens * D_MODEL * 4 / 2**20:.0f} MiB)")
    print(f"{'method':<8}{'tokens':>10}{'activations MiB':>18}{'peak above baseline MiB':>26}{'seconds':>10}")
    peaks: dict[str, list[float]] = {}
    for method in ("store", "naive"):
        for n in sizes:
            r = run(method, n, args.shard_tokens)
            peaks.setdefault(method, []).append(r["peak_mib"])
            print(f"{method:<8}{int(r['tokens']):>10}{data_mib[n]:>18.1f}{r['peak_mib']:>26.1f}{r['seconds']:>10.1f}",
                  flush=True)
    for method, (small, big) in peaks.items():
        print(f"{method}: peak memory grows {big / max(small, 1e-9):.2f}x for 10x the tokens")
    print(f"at {sizes[1]} tokens the store needs {peaks['naive'][1] / max(peaks['store'][1], 1e-9):.1f}x "
          "less memory than the naive list + torch.cat")


if __name__ == "__main__":
    main()
