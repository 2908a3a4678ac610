"""A full disk, for real: the command runs in a subprocess whose files may not grow past a
small size (``RLIMIT_FSIZE``, with ``SIGXFSZ`` ignored, so a write past it fails with
EFBIG as on a full disk). What cannot be written is said in one line, nothing is left
half-written, and a stat cache that cannot be written is only a warning."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from support.datasets import box, make_dataset
from trialbook.api import Book

resource = pytest.importorskip("resource")  # POSIX only
pytestmark = pytest.mark.skipif(os.name == "nt", reason="needs POSIX rlimits")

# Every file of the child may grow to this many bytes: enough for SQLite's 32 KiB
# shared-memory file and the write-ahead log of a small transaction, not for more.
LIMIT = 48 * 1024


def limited(limit: int) -> Callable[[], None]:
    import signal

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def trialbook_cmd(*args: str, cwd: Path, limit: int | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TRIALBOOK_USER": "tester"}
    env.pop("TRIALBOOK_URI", None)
    return subprocess.run(
        [sys.executable, "-m", "trialbook", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limited(limit) if limit is not None else None,
    )


def old_dataset(root: Path, images: int) -> Path:
    """A dataset of ``images`` train images (and 1 val image) whose files are old enough
    for the stat cache to keep them; its data.yaml."""
    config = make_dataset(
        root,
        {"train": {f"img_{i:05d}.jpg": [box(i % 3)] for i in range(images)}, "val": {"v.jpg": [box(0)]}},
    )
    old = time.time() - 3600
    for folder, _, files in os.walk(root):
        for name in files:
            os.utime(Path(folder) / name, (old, old))
    return config


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An embedded book in tmp_path, made by ``trialbook init`` in a process of its own
    (which leaves no write-ahead log behind: the limited child starts with an empty one)."""
    made = trialbook_cmd("init", ".", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    return tmp_path


def versions(home: Path) -> list[object]:
    listed = trialbook_cmd("data", "list", "--json", cwd=home)
    assert listed.returncode == 0, listed.stderr
    return list(json.loads(listed.stdout)["versions"])


def leftovers(home: Path) -> list[Path]:
    return [p for p in home.rglob(".incoming-*")]


def test_data_tag_on_a_full_disk_says_the_manifest_could_not_be_stored(home: Path, tmp_path: Path) -> None:
    config = old_dataset(tmp_path / "ds", 1600)  # a manifest of ~70 KB: over the limit
    result = trialbook_cmd("data", "tag", "big", str(config), "--tag", "v1", cwd=home, limit=LIMIT)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: big:v1 was not tagged (nothing was recorded): cannot store its manifest")
    assert "File too large" in line and str(home / ".trialbook" / "blobs") in line
    assert versions(home) == [] and leftovers(home) == []
    # with room again, the same command tags it
    assert trialbook_cmd("data", "tag", "big", str(config), "--tag", "v1", cwd=home).returncode == 0
    assert len(versions(home)) == 1


def test_a_stat_cache_that_cannot_be_written_is_a_warning(home: Path, tmp_path: Path) -> None:
    config = old_dataset(tmp_path / "ds", 300)  # the manifest fits, the cache's rows do not
    result = trialbook_cmd("data", "tag", "mid", str(config), "--tag", "v1", "--json", cwd=home, limit=LIMIT)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    warning = next(w for w in json.loads(result.stdout)["warnings"] if "stat cache" in w)
    assert f"the stat cache {home / '.trialbook' / 'cache' / 'stat.db'} cannot be used" in warning
    assert f"warning: {warning}" in result.stderr
    assert len(versions(home)) == 1


def test_log_artifact_on_a_full_disk_is_a_storage_error_and_records_nothing(
    home: Path, tmp_path: Path
) -> None:
    weights = tmp_path / "best.pt"
    weights.write_bytes(os.urandom(4 * LIMIT))
    script = textwrap.dedent(
        f"""
        import trialbook
        from trialbook.errors import StorageError

        run = trialbook.start("pallets", "v1_base", allow_unpinned=True)
        try:
            run.log_artifact({str(weights)!r})
        except StorageError as exc:
            print("StorageError:", exc)
        run.finish()
        """
    )
    env = {**os.environ, "TRIALBOOK_USER": "tester"}
    env.pop("TRIALBOOK_URI", None)
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limited(LIMIT),
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = result.stdout.strip().splitlines()
    assert line.startswith(f"StorageError: cannot store artifact {weights}") and "File too large" in line
    book = Book.open(str(home))
    try:
        run = book.store.get_run("pallets", "v1_base")
        assert run.status == "finished"
        assert book.store.list_artifacts(run.id) == []
    finally:
        book.close()
    assert leftovers(home) == []
