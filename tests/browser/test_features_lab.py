"""The feature dashboard and the steering widget in a real JupyterLab.

Dashboard: pick a feature, see its top examples with highlighted tokens, follow a link to a neuron,
type a prompt and see its per-token activations (checked against the kernel's own numbers), get an
error reply for a feature out of range. Steering: move the strength slider, press Generate, see the
base and steered generations differ, and the widget's Python state follow.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from test_patching_lab import _forget_workspaces  # the same harness step as the patching test

pytestmark = [pytest.mark.browser, pytest.mark.timeout(420)]

NB = "features_lab.ipynb"
DASH = "[data-testid='iw-features'][data-mode='live']"
STEER = "[data-testid='iw-steering'][data-mode='live']"

SETUP = """
import warnings; warnings.filterwarnings("ignore")
import torch; torch.set_num_threads(1)
from transformer_lens import HookedTransformer, HookedTransformerConfig
from sae_lens import StandardSAE, StandardSAEConfig
import interp_widget as iw
from interp_widget.zoo.tokenizer import build_tokenizer

cfg = HookedTransformerConfig(n_layers=1, d_model=32, n_heads=4, d_head=8, d_mlp=64, n_ctx=48, d_vocab=72,
                              act_fn="relu", normalization_type="LN", seed=0)
ht = HookedTransformer(cfg); ht.set_tokenizer(build_tokenizer())
model = iw.load(ht.eval(), name="tiny-mlp")
g = torch.Generator().manual_seed(0)
sae = StandardSAE(StandardSAEConfig(d_in=64, d_sae=16))
with torch.no_grad():
    sae.W_enc.copy_(torch.randn(64, 16, generator=g) * 0.3); sae.b_enc.copy_(torch.rand(16, generator=g) * 0.1)
    sae.W_dec.copy_(torch.randn(16, 64, generator=g) * 0.3)
sae.cfg.metadata.hook_name = "blocks.0.mlp.hook_post"
data = ["the cat sat on the mat", "a dog ran far away", "big red boxes", "quiet night sky", "hello world again"]
"""
DASH_CELL = "w = iw.feature_dashboard(model, sae, data, k=4, kind='feature', index=0)\nw"
STEER_CELL = """
tid = int(model.to_tokens("z", prepend_bos=False)[0, 0])
v = ht.W_U[:, tid].detach(); v = v / v.norm()
s = iw.steering_widget(model, sae=sae, directions={"towards z": v}, site="blocks.0.hook_resid_post",
                       prompt="the cat", max_new_tokens=6, greedy=True, strength=0.0)
