"""The ``system/`` series (trialbook.system): a real run on a real book records, per epoch,
its wall time, the machine's CPU use and memory and this process's, through the writer
thread and the same way to the book as the user's points; with no GPU nothing of NVML is
imported; ``TRIALBOOK_SYSTEM_METRICS=0`` records none; a psutil that does not load is one
warning, and training goes on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from support.runs import MAP
from support.server import start as serve
from trialbook import system
from trialbook.api import Book, Run
from trialbook.system import CPU, EPOCH_TIME, RAM, RSS, visible_gpus

SAMPLED = (CPU, RAM, RSS)
FAST = 0.05  # flush_interval of these runs: the writer wakes every 50 ms


@pytest.fixture(autouse=True)
def _system_metrics_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """On here (and in the subprocesses), whatever the suite's default."""
    monkeypatch.setenv("TRIALBOOK_SYSTEM_METRICS", "1")


def begin(book: Book, name: str = "v1_base") -> Run:
    return book.start("pallets", name, allow_unpinned=True, flush_interval=FAST)


def busy(seconds: float) -> None:
    """An epoch's work: the CPU kept busy for ``seconds``."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        sum(range(200))


def system_history(book: Book, run_id: str) -> dict[str, list[tuple[int, float]]]:
    history = book.store.get_all_history(run_id)
    return {k: v for k, v in history.items() if k.startswith(system.PREFIX)}


def test_each_epoch_records_its_time_cpu_and_memory(sqlite_book: Book) -> None:
    """Ultralytics' shape: each epoch logged once, at its end, numbered from 1. Epoch N's
    time runs from the log call of epoch N-1 (the run's start for the first) to its own:
    each epoch does a different amount of work, so a time given to the wrong epoch shows."""
    before = time.perf_counter()
    run = begin(sqlite_book)
    after = time.perf_counter()
    logged: dict[int, float] = {}
    for epoch, seconds in {1: 0.25, 2: 0.1, 3: 0.35}.items():
        busy(seconds)
        logged[epoch] = time.perf_counter()
        run.log({MAP: 0.1 * epoch, "train/box_loss": 1.0 / epoch}, epoch=epoch)
        time.sleep(2 * FAST)  # the writer closes the epoch before the next one's work
    run.finish()
    found = system_history(sqlite_book, run.id)
    assert set(found) == {EPOCH_TIME, *SAMPLED}
    for key in (EPOCH_TIME, *SAMPLED):
        assert [e for e, _ in found[key]] == [1, 2, 3], key
    times = dict(found[EPOCH_TIME])
    assert logged[1] - after <= times[1] <= logged[1] - before + 0.001
    for epoch in (2, 3):
        assert times[epoch] == pytest.approx(logged[epoch] - logged[epoch - 1], abs=0.001), times
    assert all(0.0 <= v <= 100.0 for _, v in found[CPU])
    own_rss = psutil.Process().memory_info().rss / 2**20  # the run was in this process
    assert all(own_rss / 2 < v < own_rss * 2 for _, v in found[RSS]), (own_rss, found[RSS])
    total_ram = psutil.virtual_memory().total / 2**20
    assert all(0.0 < v < total_ram for _, v in found[RAM])
    assert sqlite_book.run("v1_base").status == "finished"


def test_memory_is_the_epochs_peak(sqlite_book: Book) -> None:
    """64 MiB held in the middle of epoch 2 and freed before its end count in epoch 2's
    resident memory: the writer polls between epochs' ends too."""
    with begin(sqlite_book) as run:
        run.log({MAP: 0.1}, epoch=1)
        time.sleep(2 * FAST)
        held = b"\x01" * (64 << 20)  # written, so resident
        time.sleep(system.POLL_INTERVAL_S + 0.3)
        del held
        run.log({MAP: 0.2}, epoch=2)
        time.sleep(2 * FAST)
        run.log({MAP: 0.3}, epoch=3)
    rss = dict(system_history(sqlite_book, run.id)[RSS])
    assert rss[2] > rss[1] + 48 and rss[2] > rss[3] + 48, rss


def test_epochs_faster_than_the_writer_each_get_their_time(sqlite_book: Book) -> None:
    """Twenty epochs logged at once, two calls each (the second names the epoch again):
    every epoch has its time, and the times add up to the training; the sampled figures
    cover several epochs each, at most one point an epoch, the last epoch's among them
    (written by finish)."""
    before = time.perf_counter()
    run = sqlite_book.start("pallets", "v1_base", allow_unpinned=True)  # the writer wakes every 0.5 s
    after = time.perf_counter()
    for epoch in range(20):
        busy(0.005)
        last = time.perf_counter()
        run.log({"train/box_loss": 1.0 / (epoch + 1)}, epoch=epoch)
        run.log({MAP: 0.01 * epoch}, epoch=epoch)
    run.finish()
    found = system_history(sqlite_book, run.id)
    assert [e for e, _ in found[EPOCH_TIME]] == list(range(20))
    assert last - after <= sum(v for _, v in found[EPOCH_TIME]) <= last - before + 0.001
    for key in SAMPLED:
        epochs = [e for e, _ in found[key]]
        assert epochs and epochs[-1] == 19 and len(epochs) == len(set(epochs)) <= 20, key


@pytest.mark.parametrize("value", ["0", "off", "False"])
def test_the_off_switch_records_no_system_series(
    sqlite_book: Book, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("TRIALBOOK_SYSTEM_METRICS", value)
    with begin(sqlite_book) as run:
        for epoch in range(3):
            run.log({MAP: 0.1 * epoch}, epoch=epoch)
            time.sleep(2 * FAST)
    assert set(sqlite_book.store.get_all_history(run.id)) == {MAP}


def test_a_resumed_run_times_its_first_epoch_from_the_resume(sqlite_book: Book) -> None:
    with begin(sqlite_book) as run:
        run.log({MAP: 0.1}, epoch=1)
    sqlite_book.store.set_run_status(run.id, "crashed")
    resumed = sqlite_book.start("pallets", "v1_base", resume=True, flush_interval=FAST)
    busy(0.15)
    resumed.log({MAP: 0.2}, epoch=2)
    resumed.finish()
    times = dict(system_history(sqlite_book, run.id)[EPOCH_TIME])
    assert set(times) == {1, 2} and times[2] == pytest.approx(0.15, abs=0.04)


def test_the_points_reach_a_remote_book_through_the_outbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRIALBOOK_OUTBOX", str(tmp_path / "outbox.db"))
    monkeypatch.delenv("TRIALBOOK_TOKEN", raising=False)
    served = tmp_path / "server-book"
    with serve(str(served)) as server:
        remote = Book.open(server.url)
        try:
            with begin(remote) as run:
                for epoch in (1, 2):
                    busy(0.1)
                    run.log({MAP: 0.1 * epoch}, epoch=epoch)
                    time.sleep(2 * FAST)
        finally:
            remote.close()
    book = Book.open(str(served))
    try:
        stored = book.store.get_run("pallets", "v1_base")
        found = system_history(book, stored.id)
        assert stored.unwritten == 0
        for key in (EPOCH_TIME, *SAMPLED):
            assert [e for e, _ in found[key]] == [1, 2], key
    finally:
        book.close()


# --------------------------------------------------------------------------- in a fresh process
def run_script(tmp_path: Path, body: str, *, pythonpath: Path | None = None) -> dict[str, object]:
    """``body`` after a few epochs of a run on a fresh book in a new interpreter (``run``,
    ``book`` and ``history`` are defined for it); what it prints as JSON, and its stderr
    under ``"stderr"``."""
    code = textwrap.dedent(
        f"""
        import json, sys, time, warnings
        warnings.simplefilter("always")
        import trialbook as tb
        at_import = sorted(m for m in ("psutil", "pynvml", "trialbook.system") if m in sys.modules)
        book = tb.init({str(tmp_path)!r})
        run = book.start("pallets", "v1_base", allow_unpinned=True, flush_interval={FAST})
        for epoch in range(3):
            time.sleep(0.08)
            run.log({{"train/box_loss": 1.0 / (epoch + 1)}}, epoch=epoch)
        run.finish()
        history = book.store.get_all_history(run.id)
        """
    ) + textwrap.dedent(body)
    env = {**os.environ, "TRIALBOOK_USER": "tester", "TRIALBOOK_SPOOL": str(tmp_path / "spool")}
    env.pop("TRIALBOOK_URI", None)
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(pythonpath), env.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert isinstance(found, dict)
    return {**found, "stderr": done.stderr}


@pytest.mark.skipif(system.nvidia_device_present(), reason="this machine has an NVIDIA device")
def test_with_no_gpu_nothing_of_nvml_is_imported_or_recorded(tmp_path: Path) -> None:
    """pynvml is installed here (Ultralytics depends on it), and is still never imported:
    there is no NVIDIA device. ``import trialbook`` imports neither psutil nor the sampler."""
    found = run_script(
        tmp_path,
        """
        print(json.dumps({"at_import": at_import, "keys": sorted(history),
                          "after": sorted(m for m in ("psutil", "pynvml") if m in sys.modules)}))
        """,
    )
    assert found["at_import"] == []
    assert found["after"] == ["psutil"]
    assert found["keys"] == sorted(["train/box_loss", EPOCH_TIME, *SAMPLED])
    assert "TrackingWarning" not in str(found["stderr"])


def test_a_psutil_that_does_not_load_is_one_warning_and_training_goes_on(tmp_path: Path) -> None:
    """A broken psutil install (its import raises) shadows the real one on PYTHONPATH: the
    run warns once, records its points and its epoch times, and finishes."""
    shim = tmp_path / "shim" / "psutil"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text('raise ImportError("psutil is broken on this machine")\n')
    found = run_script(
        tmp_path / "book",
        """
        print(json.dumps({"status": book.run("v1_base").status,
                          "keys": {k: [e for e, _ in v] for k, v in history.items()}}))
        """,
        pythonpath=tmp_path / "shim",
    )
    assert found["status"] == "finished"
    assert found["keys"] == {"train/box_loss": [0, 1, 2], EPOCH_TIME: [0, 1, 2]}
    stderr = str(found["stderr"])
    assert stderr.count("TrackingWarning") == 1, stderr
    assert "psutil does not load (ImportError: psutil is broken on this machine)" in stderr


# --------------------------------------------------------------------------- GPUs
@pytest.mark.skipif(not system.nvidia_device_present(), reason="no NVIDIA device on this machine")
def test_a_gpu_machine_records_each_gpus_figures(sqlite_book: Book) -> None:
    pytest.importorskip("pynvml")
    with begin(sqlite_book) as run:
        for epoch in (1, 2):
            busy(0.1)
            run.log({MAP: 0.1 * epoch}, epoch=epoch)
            time.sleep(2 * FAST)
    found = system_history(sqlite_book, run.id)
    gpu0 = {k for k in found if k.startswith("system/gpu0/")}
    assert "system/gpu0/memory_used_mib" in gpu0 and "system/gpu0/util_percent" in gpu0
    assert all(0 <= v <= 100 for _, v in found["system/gpu0/util_percent"])
    assert all(v > 0 for _, v in found["system/gpu0/memory_used_mib"])


UUIDS = ["GPU-aaaa-1111", "GPU-bbbb-2222", "GPU-abcd-3333"]


@pytest.mark.parametrize(
    ("value", "visible"),
    [
        (None, [0, 1, 2]),
        ("", []),
        ("-1", []),
        ("2", [2]),
        ("2,0", [2, 0]),
        (" 1 , 2 ", [1, 2]),
        ("0,7,1", [0]),  # CUDA reads up to the first index that names no GPU
        ("1,1", [1]),  # ... or one named already
        ("GPU-bbbb", [1]),  # a unique UUID prefix
        ("GPU-a", []),  # one that is not unique names no GPU
        ("GPU-abcd-3333,0", [2, 0]),
        ("MIG-5c1f2d7e", [0, 1, 2]),  # a MIG slice: its whole machine
    ],
)
def test_cuda_visible_devices_chooses_the_gpus(value: str | None, visible: list[int]) -> None:
    assert visible_gpus(value, UUIDS) == visible
