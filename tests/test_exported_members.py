"""An explicit public API (httpx's tests/test_exported_members.py): ``trialbook.__all__``
is exactly the public names of the ``trialbook`` module (its order is ruff's RUF022)."""

from __future__ import annotations

import types

import trialbook as tb


def public_members() -> list[str]:
    """The module's attributes not starting with ``_``, and ``__version__``; submodules
    (attributes only because they were imported) are not members."""
    return [
        name
        for name, value in vars(tb).items()
        if (not name.startswith("_") or name == "__version__") and not isinstance(value, types.ModuleType)
    ]


def test_all_names_the_public_members() -> None:
    assert set(tb.__all__) == set(public_members())
    assert len(tb.__all__) == len(set(tb.__all__))  # no name twice
    for name in tb.__all__:
        assert hasattr(tb, name), name


def test_a_new_public_name_must_be_exported() -> None:
    """The check above can fail: a module attribute left out of ``__all__`` is caught."""
    tb.not_exported = object()  # type: ignore[attr-defined]
    try:
        assert "not_exported" in public_members() and "not_exported" not in tb.__all__
    finally:
        del tb.not_exported  # type: ignore[attr-defined]
