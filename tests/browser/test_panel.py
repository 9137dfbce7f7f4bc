"""The side panel in a real JupyterLab: it follows the notebook's kernel, lists the model a cell
loads, renders its attention view, sends a selected head to a new cell as code, recovers after a
kernel restart, keeps two notebooks' kernels apart, and the comm target answers malformed messages
with typed errors while the kernel stays alive."""

from __future__ import annotations

import json
from typing import Any

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.timeout(400)]

PANEL = '[data-testid="iw-panel"]'
ENTRY = f'{PANEL} [data-testid="iw-panel-entry"]'
TINY_MODEL = """import interp_widget as iw
from transformer_lens import HookedTransformer, HookedTransformerConfig
from interp_widget.zoo.tokenizer import build_tokenizer
cfg = HookedTransformerConfig(n_layers=2, d_model=16, n_heads=4, d_head=4, n_ctx=48, d_vocab=72, d_mlp=24,
                              act_fn="relu", seed=0, normalization_type="LN")
ht = HookedTransformer(cfg)
ht.set_tokenizer(build_tokenizer())
model = iw.load(ht.eval(), name="tiny")"""


def fake_model(name: str) -> str:
    """A cell that makes a Model without torch (a spec-only backend): cheap, and enough to be listed."""
    return ("import interp_widget as iw\nfrom types import SimpleNamespace\nfrom interp_widget.tracing.base import ModelSpec\n"
            f"{name} = iw.Model(SimpleNamespace(spec=ModelSpec('fake', 3, 2, 8, 4, 16, 10)), name={name!r})")


def open_panel(page: Any) -> None:
    page.evaluate("async () => { await window.jupyterapp.commands.execute('interp-widget:open-panel'); }")
    page.locator(PANEL).wait_for(state="visible", timeout=30_000)


def wait_state(page: Any, state: str, timeout_ms: float = 60_000) -> None:
    page.wait_for_function("([sel, s]) => document.querySelector(sel)?.dataset.state === s",
                           arg=[PANEL, state], timeout=timeout_ms)


def entries(page: Any) -> list[dict[str, str]]:
    return list(page.evaluate(
        """(sel) => Array.from(document.querySelectorAll(sel)).map((e) => ({
              id: e.dataset.entryId, kind: e.dataset.kind, label: e.dataset.label,
              names: e.querySelector('.iw-panel-names')?.textContent ?? ''}))""", ENTRY))


def wait_entry(page: Any, kind: str, label: str, timeout_ms: float = 90_000) -> Any:
    loc = page.locator(f'{ENTRY}[data-kind="{kind}"][data-label="{label}"]')
    loc.wait_for(timeout=timeout_ms)
    return loc


