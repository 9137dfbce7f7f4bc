"""Activation capture to disk: contents against direct runs, shuffled reads, and resume after kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from interp_widget.analysis.activation_store import ActivationStore, capture_activations
from interp_widget.errors import InputMismatchError, UnknownSiteError
from interp_widget.models.model import Model

HERE = Path(__file__).resolve().parent
SITES = ["blocks.0.hook_resid_post", "blocks.1.mlp.hook_post"]


def _tokens(n: int = 24, pos: int = 12, seed: int = 0) -> torch.Tensor:
    return torch.randint(2, 50, (n, pos), generator=torch.Generator().manual_seed(seed))


def test_capture_matches_direct_runs_and_records_token_positions(tl: Model, tmp_path: Path) -> None:
    tokens = _tokens()
    store = capture_activations(tl, [*SITES, "blocks.1.attn.hook_z"], tokens, tmp_path / "a", shard_tokens=50,
                                batch_size=5, progress=False)
    # 12 tokens per sequence, shards close at >= 50 tokens: 5 sequences (60 tokens) per shard
    assert [sh["end_seq"] - sh["start_seq"] for sh in store.shards] == [5, 5, 5, 5, 4]
    assert len(store) == 24 * 12 and store.d("blocks.1.attn.hook_z") == 32
    ref = tl.run(tokens, capture=[*SITES, "blocks.1.attn.hook_z"])
    for s in SITES:
        want = ref[s].reshape(-1, ref[s].shape[-1])
        torch.testing.assert_close(store.read(s), want, rtol=1e-5, atol=1e-5)
    z = ref["blocks.1.attn.hook_z"]  # [b, p, head, d_head] flattened per token
    torch.testing.assert_close(store.read("blocks.1.attn.hook_z"), z.reshape(24 * 12, -1), rtol=1e-5, atol=1e-5)
    assert store.manifest["site_shapes"]["blocks.1.attn.hook_z"] == [4, 8]
    seq, pos, tok = store.read("sequence"), store.read("position"), store.read("tokens")
    assert torch.equal(tok.long(), tokens.reshape(-1))
    assert torch.equal(seq.long(), torch.arange(24).repeat_interleave(12))
    assert torch.equal(pos.long(), torch.arange(12).repeat(24))


def test_site_head_and_position_selection(tl: Model, tmp_path: Path) -> None:
    tokens = _tokens(6, 8)
    store = capture_activations(tl, ["blocks.0.attn.hook_z"], tokens, tmp_path / "h", progress=False)
    ref = tl.run(tokens, capture=["blocks.0.attn.hook_z"])["blocks.0.attn.hook_z"]
    torch.testing.assert_close(store.read(), ref.reshape(48, -1))
    from interp_widget.tracing.sites import Site

    one = capture_activations(tl, [Site.parse("blocks.0.attn.hook_z", head=2, position=3)], tokens, tmp_path / "p",
                              progress=False)
    torch.testing.assert_close(one.read(), ref[:, 3, 2])
    assert torch.equal(one.read("position").long(), torch.full((6,), 3))
    with pytest.raises(UnknownSiteError, match="one-vector-per-token"):
        capture_activations(tl, ["blocks.0.attn.hook_pattern"], tokens, tmp_path / "x", progress=False)


def test_shuffled_batches_cover_every_row_once_and_mix_shards(tl: Model, tmp_path: Path) -> None:
    store = capture_activations(tl, SITES[0], _tokens(), tmp_path / "s", shard_tokens=36, progress=False)
    full = store.read()
    batches = list(store.batches(batch_size=16, seed=3))
    got = torch.cat(batches)
    assert got.shape == full.shape
    key = lambda t: t[torch.argsort(t[:, 0])]  # noqa: E731 - rows are distinct
    torch.testing.assert_close(key(got), key(full))
    assert not torch.equal(got, full)  # shuffled
    again = torch.cat(list(store.batches(batch_size=16, seed=3)))
    assert torch.equal(again, got)  # seeded
    assert not torch.equal(torch.cat(list(store.batches(batch_size=16, seed=4))), got)
    # rows of the first batch come from several shards (mixing buffer), and memory stays within the buffer
    shard_of = torch.cat([torch.full((int(sh["n_tokens"]),), i) for i, sh in enumerate(store.shards)])
    first_rows = [int((full == r).all(1).nonzero()[0, 0]) for r in batches[0]]
    assert len({int(shard_of[i]) for i in first_rows}) >= 2
    ordered = torch.cat(list(store.batches(batch_size=16, shuffle=False)))
    assert torch.equal(ordered, full)
    assert all(b.shape[0] == 16 for b in store.batches(batch_size=16, drop_last=True))


def test_other_capture_in_same_dir_is_refused_and_partial_needs_opt_in(tl: Model, tmp_path: Path) -> None:
    capture_activations(tl, SITES[0], _tokens(4, 6), tmp_path / "d", progress=False)
    with pytest.raises(InputMismatchError, match="different capture"):
        capture_activations(tl, SITES[1], _tokens(4, 6), tmp_path / "d", progress=False)
    m = json.loads((tmp_path / "d" / "manifest.json").read_text())
    m["shards"][0]["done"] = False
    (tmp_path / "d" / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(InputMismatchError, match="incomplete"):
        ActivationStore(tmp_path / "d")
    assert len(ActivationStore(tmp_path / "d", allow_partial=True).shards) == 0
    with pytest.raises(UnknownSiteError, match="was not captured"):
        ActivationStore(tmp_path / "d", allow_partial=True).d(SITES[1])


_CHILD = """
import sys, time, torch
sys.path[:0] = [{tests!r}, {root!r}]
torch.set_num_threads(1)
import _tiny_models as tiny
from interp_widget.models.model import Model
from interp_widget.tracing.tl import TransformerLensBackend
from interp_widget.analysis.activation_store import capture_activations
ht = tiny.tl_gpt2()
model = Model(TransformerLensBackend(ht), raw=ht)
tokens = torch.randint(2, 50, (40, 12), generator=torch.Generator().manual_seed(7))
def slow(done, total):
    time.sleep(0.15)
