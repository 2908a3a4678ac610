"""When runs can be compared: one val split (trialbook.core.comparability)."""

from __future__ import annotations

from trialbook.core.comparability import FIX_ALL, check_val_splits
from trialbook.core.discipline import val_comparability

D1 = "blake3:" + "1" * 64
D2 = "blake3:" + "2" * 64


def test_all_known_and_equal_is_comparable() -> None:
    assert check_val_splits({"a": D1, "b": D1, "c": D1}) == (True, None)
    assert check_val_splits({"a": D1}) == (True, None)
    assert check_val_splits({}) == (True, None)


def test_none_known_is_assumed_comparable_with_a_warning() -> None:
    ok, warning = check_val_splits({"a": None, "b": ""})
    assert ok
    assert warning == (
        "the val split of neither run is recorded; the comparison assumes both were "
        "validated on the same split"
    )
    ok, warning = check_val_splits({"a": None, "b": None, "c": None})
    assert ok
    assert warning is not None and "none of these runs" in warning and "assumes they were" in warning
    assert check_val_splits({"a": None}) == (True, None)


def test_different_known_splits_are_not_comparable() -> None:
    ok, warning = check_val_splits({"a": D1, "b": D2, "c": D1})
    assert not ok
    assert warning == (
        "not comparable: validated on different val splits (a, c on 111111111111; "
        f"b on 222222222222); {FIX_ALL}"
    )


def test_some_unknown_is_not_comparable() -> None:
    ok, warning = check_val_splits({"a": None, "b": D1, "c": D1}, fix="evaluate them again")
    assert not ok
    assert warning == (
        "not comparable: validated on different val splits (b, c on 111111111111; "
        "a on an unknown val split); evaluate them again"
    )


def test_val_comparability_is_the_same_rule_as_a_list() -> None:
    for digests in ({"a": D1, "b": D1}, {"a": None, "b": None}, {"a": D1, "b": D2}, {"a": D1, "b": None}):
        ok, warning = check_val_splits(digests)
        assert val_comparability(digests) == (ok, [warning] if warning else [])
    assert val_comparability({"a": D1, "b": D1}) == (True, [])