def test_panel_lists_renders_sends_code_and_recovers_after_restart(lab: Any) -> None:
    page = lab.page
    lab.server.write_notebook("panel.ipynb", [TINY_MODEL])
    lab.open("panel.ipynb")
    open_panel(page)

    # a kernel without interp_widget: the panel says so
    wait_state(page, "not-imported")
    assert "not imported" in page.locator(f'{PANEL} [data-testid="iw-panel-message"]').inner_text()
    assert page.locator(f'{PANEL} [data-testid="iw-panel-import"]').is_visible()

    # run the cell that loads a model: it appears, with the variable that holds it
    lab.run_all()
    assert lab.errors() == []
    wait_state(page, "connected")
    model = wait_entry(page, "model", "tiny")
    assert "model" in model.inner_text() and "2 layers x 4 heads" in model.inner_text()
    kernel_id = page.locator(PANEL).get_attribute("data-kernel-id")
    assert kernel_id == page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.id")
    assert kernel_id in {k["id"] for k in lab.server.kernels()}

    # select it: details (architecture, sites) and its attention view, live, in the panel
    model.click()
    details = page.locator(f'{PANEL} [data-testid="iw-panel-details-body"][data-kind="model"]')
    details.wait_for(timeout=30_000)
    assert details.locator('[data-fact="layers x heads"]').inner_text() == "2 x 4"
    n_sites = int(lab.run_code("print(len(model.sites()))"))
    assert details.locator("[data-hook]").count() == n_sites
    view = page.locator(f'{PANEL} [data-testid="iw-panel-view"][data-kind="widget"] [data-testid="iw-attention"]')
    page.wait_for_selector(f'{PANEL} [data-testid="iw-panel-view"] [data-testid="iw-attention"][data-ready="1"]',
                           timeout=60_000)
    assert view.locator('[data-testid="iw-cell"]').count() == 2 * 4

    # pick head L1H2 in the panel's view: the kernel-side widget follows
    view.locator('[data-testid="iw-cell"][data-layer="1"][data-head="2"]').click()
    page.wait_for_function("(sel) => document.querySelector(sel)?.dataset.head === '2'",
                           arg=f'{PANEL} [data-testid="iw-attention"]', timeout=20_000)
    model_id = page.locator(f'{PANEL} [data-testid="iw-panel-view"]').get_attribute("data-model-id")
    state = lab.run_code("from ipywidgets.widgets.widget import _instances as _w\n"
                         f"print(_w[{model_id!r}].layer, _w[{model_id!r}].head)")
    assert state == "1 2\n"

    # send that head to a new cell as code, run it: it computes that head's pattern
    n_cells = int(page.evaluate("() => window.jupyterapp.shell.currentWidget.content.model.cells.length"))
    page.locator(f'{PANEL} [data-testid="iw-panel-insert-head"]').click()
    page.wait_for_function("(n) => window.jupyterapp.shell.currentWidget.content.model.cells.length === n + 1",
                           arg=n_cells, timeout=20_000)
    index = int(page.evaluate("() => window.jupyterapp.shell.currentWidget.content.activeCellIndex"))
    code = page.evaluate("(i) => window.jupyterapp.shell.currentWidget.content.model.cells.get(i).sharedModel.getSource()",
                         index)
    assert "capture=['blocks.1.attn.hook_pattern']" in code and "layer=1, head=2" in code, code
    assert page.locator(f'{PANEL} [data-testid="iw-panel-snippet"]').inner_text().strip() == code.strip()
    page.evaluate("async () => { await window.jupyterapp.commands.execute('notebook:run-cell'); }")
    lab.wait_executed()
    assert lab.errors() == []
    check = ("_, cache = ht.run_with_cache(tokens)\n"
             "print(bool((cache['blocks.1.attn.hook_pattern'][0, 2] - pattern).abs().max() < 1e-6), tuple(pattern.shape))")
    assert lab.run_code(check) == "True (25, 25)\n"  # BOS + a repeated 12-token block

    # restart the kernel: the panel empties, says interp_widget is not imported; run again: it recovers
    page.evaluate("async () => { await window.jupyterapp.shell.currentWidget.sessionContext.restartKernel(); }")
    wait_state(page, "not-imported")
    assert entries(page) == []
    assert page.locator(f'{PANEL} [data-testid="iw-panel-view"]').count() == 0
    lab.run_all()
    wait_state(page, "connected")
    wait_entry(page, "model", "tiny")
    assert page.locator(f'{PANEL} [data-testid="iw-panel-view"]').count() == 0

    # select the word `model` in the first cell and press the shortcut: the panel shows that model's attention
    page.evaluate("""async () => { const nb = window.jupyterapp.shell.currentWidget.content;
                                   nb.activeCellIndex = 0; await nb.scrollToItem(0, 'start'); }""")
    line = page.locator(".jp-Cell .cm-line", has_text="model = iw.load").first
    line.wait_for(timeout=30_000)
    box = line.bounding_box()
    assert box is not None
    page.mouse.dblclick(box["x"] + 8, box["y"] + box["height"] / 2)
    page.keyboard.press("Control+Alt+a")
    page.wait_for_selector(f'{PANEL} [data-testid="iw-panel-view"] [data-testid="iw-attention"][data-ready="1"]',
                           timeout=60_000)
    assert page.locator(f'{ENTRY}[aria-selected="true"]').get_attribute("data-label") == "tiny"

    # deleting the model removes it (weak references: the registry kept nothing alive)
    lab.run_code("del model")
    page.wait_for_function("(sel) => !document.querySelector(sel + '[data-kind=\"model\"]')", arg=ENTRY, timeout=30_000)
    assert page.locator(f'{PANEL} [data-testid="iw-panel-view"]').count() == 0
    # nothing from the extension in the console (JupyterLab's own restart chatter aside)
    ours = ("interp-widget", "interp_widget", "[pageerror]", "Selector cannot", "iw-panel")
    assert not [line for line in page.console_lines if any(k in line for k in ours)], page.console_lines