s
"""


def _wait(page: Any, root: str, selector: str, attr: str, predicate: str, timeout: float = 60_000) -> None:
    page.wait_for_function(
        f"""([root, sel, attr]) => {{ const r = document.querySelector(root); if (!r) return false;
                 const el = sel ? r.querySelector(sel) : r; if (!el) return false;
                 const v = el.getAttribute(attr); return {predicate}; }}""",
        arg=[root, selector, attr], timeout=timeout,
    )


def test_feature_dashboard_and_steering_in_jupyterlab(lab: Any) -> None:
    page = lab.page
    _forget_workspaces(lab)
    lab.server.write_notebook(NB, [SETUP, DASH_CELL, STEER_CELL])
    lab.open(NB)
    lab.run_all(timeout_ms=240_000)
    assert lab.errors() == []
    dash = page.locator(DASH)
    dash.wait_for(timeout=60_000)

    # --- select a feature: its top examples, highlighted ---------------------------------------------
    dash.locator("[data-testid='iw-fd-kind']").select_option("feature")
    dash.locator("[data-testid='iw-fd-index']").fill("3")
    dash.locator("[data-testid='iw-fd-show']").click()
    _wait(page, DASH, "", "data-index", "v === '3'")
    assert dash.get_attribute("data-kind") == "feature"
    assert "SAE feature 3" in dash.locator("[data-testid='iw-fd-title']").inner_text()
    examples = dash.locator("[data-testid='iw-fd-example']")
    n_examples = examples.count()
    want = json.loads(lab.run_code(
        "import json\nd = w.panel_data\nprint(json.dumps([len(d.top), [float(x) for x in d.top.values]]))"))
    assert n_examples == want[0] > 0
    shown = [float(examples.nth(i).get_attribute("data-value")) for i in range(n_examples)]
    assert shown == pytest.approx(want[1], abs=1e-3)
    peak = examples.nth(0).locator(".iw-tok[data-peak='1']")
    assert peak.count() == 1
    assert "rgba" in (peak.get_attribute("style") or "")  # the peak token is highlighted
    assert dash.locator("[data-testid='iw-fd-hist'] svg").count() == 1
    assert lab.run_code("print(w.kind, w.index)") == "feature 3\n"

    # --- follow a link to a neuron, and back ------------------------------------------------------------
    link = dash.locator("[data-testid='iw-fd-links'] button").first
    neuron = link.get_attribute("data-index")
    link.click()
    _wait(page, DASH, "", "data-kind", "v === 'neuron'")
    assert dash.get_attribute("data-index") == neuron
    assert lab.run_code("print(w.kind, w.index)") == f"neuron {neuron}\n"
    dash.locator("[data-testid='iw-fd-links'] button").first.click()
    _wait(page, DASH, "", "data-kind", "v === 'feature'")

    # --- type a prompt: per-token activations, the kernel's numbers -------------------------------------
    dash.locator("[data-testid='iw-fd-prompt']").fill("the cat sat")
    dash.locator("[data-testid='iw-fd-run']").click()
    page.wait_for_function(
        "(root) => document.querySelectorAll(root + \" [data-testid='iw-fd-prompt-acts'] .iw-tok\").length > 0",
        arg=DASH, timeout=60_000)
    toks = dash.locator("[data-testid='iw-fd-prompt-acts'] .iw-tok")
    assert toks.count() == len("the cat sat") + 1  # BOS + one token per character
    shown_acts = [float(toks.nth(i).get_attribute("data-act")) for i in range(toks.count())]
    ref = json.loads(lab.run_code(
        "from interp_widget.analysis.features import prompt_activations\n"
        "_, a = prompt_activations(model, w.feature_map.unit(w.kind, w.index), 'the cat sat')\n"
        "print(json.dumps(a.tolist()))"))
    assert shown_acts == pytest.approx(ref, abs=1e-3)
    assert lab.run_code("print(w.prompt)") == "the cat sat\n"

    # --- an index out of range: an error reply shown in the widget --------------------------------------
    dash.locator("[data-testid='iw-fd-index']").fill("99")
    dash.locator("[data-testid='iw-fd-show']").click()
    page.wait_for_function("(sel) => (document.querySelector(sel)?.textContent || '').length > 0",
                           arg=f"{DASH} [data-testid='iw-fd-error']", timeout=30_000)
    assert "feature 99 is out of range: the SAE has 16 features" in dash.locator("[data-testid='iw-fd-error']").inner_text()

    # --- steering: move the strength slider, generate, both generations differ ---------------------------
    steer = page.locator(STEER)
    steer.wait_for(timeout=60_000)
    steer.locator("[data-testid='iw-st-direction']").select_option("named:towards z")
    steer.locator("[data-testid='iw-st-strength']").evaluate(
        "(el) => { el.value = '15'; el.dispatchEvent(new Event('input', { bubbles: true })); }")
    assert steer.locator("[data-testid='iw-st-strength-value']").input_value() == "15"
    steer.locator("[data-testid='iw-st-generate']").click()
    _wait(page, STEER, "", "data-state", "v === 'done'")
    base = steer.locator("[data-testid='iw-st-base']").first.get_attribute("data-text")
    steered = steer.locator("[data-testid='iw-st-steered']").first.get_attribute("data-text")
    assert base != steered
    assert steer.locator("[data-testid='iw-st-steered'] [data-diff='1']").count() > 0
    got = json.loads(lab.run_code(
        "r = s.last_result\nprint(json.dumps([s.strength, r.base_text[0], r.steered_text[0], r.differs(), "
        "r.steered_text[0].count('z')]))"))
    assert got[0] == 15.0
    assert got[1:3] == [base, steered]
    assert got[3] == [True]
    assert got[4] >= 3  # steering towards the unembedding of "z" makes "z" frequent
    assert lab.errors() == []


def test_static_snapshots_render_without_a_kernel(page: Any, tmp_path: Any) -> None:
    """The text/html snapshot of both widgets (what a notebook exported to HTML shows) draws the views
    from the inlined bundle and the embedded data, with no kernel and no network."""
    import _tiny_models as tiny  # tests/ is on sys.path (tests/conftest.py imports it too)
    import torch
    from sae_lens import StandardSAE, StandardSAEConfig

    import interp_widget as iw
    from interp_widget.models.model import Model
    from interp_widget.tracing.tl import TransformerLensBackend

    ht = tiny.tl_gpt2()
    model = Model(TransformerLensBackend(ht), raw=ht)
    sae = StandardSAE(StandardSAEConfig(d_in=4 * tiny.D_MODEL, d_sae=8))
    with torch.no_grad():
        sae.W_enc.normal_(0, 0.3, generator=torch.Generator().manual_seed(0))
        sae.W_dec.normal_(0, 0.3, generator=torch.Generator().manual_seed(1))
    sae.cfg.metadata.hook_name = "blocks.1.mlp.hook_post"
    dash = iw.feature_dashboard(model, sae, [tiny.text(12, seed=i) for i in range(4)], k=3, prompt="a b c")
    steer = iw.steering_widget(model, sae=sae, prompt="a b", max_new_tokens=3, greedy=True, strength=8.0)
    steer.generate(wait=True, direction="feature:1")
    parts = [w._repr_mimebundle_()[0]["text/html"] for w in (dash, steer)]
    html_file = tmp_path / "snapshot.html"
    html_file.write_text("<!doctype html><html><body>" + "".join(parts) + "</body></html>", encoding="utf-8")
    page.goto(html_file.as_uri())
    page.wait_for_selector("[data-testid='iw-features'][data-mode='static']", timeout=30_000)
    page.wait_for_selector("[data-testid='iw-steering'][data-mode='static']", timeout=30_000)
    assert page.locator("[data-testid='iw-fd-example']").count() == 3
    assert page.locator("[data-testid='iw-fd-prompt-acts'] .iw-tok").count() == 4  # <bos> a b c
    steered = page.locator("[data-testid='iw-st-steered']").first.get_attribute("data-text")
    assert steered == "".join(steer.last_result.steered_str_tokens[0])
    assert not [line for line in page.console_lines if "error" in line]