capture_activations(model, {sites!r}, tokens, sys.argv[1], shard_tokens=48, batch_size=2, progress=slow)
"""


def test_resume_after_kill_9_loses_and_duplicates_nothing(tl: Model, tmp_path: Path) -> None:
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    script = tmp_path / "child.py"
    script.write_text(_CHILD.format(tests=str(HERE), root=str(HERE.parent), sites=SITES))
    proc = subprocess.Popen([sys.executable, str(script), str(killed)])
    try:
        deadline = time.time() + 240
        while time.time() < deadline and len(list(killed.glob("shard_*.safetensors"))) < 3:
            assert proc.poll() is None, "the capture finished before it could be killed; slow it down"
            time.sleep(0.05)
        time.sleep(0.2)  # land inside a later shard
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    manifest = json.loads((killed / "manifest.json").read_text())
    n_done = sum(sh["done"] for sh in manifest["shards"])
    assert 3 <= n_done < len(manifest["shards"]), "the kill did not land mid-run"
    with pytest.raises(InputMismatchError, match="incomplete"):
        ActivationStore(killed)
    before = {p.name: p.stat().st_mtime_ns for p in killed.glob("shard_*.safetensors")}
    tokens = torch.randint(2, 50, (40, 12), generator=torch.Generator().manual_seed(7))
    resumed = capture_activations(tl, SITES, tokens, killed, shard_tokens=48, batch_size=2, progress=False)
    for name, mtime in before.items():  # finished shards were skipped, not rewritten
        assert (killed / name).stat().st_mtime_ns == mtime
    assert not list(killed.glob("*.tmp"))
    ref = capture_activations(tl, SITES, tokens, clean, shard_tokens=48, batch_size=2, progress=False)
    assert len(resumed.shards) == len(ref.shards) == len(list(killed.glob("shard_*.safetensors")))
    for i in range(len(ref.shards)):
        a, b = resumed.shard(i), ref.shard(i)
        assert a.keys() == b.keys()
        for k in a:
            torch.testing.assert_close(a[k], b[k], rtol=1e-6, atol=1e-6)
    assert torch.equal(resumed.read("sequence").long(), torch.arange(40).repeat_interleave(12))  # none lost/doubled