def test_two_notebooks_on_two_kernels(lab: Any) -> None:
    # user settings (schema/panel.json): hide the objects no variable holds
    settings = lab.server.root.parent / "settings" / "interp-widget" / "panel.jupyterlab-settings"
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text(json.dumps({"showUnnamed": False}))
    try:
        _two_notebooks_on_two_kernels(lab)
    finally:
        settings.unlink()


def _two_notebooks_on_two_kernels(lab: Any) -> None:
    page = lab.page
    unnamed = "keep = [iw.Model(SimpleNamespace(spec=ModelSpec('fake', 1, 1, 8, 8, 16, 10)), name='unnamed')]"
    lab.server.write_notebook("alpha.ipynb", [fake_model("alpha") + "\n" + unnamed])
    lab.server.write_notebook("beta.ipynb", ["import interp_widget as iw", fake_model("beta")])
    lab.open("alpha.ipynb")
    open_panel(page)
    lab.run_all()
    wait_entry(page, "model", "alpha")
    alpha_kernel = page.locator(PANEL).get_attribute("data-kernel-id")
    assert lab.run_code("print(sorted(m.name for m in iw.server.objects('model')))") == "['alpha', 'unnamed']\n"
    assert [e["label"] for e in entries(page)] == ["alpha"]  # the setting hides the model only a list holds

    # a second notebook, on its own kernel, in the same JupyterLab: the panel follows it
    page.evaluate("async () => { await window.jupyterapp.commands.execute('docmanager:open', {path: 'beta.ipynb'}); }")
    page.wait_for_function("() => window.jupyterapp.shell.currentWidget?.context?.path === 'beta.ipynb'", timeout=30_000)
    lab.wait_kernel_idle()
    wait_state(page, "not-imported")
    # the panel's own button imports interp_widget there
    page.locator(f'{PANEL} [data-testid="iw-panel-import"]').click()
    wait_state(page, "connected")
    assert entries(page) == []
    lab.run_all()
    wait_entry(page, "model", "beta")
    beta_kernel = page.locator(PANEL).get_attribute("data-kernel-id")
    assert beta_kernel and alpha_kernel and beta_kernel != alpha_kernel
    assert [(e["kind"], e["label"], e["names"]) for e in entries(page)] == [("model", "beta", "beta")]

    # switch back and forth: each kernel's own models
    for path, name, kernel in (("alpha.ipynb", "alpha", alpha_kernel), ("beta.ipynb", "beta", beta_kernel),
                               ("alpha.ipynb", "alpha", alpha_kernel)):
        page.evaluate("""(p) => { const app = window.jupyterapp;
                                  for (const w of app.shell.widgets('main')) if (w.context?.path === p) app.shell.activateById(w.id); }""",
                      path)
        page.wait_for_function("([sel, k]) => document.querySelector(sel)?.dataset.kernelId === k",
                               arg=[PANEL, kernel], timeout=20_000)
        wait_entry(page, "model", name)
        assert [e["label"] for e in entries(page)] == [name]

    # a console on a third kernel: the panel follows it too
    page.evaluate("async () => { await window.jupyterapp.commands.execute('console:create', {kernelPreference: {name: 'python3'}}); }")
    page.wait_for_function("() => { const w = window.jupyterapp.shell.currentWidget; const k = w?.sessionContext?.session?.kernel;"
                           " return !!(w?.console && k && k.status === 'idle'); }", timeout=60_000)
    page.evaluate("async (code) => { await window.jupyterapp.shell.currentWidget.console.inject(code); }", fake_model("gamma"))
    wait_entry(page, "model", "gamma")
    console_kernel = page.locator(PANEL).get_attribute("data-kernel-id")
    assert console_kernel not in (alpha_kernel, beta_kernel)
    assert [e["label"] for e in entries(page)] == ["gamma"]

    # shut alpha's kernel down: its panel says there is no kernel
    page.evaluate("""async () => { const app = window.jupyterapp;
                      for (const w of app.shell.widgets('main')) if (w.context?.path === 'alpha.ipynb') {
                        app.shell.activateById(w.id); await w.sessionContext.shutdown(); } }""")
    wait_state(page, "no-kernel", timeout_ms=30_000)
    assert entries(page) == []
    assert "no kernel" in page.locator(f'{PANEL} [data-testid="iw-panel-message"]').inner_text()


