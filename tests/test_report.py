"""``interp-widget report``: one self-contained HTML file (no network, no kernel) with the attention
views and head scores; clear errors; and the page rendering in Chromium with the network blocked."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from interp_widget.report import DEFAULT_MODEL, DEFAULT_TEXT
from interp_widget.widgets._static import BUNDLE

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.filterwarnings("ignore:HookedTransformer is deprecated:DeprecationWarning")


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": str(ROOT), "PATH": str(Path(sys.executable).parent), "HOME": str(cwd or ROOT),
           "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "interp_widget.cli", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, env=env, timeout=600)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny attention-only TransformerLens model with the zoo's character tokenizer, saved with iw.save."""
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    import interp_widget as iw
    from interp_widget.zoo.tokenizer import build_tokenizer

    cfg = HookedTransformerConfig(n_layers=2, d_model=16, n_heads=4, d_head=4, n_ctx=64, d_vocab=72,
                                  attn_only=True, act_fn=None, seed=1, normalization_type="LN")
    ht = HookedTransformer(cfg)
    ht.set_tokenizer(build_tokenizer())
    return iw.save(iw.load(ht, name="tiny-report"), tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="module")
def report(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not BUNDLE.is_file():
        pytest.skip("front end not built (npm run build)")
    out = tmp_path_factory.mktemp("report") / "report.html"
    res = cli("report", "--model", str(model_dir), "-o", str(out))
    assert res.returncode == 0, res.stderr
    assert f"wrote {out}" in res.stdout
    return out


def embedded(html: str) -> dict[str, Any]:
    m = re.search(r'<script type="application/json" class="iw-static-data">(.*?)</script>', html, re.S)
    assert m is not None
    return dict(json.loads(m.group(1).replace("<\\/", "</")))


# --- command line ------------------------------------------------------------------------------
def test_help_and_version() -> None:
    res = cli("report", "--help")
    assert res.returncode == 0
    for flag in ("--model", "--text", "-o", DEFAULT_MODEL):
        assert flag in res.stdout
    res = cli("--version")
    assert res.returncode == 0 and res.stdout.startswith("interp-widget ")
    res = cli()
    assert res.returncode == 2 and "COMMAND" in res.stderr


def test_unknown_model_fails_with_a_clear_message(tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    res = cli("report", "--model", "./no/such/model-dir", "-o", str(out), cwd=tmp_path)
    assert res.returncode == 1
    assert res.stderr.startswith("interp-widget report: error: ")
    assert "no/such/model-dir" in res.stderr and "Traceback" not in res.stderr
    assert not out.exists()


def test_bad_selection_and_long_text_fail_clearly(model_dir: Path, tmp_path: Path) -> None:
    res = cli("report", "--model", str(model_dir), "--layer", "9", "--head", "0", "-o", str(tmp_path / "r.html"))
    assert res.returncode == 1 and "layer 9 is out of range" in res.stderr and "Traceback" not in res.stderr
    res = cli("report", "--model", str(model_dir), "--text", "x" * 100, "-o", str(tmp_path / "r.html"))
    assert res.returncode == 1 and "context" in res.stderr and "Traceback" not in res.stderr


# --- the page ---------------------------------------------------------------------------------
def test_report_is_self_contained(report: Path) -> None:
    html = report.read_text()
    assert html.count('<script type="module">') == 1
    assert BUNDLE.read_text().replace("</script", "<\\/script") in html  # the same view bundle, inlined
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    external = re.findall(r"""(?:src|href)\s*=\s*["']?(?!data:|#)([a-z]+:)?//""", html, re.I)
    assert external == [], "the report must not reference anything outside the file"
    assert "@import" not in html and "url(http" not in html


def test_report_embeds_every_head_and_the_scores(report: Path, model_dir: Path) -> None:
    import torch

    import interp_widget as iw
    from interp_widget.analysis.heads import scores_from_patterns

    doc = embedded(report.read_text())
    state = doc["state"]
    assert (state["n_layers"], state["n_heads"]) == (2, 4)
    assert "".join(state["prompts"][0]["tokens"][1:]) == DEFAULT_TEXT
    # every head's full pattern is embedded and equals the model's (float16)
    payload = doc["patterns"][0]
    assert payload["dtype"] == "float16" and payload["shape"] == [2, 4, 42, 42]
    pats = np.frombuffer(base64.b64decode(payload["data"]), dtype="<f2").reshape(payload["shape"]).astype(np.float32)
    model = iw.load(str(model_dir))
    res = model.run(DEFAULT_TEXT, capture=[f"blocks.{layer}.attn.hook_pattern" for layer in range(2)])
    ref = torch.stack([res.cache[f"blocks.{layer}.attn.hook_pattern"][0] for layer in range(2)])
    np.testing.assert_allclose(pats, ref.numpy(), atol=1e-3)
    # the view opens on the best induction head of the prompt
    scores = scores_from_patterns(ref, model.to_tokens(DEFAULT_TEXT)[0])
    best = divmod(int(torch.nan_to_num(scores["induction"], nan=-1.0).argmax()), 4)
    assert (state["layer"], state["head"]) == best
    kinds = [s["kind"] for s in state["prompts"][0]["scores"]]
    assert kinds == ["previous_token", "induction", "duplicate_token"]
    html = report.read_text()
    for kind in kinds:  # model-level head scores tables
        assert f'<table class="scores" data-kind="{kind}">' in html


@pytest.mark.slow
def test_default_report_uses_induction_2l(tmp_path: Path) -> None:
    from interp_widget import zoo

    if not (Path(zoo.__file__).parent / "induction_2l" / "config.json").is_file():
        pytest.skip("the induction-2l zoo files are not built yet (scripts/train_induction_2l.py)")
    if not BUNDLE.is_file():
        pytest.skip("front end not built (npm run build)")
    out = tmp_path / "report.html"
    res = cli("report", "-o", str(out), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    state = embedded(out.read_text())["state"]
    assert state["model_name"] == DEFAULT_MODEL
    assert state["layer"] == 1, "the default text should select a layer-1 (induction) head"


# Rendering the report in Chromium with the network blocked: tests/browser/test_report_browser.py
# (it shares the browser-test harness: two sync Playwright instances cannot run in one pytest process).
