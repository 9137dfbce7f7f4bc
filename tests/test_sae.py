"""SAEs through SAELens: loading SAELens directories, metrics against brute force, training end to end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from interp_widget.analysis.activation_store import capture_activations
from interp_widget.analysis.sae import SAEResult, evaluate_sae, load_sae, spliced_loss, train_sae
from interp_widget.errors import InputMismatchError
from interp_widget.models.model import Model

SITE = "blocks.0.hook_resid_post"


def _saelens_sae(arch: str = "standard", d_in: int = 32, d_sae: int = 48, seed: int = 0, **meta: Any) -> Any:
    from sae_lens import StandardSAE, StandardSAEConfig, TopKSAE, TopKSAEConfig
    from sae_lens.saes.sae import SAEMetadata

    torch.manual_seed(seed)
    if arch == "topk":
        sae: Any = TopKSAE(TopKSAEConfig(d_in=d_in, d_sae=d_sae, k=4, metadata=SAEMetadata(**meta)))
    else:
        sae = StandardSAE(StandardSAEConfig(d_in=d_in, d_sae=d_sae, metadata=SAEMetadata(**meta)))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # non-trivial weights (b_enc random so some features never fire)
        for p in sae.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return sae


@pytest.mark.parametrize("arch", ["standard", "topk"])
def test_load_sae_reads_a_saelens_saved_directory(arch: str, tmp_path: Path) -> None:
    sae = _saelens_sae(arch, hook_name="blocks.1.attn.hook_z", hook_head_index=2, model_name="tiny")
    sae.save_model(tmp_path / "sae")
    res = load_sae(tmp_path / "sae")
    assert isinstance(res, SAEResult) and res.architecture == arch
    assert res.site is not None and res.site.hook_name == "blocks.1.attn.hook_z" and res.site.head == 2
    assert res.W_dec.shape == (48, 32) and res.d_in == 32 and res.d_sae == 48
    torch.testing.assert_close(res.W_dec, sae.W_dec.detach())
    x = torch.randn(10, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(res.encode(x), sae.encode(x))
        torch.testing.assert_close(res.reconstruct(x), sae.decode(sae.encode(x)))
    with pytest.raises(InputMismatchError, match="width 31"):
        res.encode(torch.randn(3, 31))
    with pytest.raises(FileNotFoundError, match=r"no cfg\.json"):
        load_sae(tmp_path)


def test_metrics_match_a_brute_force_loop() -> None:
    sae = _saelens_sae("standard", d_in=8, d_sae=12, seed=3)
    with torch.no_grad():
        sae.b_enc[:3] = -100.0  # three features that never fire
    res = SAEResult(sae)
    w_enc, b_enc, w_dec, b_dec = (t.detach() for t in (sae.W_enc, sae.b_enc, sae.W_dec, sae.b_dec))
    x = torch.randn(40, 8, generator=torch.Generator().manual_seed(2)) * 2 + 1
    m = evaluate_sae(res, x, batch_size=7)  # batches of 7 rows: the sums must not depend on batching
    sq, l0, fired = 0.0, 0, [False] * 12
    mean = [sum(float(x[r, c]) for r in range(40)) / 40 for c in range(8)]
    tot = sum((float(x[r, c]) - mean[c]) ** 2 for r in range(40) for c in range(8))
    for r in range(40):
        pre = [sum(float(x[r, c] - b_dec[c]) * float(w_enc[c, j]) for c in range(8)) + float(b_enc[j])
               for j in range(12)]
        f = [max(0.0, v) for v in pre]
        xh = [sum(f[j] * float(w_dec[j, c]) for j in range(12)) + float(b_dec[c]) for c in range(8)]
        sq += sum((float(x[r, c]) - xh[c]) ** 2 for c in range(8))
        l0 += sum(v > 0 for v in f)
        fired = [a or v > 0 for a, v in zip(fired, f, strict=True)]
    assert m.mse == pytest.approx(sq / (40 * 8), rel=1e-4)
    assert m.explained_variance == pytest.approx(1 - sq / tot, rel=1e-4)
    assert m.l0 == pytest.approx(l0 / 40)
    assert m.n_dead == fired.count(False) and 3 <= m.n_dead < 12
    assert m.dead_fraction == pytest.approx(m.n_dead / 12)
    assert m.ce_loss_clean is None and m.ce_loss_delta is None


def test_spliced_loss_matches_transformer_lens_hooks(tl: Model, ht: Any) -> None:
    sae = SAEResult(_saelens_sae("standard", d_in=32, d_sae=48, seed=4))
    tokens = torch.randint(2, 50, (6, 10), generator=torch.Generator().manual_seed(5))
    got = spliced_loss(sae, tl, SITE, tokens)

    def splice(act: torch.Tensor, hook: Any) -> torch.Tensor:
        return sae.reconstruct(act.reshape(-1, 32)).reshape(act.shape)

    with torch.no_grad():
        clean = float(ht(tokens, return_type="loss"))
        spliced = float(ht.run_with_hooks(tokens, return_type="loss", fwd_hooks=[(SITE, splice)]))
        zeroed = float(ht.run_with_hooks(tokens, return_type="loss", fwd_hooks=[(SITE, lambda a, hook: a * 0)]))
    assert got["ce_loss_clean"] == pytest.approx(clean, rel=1e-5)
    assert got["ce_loss_spliced"] == pytest.approx(spliced, rel=1e-5)
    assert got["ce_loss_zero_ablated"] == pytest.approx(zeroed, rel=1e-5)
    assert abs(spliced - clean) > 1e-3  # the random SAE really changes the run


def test_train_from_model_then_save_and_load_round_trip(tl: Model, tmp_path: Path) -> None:
    tokens = torch.randint(2, 50, (48, 12), generator=torch.Generator().manual_seed(0))
    res = train_sae(tl, site=SITE, tokens=tokens, d_sae=64, steps=150, batch_size=64, lr=3e-3, progress=False)
    assert res.site is not None and res.site.hook_name == SITE and res.sae.cfg.metadata.hook_name == SITE
    assert type(res.sae).__name__ == "StandardSAE"
    m = res.metrics
    assert m is not None and m.ce_loss_spliced is not None and m.ce_loss_recovered is not None
    assert m.explained_variance > 0.5 and m.ce_loss_recovered > 0.5
    assert res.history[-1]["loss"] < res.history[0]["loss"]
    res.save(tmp_path / "s")
    back = load_sae(tmp_path / "s")
    torch.testing.assert_close(back.W_dec, res.W_dec)
    assert back.metrics == res.metrics and back.site == res.site
    # seeded: the same call gives the same SAE
    again = train_sae((tl, SITE, tokens), d_sae=64, steps=150, batch_size=64, lr=3e-3, progress=False)
    torch.testing.assert_close(again.W_dec, res.W_dec)


def test_train_topk_from_an_activation_store_with_progress(tl: Model, tmp_path: Path) -> None:
    tokens = torch.randint(2, 50, (40, 12), generator=torch.Generator().manual_seed(1))
    store = capture_activations(tl, [SITE, "blocks.1.hook_resid_post"], tokens, tmp_path / "st", shard_tokens=96,
                                progress=False)
    calls: list[tuple[int, int]] = []
    res = train_sae(store, site=SITE, d_sae=64, architecture="topk", k=6, steps=100, batch_size=64,
                    progress=lambda d, t: calls.append((d, t)), model=tl, tokens=tokens[:8])
    assert res.architecture == "topk" and res.metrics is not None
    assert res.metrics.l0 == pytest.approx(6.0)  # top-k: exactly k active (activations are positive here)
    assert res.metrics.ce_loss_spliced is not None
    assert calls[-1] == (100, 100)
    with pytest.raises(ValueError, match="needs k"):
        train_sae(store, site=SITE, d_sae=8, architecture="topk")
    with pytest.raises(Exception, match="several sites"):
        train_sae(store, d_sae=8, steps=1)
    with pytest.raises(InputMismatchError, match="needs site"):
        train_sae(tl, d_sae=8)


def test_progress_callback_can_cancel() -> None:
    x = torch.randn(2000, 4, generator=torch.Generator().manual_seed(0))

    def stop(done: int, total: int) -> None:
        if done > 10:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_sae(x, d_sae=8, steps=1000, batch_size=32, progress=stop)
