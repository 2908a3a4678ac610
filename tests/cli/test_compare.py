"""compare: analytics per run, config differences, datasets, val splits, exploratory."""

from __future__ import annotations

import pytest

from support.cli import CLI, as_json
from support.runs import DIGESTS, MAP, VAL_B, add_run, set_protocol
from trialbook.api import Book


@pytest.fixture
def filled(sqlite_book: Book) -> Book:
    """Three runs of pallets: v1_base, its child v2_imgsz_1024 and v3_no_curve."""
    set_protocol(sqlite_book, convergence_target=0.5, noise=0.01)
    add_run(
        sqlite_book,
        "v1_base",
        curve=[0.1, 0.3, 0.5, 0.6, 0.55, 0.62, 0.61],
        config={"lr0": 0.01, "imgsz": 640, "seed": 0},
        val=0.6,
    )
    add_run(
        sqlite_book,
        "v2_imgsz_1024",
        parent="v1_base",
        curve=[0.2, 0.4, 0.65, 0.7, 0.7],
        config={"lr0": 0.01, "imgsz": 1024, "seed": 0},
    )
    add_run(sqlite_book, "v3_no_curve", config={"lr0": 0.001, "imgsz": 640, "seed": 0})
    sqlite_book.store.log_batch(sqlite_book.run("v1_base").id, {"val/box_loss": {0: 1.5, 1: 1.2, 2: 1.0}})
    return sqlite_book


def test_compare_json_has_the_contract_keys_and_the_analytics(tb: CLI, filled: Book) -> None:
    out = as_json(tb("compare", "v1_base", "v2_imgsz_1024", "v3_no_curve", "--json"))
    assert out["metric"] == MAP and out["exploratory"] is False and out["comparable"] is True
    assert [r["name"] for r in out["runs"]] == ["v2_imgsz_1024", "v1_base", "v3_no_curve"]
    for r in out["runs"]:
        for key in (
            "name",
            "best",
            "final",
            "epoch_of_best",
            "convergence_epoch",
            "epochs_to_95pct",
            "drops",
            "max_drawdown",
        ):
            assert key in r
    v1 = out["runs"][1]
    assert v1["best"] == pytest.approx(0.62) and v1["final"] == pytest.approx(0.61)
    assert v1["epoch_of_best"] == 5 and v1["convergence_epoch"] == 2
    assert v1["epochs_to_95pct"] == 3  # 0.6 >= 0.95 * 0.62
    assert v1["drop_count"] == 1 and v1["drops"] == [{"epoch": 4, "size": pytest.approx(0.05)}]
    assert v1["max_drawdown"] == pytest.approx(0.05)
    assert v1["dataset"] == "pallets:v1" and v1["val_split"] == DIGESTS["val"]
    assert v1["val_value"] == pytest.approx(0.6) and v1["curve"][0] == [0, 0.1]
    assert out["runs"][0]["parent"] == "v1_base"
    assert out["runs"][2]["best"] is None and out["runs"][2]["curve"] == []
    assert out["config_diff"] == {
        "imgsz": {"v1_base": 640, "v2_imgsz_1024": 1024, "v3_no_curve": 640},
        "lr0": {"v1_base": 0.01, "v2_imgsz_1024": 0.01, "v3_no_curve": 0.001},
    }


def test_compare_human_output(tb: CLI, filled: Book) -> None:
    out = tb("compare", "v1_base", "v2_imgsz_1024").stdout
    assert "compared on metrics/mAP50-95(B)" in out and "exploratory" not in out
    assert "imgsz" in out and "1024" in out and "pallets:v1" in out
    assert "▁" in out and "█" in out  # sparklines


def test_another_metric_is_exploratory_everywhere(tb: CLI, filled: Book) -> None:
    out = as_json(tb("compare", "v1_base", "v2_imgsz_1024", "--metric", "val/box_loss", "--json"))
    assert out["exploratory"] is True and out["metric"] == "val/box_loss"
    assert out["direction"] == "min" and out["convergence_target"] is None
    assert out["warnings"][0].startswith("exploratory")
    assert out["runs"][0]["name"] == "v1_base" and out["runs"][0]["best"] == 1.0
    human = tb("compare", "v1_base", "v2_imgsz_1024", "--metric", "val/box_loss").stdout
    assert "(exploratory)" in human
    # an alias of the protocol metric is not exploratory
    assert as_json(tb("compare", "v1_base", "--metric", "map50-95", "--json"))["exploratory"] is False
    bad = tb("compare", "v1_base", "v2_imgsz_1024", "--metric", "lr/pg0", code=1)
    assert "no better direction" in bad.stderr


def test_different_val_splits_are_not_comparable(tb: CLI, sqlite_book: Book) -> None:
    add_run(sqlite_book, "v1_a", curve=[0.5])
    add_run(sqlite_book, "v2_b", curve=[0.6], digests={**DIGESTS, "val": VAL_B})
    add_run(sqlite_book, "v3_c", curve=[0.6], digests={}, pinned=False)
    out = as_json(tb("compare", "v1_a", "v2_b", "--json"))
    assert out["comparable"] is False
    warning = out["warnings"][0]
    assert "not comparable" in warning and "evaluate all of them on one val split" in warning
    human = tb("compare", "v1_a", "v2_b").stdout
    assert "NOT COMPARABLE" in human and "evaluate all of them on one val split" in human
    unknown = as_json(tb("compare", "v1_a", "v3_c", "--json"))
    assert unknown["comparable"] is False and "v3_c on an unknown val split" in unknown["warnings"][0]
    assert "UNPINNED" in tb("compare", "v1_a", "v3_c").stdout


def test_compare_errors(tb: CLI, sqlite_book: Book) -> None:
    add_run(sqlite_book, "v1_a", curve=[0.5])
    add_run(sqlite_book, "v1_b", project="other", curve=[0.5])
    assert "one project" in tb("compare", "v1_a", "other/v1_b", code=1).stderr
    assert "no run named 'v9_x'" in tb("compare", "v1_a", "v9_x", code=1).stderr
    assert tb("compare", code=2).exit_code == 2
