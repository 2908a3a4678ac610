"""Flattening run configs and their differences (trialbook.core.config)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from trialbook.core.config import diff, flatten


class _Scalar:
    """Like a numpy / torch scalar: has ``item()``."""

    def __init__(self, value: object) -> None:
        self.value = value

    def item(self) -> object:
        return self.value


class _Broken:
    def item(self) -> None:
        raise RuntimeError("no")

    def __str__(self) -> str:
        return "broken"


def test_flatten_nested_mappings_to_dotted_keys() -> None:
    config = {"model": "yolo11n.pt", "hyp": {"lr0": 0.01, "aug": {"mosaic": 1.0}}, "epochs": 3}
    assert flatten(config) == {"model": "yolo11n.pt", "hyp.lr0": 0.01, "hyp.aug.mosaic": 1.0, "epochs": 3}
    assert list(flatten(config)) == ["model", "hyp.lr0", "hyp.aug.mosaic", "epochs"]


def test_flatten_with_another_separator() -> None:
    assert flatten({"a": {"b": 1}}, sep="/") == {"a/b": 1}


def test_flatten_nothing() -> None:
    assert flatten(None) == {}
    assert flatten({}) == {}


def test_flatten_keeps_an_empty_mapping_as_one_text_value() -> None:
    assert flatten({"a": {}, "b": 1}) == {"a": "{}", "b": 1}


def test_flatten_makes_values_json_safe() -> None:
    config: dict[Any, Any] = {  # not only text keys, not only JSON values: on purpose
        "path": Path("/data/x.yaml"),
        "nan": math.nan,
        "inf": math.inf,
        "list": [1, (2, 3), Path("p")],
        "scalar": _Scalar(0.5),
        "nested_scalar": _Scalar(_Scalar(2)),
        "broken": _Broken(),
        "flags": [True, None],
        7: "int key",
    }
    out = flatten(config)
    assert out["path"] == str(Path("/data/x.yaml"))
    assert out["nan"] == "nan"
    assert out["inf"] == "inf"
    assert out["list"] == [1, [2, 3], "p"]
    assert out["scalar"] == 0.5
    assert out["nested_scalar"] == 2
    assert out["broken"] == "broken"
    assert out["flags"] == [True, None]
    assert out["7"] == "int key"


def test_diff_lists_changed_added_and_removed_keys_sorted() -> None:
    a = {"lr0": 0.01, "imgsz": 640, "mosaic": 1.0, "same": "x"}
    b = {"lr0": 0.001, "imgsz": 640, "same": "x", "batch": 16}
    assert diff(a, b) == {"batch": (None, 16), "lr0": (0.01, 0.001), "mosaic": (1.0, None)}
    assert list(diff(a, b)) == ["batch", "lr0", "mosaic"]


def test_diff_of_equal_configs_is_empty() -> None:
    assert diff({"a": 1}, {"a": 1}) == {}
    assert diff({}, {}) == {}


def test_diff_reports_a_key_set_to_none_against_a_missing_one() -> None:
    # both sides read None, but one config has the key and the other does not
    assert diff({"a": None}, {}) == {"a": (None, None)}
    assert diff({"a": None}, {"a": None}) == {}


def test_diff_of_flattened_configs() -> None:
    assert diff(flatten({"hyp": {"lr0": 0.01}}), flatten({"hyp": {"lr0": 0.02}})) == {"hyp.lr0": (0.01, 0.02)}


def test_a_whole_config_reduced_to_what_differs_from_the_defaults() -> None:
    from trialbook.core.config import asked, is_whole, non_default, split_asked

    defaults = {"epochs": 100, "imgsz": 640, "lr0": 0.01, "model": None}
    whole = {"epochs": 100, "imgsz": 320, "lr0": 0.01, "model": "yolo11n.pt", "save_dir": "runs/x"}
    assert is_whole(whole, defaults) and not is_whole({"imgsz": 320}, defaults)
    assert not is_whole(whole, {})  # no defaults known: never whole
    assert non_default(whole, defaults) == {"imgsz": 320, "model": "yolo11n.pt"}  # save_dir: unknown key
    assert asked(whole, None, defaults) == {"imgsz": 320, "model": "yolo11n.pt"}
    assert asked({"imgsz": 320}, None, defaults) == {"imgsz": 320}  # partial: as it is
    first, rest = split_asked(whole, None, defaults)
    assert first == {"imgsz": 320, "model": "yolo11n.pt"} and set(rest) == {"epochs", "lr0", "save_dir"}


def test_training_diff_leaves_out_bookkeeping_keys() -> None:
    from trialbook.core.config import training_diff

    a = {"imgsz": 320, "name": "v1_a", "train.device": 0, "workers": 8}
    b = {"imgsz": 640, "name": "v2_b", "train.device": 1, "workers": 2}
    assert training_diff(a, b) == {"imgsz": (320, 640)}
