"""Benchmark: round trips and bytes per remote analysis, one request vs one request per run.

Starts the real NDIF 0.1.2 stack on 127.0.0.1 (``tests/ndif/stack.py``: Redis, Ray, NDIF's controller,
dispatcher and API, moto as S3) with a seeded GPT-2-shaped model (4 layers x 8 heads, d_model 64, vocab
50; random weights) deployed on the CPU, and measures, in the same run, for each analysis:

* **one request**: ``iw.remote.run(model, analysis, ...)``: the whole analysis (every batched forward
  pass) runs on the server and only its result comes back;
* **per pass**: the analysis called on the remote model directly (``iw.patch(model, ...)``): one
  request per batched forward pass, each pass's logits and captured activations come back;
* **naive**: one request per patched run (per head, per layer), the way a sweep is written as a loop
  of ``model.trace(..., remote=True)`` calls.

Analyses: the head patching sweep (all 32 heads, all positions), attribution patching over the heads
(AtP*), and the attention fetch (every layer's pattern for one prompt: one request capturing all layers
vs one request per layer). Bytes: the request payloads sent and the frames / downloads received.

    python benchmarks/remote.py                 # ~2-3 minutes, most of it starting the stack

The values of the one-request head sweep are checked against the naive loop (max |diff| is printed).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "tests" / "ndif"))

import _tiny_models as tiny  # noqa: E402
from stack import NdifStack  # noqa: E402

import interp_widget as iw  # noqa: E402
from interp_widget.tracing.base import Intervention  # noqa: E402
from interp_widget.tracing.sites import Site  # noqa: E402

N_LAYERS, N_HEADS = 4, 8


def build_model(path: str) -> None:
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = GPT2Config(vocab_size=tiny.D_VOCAB, n_positions=32, n_embd=64, n_layer=N_LAYERS, n_head=N_HEADS,
                     bos_token_id=0, eos_token_id=0)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(cfg).eval()
    model.save_pretrained(path)
    tiny.tokenizer().save_pretrained(path)


def metric(logits: torch.Tensor) -> torch.Tensor:
    return logits[:, -1, 3] - logits[:, -1, 4]


class Meter:
    """Round trips and bytes over the jobs a block of code sent."""

    def __init__(self, model: Any) -> None:
        self.backend = model.backend

    def __enter__(self) -> Meter:
        self.start = len(self.backend.jobs)
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.seconds = time.perf_counter() - self.t0
        jobs = self.backend.jobs[self.start:]
        self.trips = sum(j.round_trips for j in jobs)
        self.sent = sum(j.bytes_sent for j in jobs)
        self.received = sum(j.bytes_received for j in jobs)


def naive_head_sweep(model: Any, clean: str, corrupted: str) -> torch.Tensor:
    c, k = model.to_tokens(clean), model.to_tokens(corrupted)
    zs = [f"blocks.{layer}.attn.hook_z" for layer in range(N_LAYERS)]
    cache = model.run(c, capture=zs).cache
    out = torch.empty(N_LAYERS, N_HEADS)
    for layer in range(N_LAYERS):
        for head in range(N_HEADS):
            site = Site("attn.hook_z", layer, head)
            iv = Intervention(site, "set", cache[zs[layer]][:, :, head])
            logits = model.run(k, interventions=[iv]).logits
            out[layer, head] = metric(logits)[0]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model_dir = tempfile.mkdtemp(prefix="iw-bench-gpt2-")
    build_model(model_dir)
    stack = NdifStack(model_dir)
    t0 = time.perf_counter()
    stack.start()
    try:
        print(f"NDIF stack on {stack.host} up in {time.perf_counter() - t0:.0f} s")
        model = iw.load(model_dir, remote=True, host=stack.host, timeout=600)
        t0 = time.perf_counter()
        model.run(model.to_tokens("a b"))
        print(f"first request (deploys the model): {time.perf_counter() - t0:.1f} s\n")
        clean, corrupted = tiny.text(12, seed=1), tiny.text(12, seed=2)
        rows: list[tuple[str, str, Meter]] = []

        with Meter(model) as m:
            one = iw.remote.run(model, iw.patch, clean, corrupted, metric, sites="heads")
        rows.append(("head sweep (4x8)", "one request", m))
        with Meter(model) as m:
            iw.patch(model, clean, corrupted, metric, sites="heads")
        rows.append(("head sweep (4x8)", "per pass", m))
        with Meter(model) as m:
            naive = naive_head_sweep(model, clean, corrupted)
        rows.append(("head sweep (4x8)", "naive: per run", m))
        diff = float((one.values - naive).abs().max())

        with Meter(model) as m:
            iw.remote.run(model, iw.attribute, clean, corrupted, metric, sites="heads")
        rows.append(("attribution (AtP*)", "one request", m))
        with Meter(model) as m:
            iw.attribute(model, clean, corrupted, metric, sites="heads")
        rows.append(("attribution (AtP*)", "naive: per pass", m))

        toks = model.to_tokens(clean)
        pats = [f"blocks.{layer}.attn.hook_pattern" for layer in range(N_LAYERS)]
        with Meter(model) as m:
            model.run(toks, capture=pats)
        rows.append(("attention fetch", "one request", m))
        with Meter(model) as m:
            for p in pats:
                model.run(toks, capture=[p])
        rows.append(("attention fetch", "naive: per layer", m))

        print(f"{'analysis':<20} {'approach':<17} {'round trips':>11} {'sent B':>10} {'received B':>11} {'time s':>7}")
        base: dict[str, Meter] = {}
        for name, how, m in rows:
            base.setdefault(name, m)
            print(f"{name:<20} {how:<17} {m.trips:>11} {m.sent:>10,} {m.received:>11,} {m.seconds:>7.2f}")
        print()
        for name, how, m in rows:
            b = base[name]
            if m is not b:
                print(f"{name}: {how} / one request = {m.trips / b.trips:.0f}x round trips, "
                      f"{(m.sent + m.received) / (b.sent + b.received):.1f}x bytes, {m.seconds / b.seconds:.1f}x time")
        print(f"\nhead sweep, one request vs naive loop: max |diff| = {diff:.2e}")
    finally:
        stack.stop()
        shutil.rmtree(model_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
