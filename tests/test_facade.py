"""The package facade: lazy names resolve to the right objects, also after nnsight is imported."""

from __future__ import annotations

import inspect


def test_save_is_ours_even_after_nnsight_mounts_save_on_every_object() -> None:
    import nnsight  # noqa: F401  (mounts a `save` method on every object, modules included)

    import interp_widget as iw
    from interp_widget.models import format as fmt

    assert inspect.isfunction(iw.save) and iw.save.__module__ == "interp_widget"
    assert list(inspect.signature(iw.save).parameters)[:2] == list(inspect.signature(fmt.save).parameters)[:2]


def test_every_public_name_resolves() -> None:
    import interp_widget as iw

    for name in iw.__all__:
        assert getattr(iw, name) is not None, name


def test_show_builds_the_widget_of_each_result_kind() -> None:
    import torch

    import interp_widget as iw
    from interp_widget.analysis.circuits.graph import CircuitGraph, EdgeIndex
    from interp_widget.analysis.vision.results import TuningCurves
    from interp_widget.widgets._display import _printer
    from interp_widget.widgets.circuit import CircuitWidget
    from interp_widget.widgets.vision import TuningWidget

    g = torch.Generator().manual_seed(0)
    curves = TuningCurves(param="orientation", unit_of_param="degrees", values=torch.arange(0.0, 180.0, 30.0),
                          units=["conv1:0", "conv1:1"], activations=torch.rand(2, 6, generator=g),
                          stimuli=torch.rand(6, 3, 8, 8, generator=g))
    assert isinstance(iw.show(curves), TuningWidget)
    ix = EdgeIndex.build(2, 2, False)
    n = len(ix.edges)
    graph = CircuitGraph(ix, torch.randn(n, generator=g), torch.ones(n, dtype=torch.bool), "eap", "logit_diff",
                         1.0, 0.0)
    assert isinstance(iw.show(graph), CircuitWidget)
    data, _ = _printer(graph)  # the notebook display goes through the same table
    assert "text/html" in data and "application/vnd.jupyter.widget-view+json" in data
