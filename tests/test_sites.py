"""Site names, and how interventions select and fill the part of a site's tensor they change."""

from __future__ import annotations

import itertools

import pytest
import torch

from interp_widget.errors import InterventionError, UnknownSiteError
from interp_widget.tracing._common import apply_interventions
from interp_widget.tracing.base import Intervention
from interp_widget.tracing.sites import HEAD_AXIS, LAYER_COMPONENTS, POS_AXIS, Site


def test_hook_names_round_trip() -> None:
    for comp in LAYER_COMPONENTS:
        s = Site(comp, 3)
        assert s.hook_name == f"blocks.3.{comp}"
        assert Site.parse(s.hook_name) == s
    assert Site.parse("blocks.3.attn.hook_pattern", head=5).head == 5
    assert str(Site("attn.hook_z", 1, head=2, position=4)) == "blocks.1.attn.hook_z[head=2, pos=4]"
    assert Site.parse(Site("hook_embed"), position=2) == Site("hook_embed", position=2)
    assert Site("attn.hook_pattern", 0).pos_axis == 2 and Site("attn.hook_pattern", 0).head_axis == 1


def test_module_sites() -> None:
    s = Site.parse("module:encoder.layers.0.fc1")
    assert s.is_module and s.hook_name == "module:encoder.layers.0.fc1" and s.layer is None
    assert Site.module("encoder.layers.0.fc1", position=1) == Site("module:encoder.layers.0.fc1", position=1)
    assert s.pos_axis == 1 and s.head_axis is None
    assert not Site("hook_embed").is_module
    with pytest.raises(UnknownSiteError, match="needs a module path"):
        Site.parse("module:")
    with pytest.raises(UnknownSiteError, match="takes no layer or head"):
        Site("module:fc1", head=0)


def test_site_errors() -> None:
    with pytest.raises(UnknownSiteError, match=r"unknown site component 'attn.hook_nope'"):
        Site.parse("blocks.0.attn.hook_nope")
    with pytest.raises(UnknownSiteError, match="needs a layer"):
        Site.parse("hook_resid_pre")
    with pytest.raises(UnknownSiteError, match="not inside a layer"):
        Site("hook_embed", 0)
    with pytest.raises(UnknownSiteError, match="has no head axis"):
        Site.parse("blocks.0.hook_resid_pre", head=1)
    with pytest.raises(TypeError):
        Site.parse(3)  # type: ignore[arg-type]
    assert str(UnknownSiteError("x has no site 'y'")) == "x has no site 'y'"  # not repr()'d like a KeyError


SHAPES = {"hook_resid_pre": (3, 5, 6), "attn.hook_z": (3, 5, 4, 2), "attn.hook_pattern": (3, 4, 5, 5)}


def _brute_force(t: torch.Tensor, site: Site, rows: list[int] | None, fn: object) -> torch.Tensor:
    """Loop over every element; change those selected by rows / head / position."""
    out = t.clone()
    for index in itertools.product(*(range(n) for n in t.shape)):
        if rows is not None and index[0] not in rows:
            continue
        if site.position is not None and index[POS_AXIS[site.component]] != site.position % t.shape[site.pos_axis]:
            continue
        if site.head is not None and index[HEAD_AXIS[site.component]] != site.head:
            continue
        out[index] = fn(index, t[index])  # type: ignore[operator]
    return out


COMBOS = [(c, h, p, r) for c in SHAPES for h in (None, 1) for p in (None, 2, -1) for r in (None, [0, 2])
          if h is None or c in HEAD_AXIS]


@pytest.mark.parametrize(("component", "head", "position", "rows"), COMBOS)
def test_selection_matches_brute_force(component: str, head: int | None, position: int | None,
                                       rows: list[int] | None) -> None:
    g = torch.Generator().manual_seed(0)
    t = torch.randn(SHAPES[component], generator=g)
    layer = None if component == "hook_embed" else 0
    site = Site(component, layer, head, position)
    whole = torch.randn(t.shape, generator=g)  # a whole-site value, e.g. from another run
    for op, value, fn in [
        ("zero", None, lambda i, x: 0.0),
        ("scale", 2.5, lambda i, x: x * 2.5),
        ("add", 1.0, lambda i, x: x + 1.0),
        ("set", whole, lambda i, x: whole[i]),
        ("set", whole[:1], lambda i, x: whole[(0, *i[1:])]),
    ]:
        got = apply_interventions(t, [Intervention(site, op, value, rows)])  # type: ignore[arg-type]
        assert torch.equal(got, _brute_force(t, site, rows, fn)), (op, site, rows)
    if rows is not None:  # a value with one row per selected row: value row i goes to batch row rows[i]
        per_row = torch.randn(len(rows), *t.shape[1:], generator=g)
        got = apply_interventions(t, [Intervention(site, "set", per_row, rows)])
        expected = _brute_force(t, site, rows, lambda i, x: per_row[(rows.index(i[0]), *i[1:])])
        assert torch.equal(got, expected)


def test_values_that_broadcast_to_the_selected_part() -> None:
    t = torch.zeros(2, 5, 4, 3)  # z: batch pos head d_head
    site = Site("attn.hook_z", 0, head=1, position=3)
    out = apply_interventions(t, [Intervention(site, "set", torch.tensor([1.0, 2.0, 3.0]))])
    assert torch.equal(out[:, 3, 1], torch.tensor([[1.0, 2.0, 3.0]] * 2))
    assert out.sum() == 12  # nothing else changed
    # interventions apply in order, and the input tensor is left unchanged
    out = apply_interventions(t, [Intervention(Site("attn.hook_z", 0), "add", 1.0),
                                  Intervention(Site("attn.hook_z", 0, head=0), "scale", 3.0)])
    assert out[0, 0, 0, 0] == 3.0 and out[0, 0, 1, 0] == 1.0 and t.abs().sum() == 0
    with pytest.raises(InterventionError, match=r"shape \(4,\), which does not fit the selected part \(2, 3\)"):
        apply_interventions(t, [Intervention(site, "set", torch.ones(4))])
    with pytest.raises(InterventionError, match="batch size 3"):
        apply_interventions(t, [Intervention(Site("attn.hook_z", 0), "set", torch.ones(3, 5, 4, 3))])