MALFORMED: list[Any] = [
    None, 42, "list", [1, 2], {}, {"type": "list"}, {"id": "m1", "type": "explode"},
    {"id": "m2", "type": "describe", "entry": "model-999"}, {"id": "m3", "type": "describe", "entry": "../../x"},
    {"id": "m4", "type": "render", "entry": "model-1", "mode": "3d"}, {"id": "m5", "type": "list", "extra": True},
    {"id": "m6", "type": "snippet", "entry": "model-1", "target": {"layer": -3}},
    {"id": "m7", "type": "release", "model_ids": "all"},
]


def test_malformed_messages_get_typed_errors_and_the_kernel_lives(lab: Any) -> None:
    page = lab.page
    lab.server.write_notebook("malformed.ipynb", [fake_model("m")])
    lab.open("malformed.ipynb")
    open_panel(page)
    lab.run_all()
    wait_entry(page, "model", "m")
    replies = page.evaluate(
        """async ([target, messages]) => {
             const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
             const comm = kernel.createComm(target);
             const got = [];
             comm.onMsg = (msg) => { got.push(msg.content.data); };
             await comm.open({ id: 'hello', type: 'list' }).done;
             for (const m of messages) await comm.send(m).done;
             const t0 = Date.now();
             while (got.length < messages.length + 1 && Date.now() - t0 < 30000) await new Promise((r) => setTimeout(r, 50));
             comm.close();
             return got;
           }""",
        ["interp-widget-panel", MALFORMED],
    )
    assert len(replies) == len(MALFORMED) + 1, json.dumps(replies)[:2000]
    first = replies[0]["message"]
    assert first["type"] == "entries" and first["id"] == "hello" and [e["label"] for e in first["entries"]] == ["m"]
    errors = [r["message"] for r in replies[1:]]
    assert all(e["ok"] is False and e["type"] == "error" for e in errors), errors
    assert [e["id"] for e in errors] == [None, None, None, None, None, None, "m1", "m2", "m3", "m4", "m5", "m6", "m7"]
    assert [e["error"]["type_name"] for e in errors] == (
        ["RequestError"] * 5 + ["ValidationError", "RequestError", "EntryNotFoundError"] + ["ValidationError"] * 5)
    assert "unknown request type 'explode'" in errors[6]["error"]["message"]
    # the kernel is alive, still runs cells, and the panel is still connected to it
    assert lab.run_code("print(m.name, 6 * 7)") == "m 42\n"
    assert page.locator(PANEL).get_attribute("data-state") == "connected"
    assert [e["label"] for e in entries(page)] == ["m"]
