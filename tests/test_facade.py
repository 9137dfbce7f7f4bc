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
