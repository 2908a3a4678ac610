"""Name suggestions from the config difference (trialbook.core.suggest)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trialbook.core.config import BOOKKEEPING_KEYS, asked, non_default
from trialbook.core.naming import is_valid_name
from trialbook.core.suggest import change_token, config_changes, next_version, suggest_name, what_changed
from trialbook.errors import InvalidInput


def test_example_from_the_design() -> None:
    name = suggest_name("v3_x", {"lr0": 0.001, "mosaic": 1.0}, {"lr0": 0.0005, "mosaic": 0.0})
    assert name == "v4_lr0_0.0005_no_mosaic"


@pytest.mark.parametrize(
    ("parent", "version"),
    [("v3_x", 4), ("v3b_x", 4), ("v12_imgsz_640", 13), ("train3", 1), ("final", 1), (None, 1)],
)
def test_next_version(parent: str | None, version: int) -> None:
    assert next_version(parent) == version


@pytest.mark.parametrize(
    ("key", "value", "token"),
    [
        ("lr0", 0.0005, "lr0_0.0005"),
        ("lr0", 1e-5, "lr0_1e-05"),
        ("imgsz", 640, "imgsz_640"),
        ("imgsz", 1024.0, "imgsz_1024"),
        ("mosaic", 0.0, "no_mosaic"),
        ("mixup", 0, "no_mixup"),
        ("mosaic", 0.5, "mosaic_0.5"),
        ("weight_decay", 0.0, "weight_decay_0"),
        ("cos_lr", True, "cos_lr"),
        ("amp", False, "no_amp"),
        ("fraction", None, "no_fraction"),
        ("model", "weights/yolo11s.pt", "model_yolo11s"),
        ("data", "/data/Pallets V3/data.yaml", "data_data"),
        ("optimizer", "AdamW", "optimizer_adamw"),
        ("hyp.lr0", 0.002, "lr0_0.002"),
        ("freeze", [0, 1, 2], "freeze_0-1-2"),
        ("scale", -0.5, "scale_-0.5"),
    ],
)
def test_change_token(key: str, value: bool | float | int | list[Any] | str | None, token: str) -> None:
    assert change_token(key, value) == token


def test_tokens_follow_the_stable_order_and_stop_at_three() -> None:
    parent = {"model": "yolo11n.pt", "imgsz": 640, "lr0": 0.01, "mosaic": 1.0, "box": 7.5}
    config = {"model": "yolo11s.pt", "imgsz": 1024, "lr0": 0.005, "mosaic": 0.0, "box": 5.0}
    assert suggest_name("v2_base", parent, config) == "v3_model_yolo11s_imgsz_1024_lr0_0.005"


def test_keys_outside_the_priority_list_are_alphabetical() -> None:
    parent = {"mosaic": 1.0, "box": 7.5}
    config = {"mosaic": 0.0, "box": 5.0}
    assert what_changed(parent, config) == "box_5_no_mosaic"


def test_run_local_and_bookkeeping_keys_are_ignored() -> None:
    parent = {"lr0": 0.01, "name": "v1_a", "save_dir": "runs/1", "workers": 8, "device": 0}
    config = {"lr0": 0.02, "name": "v2_b", "save_dir": "runs/2", "workers": 16, "device": 1}
    assert suggest_name("v1_a", parent, config) == "v2_lr0_0.02"


def test_nested_configs_use_the_last_key_part() -> None:
    parent = {"train": {"lr0": 0.01, "aug": {"mosaic": 1.0}}}
    config = {"train": {"lr0": 0.02, "aug": {"mosaic": 0.0}}}
    assert suggest_name("v5_x", parent, config) == "v6_lr0_0.02_no_mosaic"


def test_added_key_and_removed_key() -> None:
    assert what_changed({"lr0": 0.01}, {"lr0": 0.01, "cos_lr": True}) == "cos_lr"
    assert what_changed({"lr0": 0.01, "fraction": 0.5}, {"lr0": 0.01}) == "no_fraction"


def test_nothing_changed_is_a_rerun() -> None:
    assert suggest_name("v2_x", {"lr0": 0.01}, {"lr0": 0.01}) == "v3_rerun"


def test_no_parent_starts_at_v1() -> None:
    assert suggest_name(None, None, {"imgsz": 640}) == "v1_imgsz_640"


def test_unique_against_existing_names() -> None:
    existing = {"v4_lr0_0.0005", "v4b_lr0_0.0005"}
    assert suggest_name("v3_x", {"lr0": 0.001}, {"lr0": 0.0005}, existing=existing) == ("v4c_lr0_0.0005")


def test_all_letters_taken_moves_to_the_next_version() -> None:
    existing = {"v4_lr0_0.0005"} | {f"v4{c}_lr0_0.0005" for c in "bcdefghijklmnopqrstuvwxyz"}
    assert suggest_name("v3_x", {"lr0": 0.001}, {"lr0": 0.0005}, existing=existing) == ("v5_lr0_0.0005")


@pytest.mark.parametrize(
    "config",
    [
        {"Model Name!": "Weird Value / With Spaces", "LR": 1e-12},
        {"-odd.key": "x"},
        {"学习率": 0.1},
        {"optimizer": "SGD+Nesterov", "imgsz": [640, 480], "scale": 1e20},
        {"data": "a" * 200},
    ],
)
def test_names_always_pass_the_naming_check(config: dict[str, Any]) -> None:
    name = suggest_name("v9_base", {}, config)
    assert is_valid_name(name), name
    assert len(name) <= 3 + 3 * 41 + 1


def test_custom_pattern_is_checked() -> None:
    with pytest.raises(InvalidInput):
        suggest_name("v1_a", {"lr0": 0.1}, {"lr0": 0.2}, pattern=r"^exp_[a-z]+$")


# -- what was asked for (issue 11, item 11) ---------------------------------------------------

DEFAULTS = {
    "model": None,
    "epochs": 100,
    "imgsz": 640,
    "optimizer": "auto",
    "lr0": 0.01,
    "warmup_bias_lr": 0.1,
    "mosaic": 1.0,
    "name": None,
    "device": None,
    "workers": 8,
}
# What Ultralytics records once it has resolved optimizer=auto for a small dataset.
RESOLVED = {
    **DEFAULTS,
    "model": "yolo11n.yaml",
    "epochs": 30,
    "imgsz": 320,
    "optimizer": "AdamW",
    "lr0": 0.001429,
    "warmup_bias_lr": 0.0,
    "name": "v3_imgsz_320",
    "save_dir": "runs/detect/v3_imgsz_320",
}
PARENT_ASKED = {"model": "yolo11n.yaml", "epochs": 30, "imgsz": 320, "name": "v3_imgsz_320"}


def test_a_resolved_optimizer_is_not_taken_for_a_change() -> None:
    args_yaml = {**DEFAULTS, "model": "yolo11n.yaml", "epochs": 30, "imgsz": 640, "name": "v4", "workers": 2}
    name = suggest_name(
        "v3_imgsz_320",
        RESOLVED,
        non_default(args_yaml, DEFAULTS),
        parent_asked=PARENT_ASKED,
        defaults=DEFAULTS,
    )
    assert name == "v4_imgsz_640"
    # the noise the issue saw, when the resolved config is compared with the whole file
    assert "optimizer_auto" in suggest_name("v3_imgsz_320", RESOLVED, args_yaml)


def test_a_whole_config_leaving_a_key_out_puts_it_back_to_its_default() -> None:
    new = non_default({**DEFAULTS, "model": "yolo11n.yaml", "imgsz": 320}, DEFAULTS)  # epochs: default
    changes = config_changes(RESOLVED, new, parent_asked=PARENT_ASKED, defaults=DEFAULTS)
    assert changes == {"epochs": (30, 100)}


def test_a_partial_config_keeps_what_it_does_not_mention() -> None:
    changes = config_changes(
        RESOLVED, {"imgsz": 640}, parent_asked=PARENT_ASKED, defaults=DEFAULTS, partial=True
    )
    assert changes == {"imgsz": (320, 640)}
    # a key the parent did not ask for is compared with its default, not its resolved value
    same = config_changes(RESOLVED, {"lr0": 0.01}, parent_asked=PARENT_ASKED, defaults=DEFAULTS, partial=True)
    assert same == {}
    assert what_changed(
        RESOLVED, {"lr0": 0.005}, parent_asked=PARENT_ASKED, defaults=DEFAULTS, partial=True
    ) == ("lr0_0.005")


def test_a_partial_config_names_a_removal_with_null() -> None:
    part = what_changed({"fraction": 0.5, "lr0": 0.01}, {"fraction": None}, partial=True)
    assert part == "no_fraction"
    assert what_changed({"fraction": 0.5, "lr0": 0.01}, {"lr0": 0.01}, partial=True) == "rerun"


def test_without_defaults_a_key_the_parent_did_not_ask_for_compares_with_its_config() -> None:
    changes = config_changes(
        RESOLVED, {"epochs": 30, "lr0": 0.001429}, parent_asked=PARENT_ASKED, partial=True
    )
    assert changes == {}


def test_bookkeeping_keys_are_ignored_even_when_asked_for() -> None:
    parent_asked = {"imgsz": 320, "device": "cpu", "workers": 0, "project": "a", "exist_ok": True}
    new = {"imgsz": 320, "device": "cuda:0", "workers": 8, "project": "b", "exist_ok": False, "plots": False}
    assert config_changes(None, new, parent_asked=parent_asked) == {}


_values = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.sampled_from([0.01, 0.5, "SGD", "x.pt"]))
_keys = st.sampled_from(
    ["lr0", "imgsz", "epochs", "mosaic", "optimizer", "hyp.box", *sorted(BOOKKEEPING_KEYS)]
)


@given(
    parent=st.dictionaries(_keys, _values, max_size=8),
    new=st.dictionaries(_keys, _values, max_size=8),
    noise=st.dictionaries(st.sampled_from(sorted(BOOKKEEPING_KEYS)), _values, max_size=4),
)
def test_partial_changes_are_the_mentioned_training_keys_that_differ(
    parent: dict[str, Any], new: dict[str, Any], noise: dict[str, Any]
) -> None:
    changes = config_changes(parent, new, partial=True)
    assert set(changes) <= set(new)
    assert not any(k.rsplit(".", 1)[-1] in BOOKKEEPING_KEYS for k in changes)
    for key, (before, after) in changes.items():
        assert before == parent.get(key) and after == new[key]
        assert key not in parent or parent[key] != after
    # bookkeeping keys on either side change nothing
    assert config_changes({**parent, **noise}, {**new, **noise}, partial=True) == changes
    assert config_changes(parent, {**new, **noise}, partial=True) == changes


def test_asked_reads_what_the_tracker_recorded() -> None:
    config = {"imgsz": 320, "lr0": 0.001429, "optimizer": "AdamW", "epochs": 30}
    assert asked(config, {"config_asked": {"imgsz": 320, "lr0": 0.005}}) == {"imgsz": 320, "lr0": 0.005}
    assert asked(config, {"config_asked": ["imgsz", "epochs"]}) == {"imgsz": 320, "epochs": 30}
    assert asked(config, {"config_asked": "imgsz"}) == config  # not a record: the whole config
    assert asked(config, {}) == config
