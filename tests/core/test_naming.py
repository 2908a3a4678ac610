"""Run names: <version>_<what_changed> (trialbook.core.naming)."""

from __future__ import annotations

import pytest

from trialbook.core.naming import DEFAULT_PATTERN, check_name, is_valid_name, suggest_fix
from trialbook.errors import InvalidInput


@pytest.mark.parametrize(
    "name", ["v1_baseline", "v4_lr0_0.0005_no_mosaic", "v12b_imgsz_1024", "v3_x-y.z", "v0_a"]
)
def test_good_names(name: str) -> None:
    assert is_valid_name(name)
    assert check_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["run_5", "final", "final_actually_final", "train3", "exp12", "v4", "v4_", "V4_x", "v4_Upper", "v4ab_x"],
)
def test_bad_names_are_refused_with_a_suggestion(name: str) -> None:
    assert not is_valid_name(name)
    with pytest.raises(InvalidInput) as err:
        check_name(name)
    message = str(err.value)
    assert repr(name) in message
    assert repr(suggest_fix(name)) in message
    assert "<version>_<what_changed>" in message


@pytest.mark.parametrize("name", ["", None, 3])
def test_no_name_is_refused(name: int | str | None) -> None:
    with pytest.raises(InvalidInput, match="needs a name"):
        check_name(name)


@pytest.mark.parametrize(
    ("name", "fix"),
    [
        ("train3", "v3_what_changed"),
        ("exp12", "v12_what_changed"),
        ("run_5", "v5_what_changed"),
        ("final", "v1_final"),
        ("Final Actually Final", "v1_final_actually_final"),
        ("v4", "v4_what_changed"),
        ("v4-mosaic", "v4_mosaic"),
        ("V3b_More Data", "v3b_more_data"),
        ("!!!", "v1_what_changed"),
    ],
)
def test_suggest_fix(name: str, fix: str) -> None:
    assert suggest_fix(name) == fix


@pytest.mark.parametrize("name", ["train3", "exp12", "run_5", "final", "v4", "Final Actually Final", "!!!"])
def test_suggestions_follow_the_default_pattern(name: str) -> None:
    assert is_valid_name(suggest_fix(name), DEFAULT_PATTERN)


def test_a_project_pattern_replaces_the_default() -> None:
    pattern = r"^exp\d+$"
    assert check_name("exp3", pattern) == "exp3"
    assert not is_valid_name("v1_x", pattern)
    with pytest.raises(InvalidInput, match=r"\^exp"):
        check_name("v1_x", pattern)


def test_the_whole_name_must_match() -> None:
    assert not is_valid_name("v1_x y")
    assert not is_valid_name("xv1_x")
