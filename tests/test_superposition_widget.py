"""The superposition widget (state as binary buffers, slider trait, static snapshot) and probe result display."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
import traitlets

import interp_widget as iw
from interp_widget.analysis.probes import ProbeResult
from interp_widget.analysis.superposition import superposition
from interp_widget.schema import decode, pack
from interp_widget.schema.superposition import StaticSuperposition
from interp_widget.widgets.attention import SNAPSHOT_MIME
from interp_widget.widgets.superposition import SuperpositionWidget, probe_svg, superposition_widget


def test_state_travels_as_float32_buffers_and_matches_the_analysis() -> None:
    res = superposition()
    w = superposition_widget(res)
    assert w.sparsity == 0.7  # first sparsity with more features than dimensions
    state = w.get_state()
    state.pop("_esm", None)
    stripped, paths, buffers = pack(state)
    assert sum(len(b) for b in buffers) == 4 * 6 * (20 * 20 + 20 + 20 + 40)
    assert sorted(map(tuple, paths)) == [("data", k, "data") for k in ("gram", "norms", "projection", "superposition")]
    assert len(json.dumps(stripped)) < 3000  # nothing numeric in the JSON beyond the summaries
    st = w.state_model()
    np.testing.assert_allclose(decode(st.data.gram), res.gram.numpy(), rtol=1e-6)
    np.testing.assert_allclose(decode(st.data.norms), res.norms.numpy(), rtol=1e-6)
    assert [m.n_represented for m in st.data.models] == res.n_represented


def test_selected_is_checked_and_follows_select_sparsity() -> None:
    w = superposition_widget()
    w.select_sparsity(0.99)
    assert w.selected == 4 and w.sparsity == 0.99
    with pytest.raises(traitlets.TraitError, match="out of range"):
        w.selected = 6
    with pytest.raises(ValueError, match=r"no model at sparsity 0\.5"):
        w.select_sparsity(0.5)
    with pytest.raises(IndexError, match="out of range"):
        SuperpositionWidget(superposition(), selected=9)


def test_snapshot_html_embeds_every_sparsity() -> None:
    w = superposition_widget(selected=2)
    data, _ = w._repr_mimebundle_()
    assert data[SNAPSHOT_MIME] == {"version": 1, "html": "text/html"}
    html = data["text/html"]
    assert 'data-iw-static="superposition"' in html and "http://" not in html.replace("http://www.w3.org", "")
    start = html.index('class="iw-static-data">') + len('class="iw-static-data">')
    doc = json.loads(html[start:html.index("</script>", start)])
    assert doc["kind"] == "superposition" and doc["state"]["selected"] == 2
    gram = doc["state"]["data"]["gram"]
    assert gram["shape"] == [6, 20, 20] and len(base64.b64decode(gram["data"])) == 6 * 20 * 20 * 4
    StaticSuperposition.model_validate({**doc, "state": {**doc["state"], "data": {
        **doc["state"]["data"], **{k: {**doc["state"]["data"][k], "data": base64.b64decode(doc["state"]["data"][k]["data"])}
                                   for k in ("gram", "norms", "superposition", "projection")}}}})


def test_results_display_as_the_widget_and_a_probe_plot() -> None:
    from IPython.core.interactiveshell import InteractiveShell

    from interp_widget.widgets._display import register

    shell = InteractiveShell.instance()
    assert register(shell)
    res = superposition()
    data, _ = shell.display_formatter.format(res)
    assert "application/vnd.jupyter.widget-view+json" in data and data["text/plain"] == repr(res)
    probe = ProbeResult(sites=["blocks.0.hook_resid_pre", "blocks.0.hook_resid_post"], accuracy=[0.6, 0.95],
                        control_accuracy=[0.5, 0.52], train_accuracy=[0.7, 1.0], chance=0.5, control="shuffled",
                        method="logistic", n_train=30, n_test=10, classes=[0, 1])
    data, _ = shell.display_formatter.format(probe)
    assert data["text/plain"] == repr(probe)
    svg = data["text/html"]
    assert svg.count("<polyline") == 2 and 'data-series="control"' in svg
    assert "probe blocks.0.hook_resid_post: 0.950" in svg
    assert probe_svg(probe).startswith("<svg")
    assert iw.superposition_widget is superposition_widget
