"""The lesson's exercise with the command line alone, as a newcomer does it: the venv's
``trialbook`` command in subprocesses, real Ultralytics training on the CPU, nothing
patched (Ultralytics' settings go to a folder of the test through ``YOLO_CONFIG_DIR``).

Make a small dataset, ``data tag``, ``project set`` (latency budget and device), two
``yolo train`` runs that differ in image size, ``yolo val --split test`` and
``yolo latency`` for both, a note for each, ``compare``, ``decide`` (twice: no second
reveal), ``ship`` if it won, ``export``. And the refusals of ``yolo train``: each before
Ultralytics starts, leaving nothing behind.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from support.extras import require_ultralytics
from support.shell import Shell
from trialbook.demo.story import write_dataset

pytestmark = pytest.mark.slow

MAP = "metrics/mAP50-95(B)"
TRAIN = ["model=yolo11n.yaml", "data=data/shapes/data.yaml", "epochs=4", "batch=8", "workers=0"]
TRAIN += ["device=cpu", "seed=0", "amp=False"]


def dataset(cwd: Path) -> Path:
    return write_dataset(
        cwd / "data" / "shapes",
        {"train": 24, "val": 12, "test": 12},
        seed=5,
        size=128,
        classes=["square", "bar", "block"],
    )


@pytest.fixture(scope="module")
def exercise(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Shell, dict[str, subprocess.CompletedProcess[str]]]:
    require_ultralytics()
    cwd = tmp_path_factory.mktemp("exercise") / "work"
    cwd.mkdir()
    tb = Shell(cwd)
    dataset(cwd)
    out: dict[str, subprocess.CompletedProcess[str]] = {}
    tb("init")
    tb("data", "tag", "shapes", "data/shapes/data.yaml", "--tag", "v1")
    out["set"] = tb(
        "project", "set", "shapes", "--latency-budget", "500", "--device", "cpu", "--reason", "CPU target"
    )
    out["train1"] = tb("yolo", "train", "v1_imgsz_128", "--", *TRAIN, "imgsz=128")
    out["train2"] = tb("yolo", "train", "v2_imgsz_160", "--parent", "v1_imgsz_128", "--", *TRAIN, "imgsz=160")
    for name in ("v1_imgsz_128", "v2_imgsz_160"):
        out[f"test_{name}"] = tb("yolo", "val", name, "--split", "test")
        out[f"latency_{name}"] = tb(
            "yolo", "latency", name, "--device", "cpu", "--iters", "10", "--warmup", "2"
        )
        tb(
            "note",
            name,
            "--hypothesis",
            f"{name} hypothesis",
            "--change",
            "image size only",
            "--result",
            "see the decision",
            "--next",
            "train longer",
        )
    return tb, out


def test_training_goes_where_the_user_is_and_is_recorded(exercise: tuple[Shell, dict]) -> None:  # type: ignore[type-arg]
    tb, out = exercise
    assert "recorded shapes/v1_imgsz_128 (finished)" in out["train1"].stdout
    for name in ("v1_imgsz_128", "v2_imgsz_160"):
        assert (tb.cwd / "runs" / "detect" / name / "weights" / "best.pt").is_file()
    assert sorted(p.name for p in (tb.cwd / "runs" / "detect").iterdir()) == ["v1_imgsz_128", "v2_imgsz_160"]
    projects = tb.json("projects")
    assert [(p["name"], p["runs"]) for p in projects["projects"]] == [("shapes", 2)]
    shown = tb.json("show", "v2_imgsz_160")
    assert shown["project"] == "shapes" and shown["dataset"] == "shapes:v1" and shown["pinned"] is True
    assert shown["parent"] == "v1_imgsz_128" and shown["config"]["imgsz"] == 160
    assert shown["summary"][MAP]["epoch_of_best"] in (1, 2, 3, 4)


def test_test_evaluations_stay_sealed_on_the_console(exercise: tuple[Shell, dict]) -> None:  # type: ignore[type-arg]
    tb, out = exercise
    for name in ("v1_imgsz_128", "v2_imgsz_160"):
        done = out[f"test_{name}"]
        assert "sealed" in done.stdout
        printed = done.stdout + done.stderr
        assert " all " not in printed and "mAP50-95" not in printed and "Speed:" not in printed
        test_dir = tb.cwd / "runs" / "detect" / name / "test"
        assert test_dir.is_dir() and not list(test_dir.iterdir())  # no test image, no plot
        shown = tb.json("show", name)
        (sealed,) = [e for e in shown["evaluations"] if e["split"] == "test"]
        assert sealed["sealed"] is True and sealed["metrics"] is None


def test_latency_is_measured_here_for_the_named_device(exercise: tuple[Shell, dict]) -> None:  # type: ignore[type-arg]
    tb, out = exercise
    text = out["latency_v1_imgsz_128"].stdout
    assert "on cpu (torch, imgsz 128, batch 1, 10 runs): p50 " in text and " ms, p95 " in text
    shown = tb.json("show", "v1_imgsz_128")
    (timed,) = [e for e in shown["evaluations"] if e["split"] == "latency"]
    assert timed["latency_ms"] == pytest.approx(timed["metrics"]["latency/p50_ms"])
    assert timed["metrics"]["latency/p50_ms"] <= timed["metrics"]["latency/p95_ms"]


def test_compare_decide_twice_ship_and_export(exercise: tuple[Shell, dict]) -> None:  # type: ignore[type-arg]
    tb, _ = exercise
    compared = tb.json("compare", "v1_imgsz_128", "v2_imgsz_160")
    assert compared["metric"] == MAP and compared["comparable"] is True
    first = tb.json("decide", "v2_imgsz_160", "--baseline", "v1_imgsz_128")
    assert [g["gate"] for g in first["gates"]] == ["improvement", "per_class", "test_set", "latency"]
    latency = first["gates"][3]
    assert latency["passed"] is True and "cpu" in latency["detail"], latency
    assert first["revealed"] is True and first["test_reveals_used"] == 1
    again = tb.json("decide", "v2_imgsz_160", "--baseline", "v1_imgsz_128")
    assert again["id"] == first["id"] and again["recorded_before"] is True
    assert again["test_reveals_used"] == 1
    said = tb("decide", "v2_imgsz_160", "--baseline", "v1_imgsz_128").stdout
    assert "trialbook decisions" in said
    decisions = tb.json("decisions")
    assert len(decisions["decisions"]) == 1
    if first["verdict"] == "WIN":
        shipped = tb("ship", "v2_imgsz_160")
        assert "v2_imgsz_160" in shipped.stdout
    else:
        tb("ship", "v2_imgsz_160", code=1)
    report = tb("export", "--project", "shapes", "--format", "md").stdout
    assert "v1_imgsz_128" in report and "v2_imgsz_160" in report
    assert f"Verdict:   {first['verdict'].replace('_', ' ')}" in report


# --------------------------------------------------------------------------- refusals
@pytest.fixture()
def fresh(tmp_path: Path) -> Shell:
    require_ultralytics()
    cwd = tmp_path / "work"
    cwd.mkdir()
    tb = Shell(cwd)
    dataset(cwd)
    tb("init")
    return tb


def refused(tb: Shell, *args: str) -> str:
    """``yolo train`` refused in one line, leaving no run folder and no project."""
    done = tb("yolo", "train", *args, code=1)
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) <= 8, done.stderr
    assert not (tb.cwd / "runs").exists()
    assert tb.json("projects")["projects"] == []
    return done.stderr


def test_train_refusals_come_first_and_leave_nothing(fresh: Shell) -> None:
    tb = fresh
    assert "match no tagged dataset version" in refused(tb, "v1_x", "--", *TRAIN)
    tb("data", "tag", "shapes", "data/shapes/data.yaml", "--tag", "v1")
    assert "naming rule" in refused(tb, "train3", "--", *TRAIN)
    assert "no run named 'v0_nope'" in refused(tb, "v1_x", "--parent", "v0_nope", "--", *TRAIN)
    offline = refused(tb, "v1_x", "--", *[a for a in TRAIN if not a.startswith("model=")], "model=yolo11n.pt")
    assert "cannot be downloaded" in offline and "model=yolo11n.yaml" in offline
    label = next((tb.cwd / "data" / "shapes" / "labels" / "val").iterdir())
    label.write_text(label.read_text() + "0 0.5 0.5 0.1 0.1\n")
    changed = refused(tb, "v1_x", "--", *TRAIN)
    assert "no longer match shapes:v1" in changed and label.name in changed


def test_an_existing_training_folder_is_never_written_into(fresh: Shell) -> None:
    tb = fresh
    tb("data", "tag", "shapes", "data/shapes/data.yaml", "--tag", "v1")
    folder = tb.cwd / "runs" / "detect" / "v1_x"
    folder.mkdir(parents=True)
    (folder / "keep.txt").write_text("mine")
    done = tb("yolo", "train", "v1_x", "--", *TRAIN, code=1)
    assert "already exists" in done.stderr and "Traceback" not in done.stderr
    assert [p.name for p in folder.iterdir()] == ["keep.txt"]
    assert tb.json("projects")["projects"] == []
