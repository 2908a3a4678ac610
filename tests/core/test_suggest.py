"""Name suggestions from the config difference (trialbook.core.suggest)."""

from __future__ import annotations

from typing import Any

import pytest

from trialbook.core.naming import is_valid_name
from trialbook.core.suggest import change_token, next_version, suggest_name, what_changed
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
