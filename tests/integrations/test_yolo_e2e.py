"""``trialbook demo --yolo``, run as a user runs it (the venv's ``trialbook`` command, in a
subprocess, nothing patched): two tiny Ultralytics trainings that differ in one thing
(imgsz 128 against 192), tracked live, evaluated on the test split, timed here, then
decided, the verdict printed; every file under the demo's folder. 3 epochs each (the
demo's default of 30 is what separates them; here the point is the path). CPU, offline.

Needs the ultralytics extra (``make install`` has it). Without it the test is skipped,
unless ``TRIALBOOK_REQUIRE_EXTRAS=1`` (CI), which makes its absence a failure.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
from pathlib import Path

import pytest

from support.extras import require_ultralytics, venv_command

pytestmark = pytest.mark.slow

MAP = "metrics/mAP50-95(B)"


def trialbook(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [venv_command("trialbook"), *args],
        cwd=cwd,
        env=env if env is not None else {k: v for k, v in os.environ.items() if k != "TRIALBOOK_URI"},
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    require_ultralytics()
    here = tmp_path_factory.mktemp("yolo")
    env = {k: v for k, v in os.environ.items() if k not in ("TRIALBOOK_URI", "YOLO_CONFIG_DIR")}
    done = trialbook("demo", "--yolo", "book", "--epochs", "3", cwd=here, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return here, done


@pytest.fixture(scope="module")
def yolo_book(demo_run: tuple[Path, subprocess.CompletedProcess[str]]) -> Path:
    return demo_run[0] / "book"


def test_the_demo_prints_its_verdict_and_keeps_its_files(
    demo_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    here, done = demo_run
    assert "Candidate: v2_imgsz_192" in done.stdout and "Baseline:  v1_imgsz_128" in done.stdout
    assert "Verdict:" in done.stdout and ("WIN" in done.stdout or "MORE EXPERIMENTS" in done.stdout)
    assert [p.name for p in here.iterdir()] == ["book"]  # nothing beside the folder it was given
    book = here / "book"
    assert (book / "runs" / "detect" / "v1_imgsz_128" / "weights" / "best.pt").is_file()
    assert (book / "runs" / "detect" / "v2_imgsz_192" / "test").is_dir()
    assert (book / ".ultralytics" / "Ultralytics" / "settings.json").is_file()
    # the test evaluation stayed sealed on the console: no metrics table, no speed line
    for name in ("v1_imgsz_128", "v2_imgsz_192"):
        sealed = done.stderr.split(f"evaluating {name}")[1].split(f"measuring the latency of {name}")[0]
        assert " all " not in sealed and "Speed:" not in sealed and "mAP50" not in sealed, sealed
    # no test-set images were saved
    assert not list((book / "runs" / "detect" / "v1_imgsz_128" / "test").iterdir())


def test_live_tracking_matches_what_ultralytics_wrote(yolo_book: Path) -> None:
    import trialbook as tb

    book = tb.Book.open(str(yolo_book))
    for name in ("v1_imgsz_128", "v2_imgsz_192"):
        run = book.run(name, "shapes")
        assert run.status == "finished" and run.pinned and run.dataset == "shapes:v1"
        assert run.config["imgsz"] in (128, 192) and run.env["packages"]["ultralytics"]
        assert {"imgsz", "epochs", "data", "model"} <= set(run.env["config_asked"])
        assert "lr0" not in run.env["config_asked"] and run.config["optimizer"] == "auto"
        with open(yolo_book / "runs" / "detect" / name / "results.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        epochs = [int(float(r["epoch"])) for r in rows]
        history = book.store.get_history([run.id], MAP)[run.id]
        assert [e for e, _ in history] == epochs == [1, 2, 3]
        for (_, value), row in zip(history, rows, strict=True):
            assert value == pytest.approx(float(row[MAP]), abs=1e-5)
        keys = set(book.store.get_summaries([run.id])[run.id])
        assert {"train/box_loss", "val/box_loss", "lr/pg0", MAP} <= keys
        val, test, timed = book.store.list_evaluations([run.id], reveal=True)
        assert val.split == "val" and not val.sealed and MAP in val.metrics
        assert set(val.per_class_ap) <= {"square", "bar", "block"}
        assert val.latency_ms is not None and val.latency_ms > 0 and val.device == "cpu"
        if val.confusion_matrix is not None:
            assert len(val.confusion_matrix) == 4 and sum(map(sum, val.confusion_matrix)) > 0
        assert test.split == "test" and test.sealed and MAP in test.metrics
        assert test.split_digest == run.split_digests["test"]
        assert timed.split == "latency" and timed.device == "cpu" and timed.latency_ms is not None
        assert timed.metrics["latency/p50_ms"] <= timed.metrics["latency/p95_ms"]
        assert timed.metrics["latency/iters"] == 30
        assert {a.name for a in book.store.list_artifacts(run.id)} >= {"best.pt", "last.pt"}
        note = book.store.get_notes([run.id])[run.id]
        assert note.hypothesis and note.change and note.result


def test_compare_and_decide_with_the_cli(yolo_book: Path) -> None:
    compared = trialbook(
        "compare", "v1_imgsz_128", "v2_imgsz_192", "--project", "shapes", "--json", cwd=yolo_book
    )
    assert compared.returncode == 0, compared.stderr
    data = json.loads(compared.stdout)
    assert data["metric"] == MAP and data["exploratory"] is False and data["comparable"] is True
    assert {r["name"] for r in data["runs"]} == {"v1_imgsz_128", "v2_imgsz_192"}

    decided = trialbook(
        "decide", "v2_imgsz_192", "--baseline", "v1_imgsz_128", "--project", "shapes", "--json", cwd=yolo_book
    )
    assert decided.returncode == 0, decided.stderr
    decision = json.loads(decided.stdout)
    assert decision["verdict"] in ("WIN", "MORE_EXPERIMENTS")
    assert [g["gate"] for g in decision["gates"]] == ["improvement", "per_class", "test_set", "latency"]
    latency = next(g for g in decision["gates"] if g["gate"] == "latency")
    assert latency["passed"] is True, latency  # CPU inference of a 128 px yolo11n: well under 200 ms
    assert decision["test_reveals_used"] >= 1


def test_show_keeps_the_test_split_sealed(yolo_book: Path) -> None:
    import trialbook as tb

    book = tb.Book.open(str(yolo_book))
    run = book.run("v1_imgsz_128", "shapes")
    test = next(e for e in book.store.list_evaluations([run.id], reveal=True) if e.split == "test")
    shown = trialbook("show", "v1_imgsz_128", "--project", "shapes", "--json", cwd=yolo_book)
    assert shown.returncode == 0
    data = json.loads(shown.stdout)
    sealed = next(e for e in data["evaluations"] if e["split"] == "test")
    assert sealed["sealed"] is True and sealed["metrics"] is None
    assert json.dumps(test.per_class_ap) not in shown.stdout
