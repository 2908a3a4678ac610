"""The spool: points that could not be written to their book, kept in files until they
are (``trialbook sync``, or the next time the book is opened).

One JSON-lines file a run, ``<spool>/<run id>.jsonl`` (the folder is
``settings.spool_dir()``), one line an epoch: ``{"run_id", "epoch", "metrics"}``.
Points the store *refused* (it will refuse them again) go to ``<run id>.rejected.jsonl``
with the reason; they are kept for the user and never replayed. Run ids are unique
across books, so a book replays exactly the files of its own runs.

Writers append under an exclusive ``flock``; a replay renames the file first, then
takes the lock, so a writer that opened the file before the rename finishes before it
is read, and a later writer starts a new file. Replaying writes each (key, epoch) with
the store's last-value-wins upsert, so a replay that is interrupted and run again
duplicates nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from trialbook import settings

SUFFIX = ".jsonl"
REJECTED = ".rejected.jsonl"
TAKEN = ".replaying"

Item = tuple[int, dict[str, float]]


def folder() -> Path:
    return settings.spool_dir()


def path_of(run_id: str, *, rejected: bool = False) -> Path:
    return folder() / f"{run_id}{REJECTED if rejected else SUFFIX}"


def append(run_id: str, items: Iterable[Item], *, reason: str | None = None, rejected: bool = False) -> int:
    """Append ``items`` to the run's spool file; return how many points they hold.
    Raises ``OSError`` when the file cannot be written (the caller warns)."""
    import json  # here, not with ``import trialbook`` (which imports this module)

    path = path_of(run_id, rejected=rejected)
    path.parent.mkdir(parents=True, exist_ok=True)
    points = 0
    lines = []
    for epoch, values in items:
        line: dict[str, object] = {"run_id": run_id, "epoch": epoch, "metrics": values}
        if reason is not None:
            line["reason"] = reason
        lines.append(json.dumps(line, allow_nan=True) + "\n")
        points += len(values)
    with open(path, "a", encoding="utf-8") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.write("".join(lines))
        f.flush()
        os.fsync(f.fileno())
    return points


def spooled_runs() -> list[str]:
    """Ids of the runs with points waiting to be replayed (an interrupted replay's
    files included)."""
    try:
        names = os.listdir(folder())
    except OSError:
        return []
    # "<id>.jsonl" and an interrupted replay's "<id>.replaying-<pid>.jsonl" (ids have no dot)
    return sorted({n.split(".", 1)[0] for n in names if n.endswith(SUFFIX) and not n.endswith(REJECTED)})


def _read(path: Path) -> list[Item]:
    """The items of a spool file; a torn last line (a crash mid-write) is left out."""
    import json

    items = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            data = json.loads(line)
            items.append((int(data["epoch"]), {str(k): float(v) for k, v in data["metrics"].items()}))
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
    return items


@contextlib.contextmanager
def taken(run_id: str) -> Iterator[list[Item]]:
    """The run's spooled items, moved aside while the caller writes them; the files are
    deleted when the block ends without an error, and kept for the next try otherwise."""
    base = path_of(run_id)
    mine = base.with_name(f"{run_id}{TAKEN}-{os.getpid()}{SUFFIX}")
    with contextlib.suppress(FileNotFoundError):
        os.rename(base, mine)
    paths = sorted(p for p in folder().glob(f"{run_id}{TAKEN}-*{SUFFIX}"))
    items: list[Item] = []
    for p in paths:
        with open(p, encoding="utf-8") as f:
            fcntl.flock(f, fcntl.LOCK_EX)  # a writer that opened it before the rename is done
        items += _read(p)
    yield items
    for p in paths:
        p.unlink(missing_ok=True)


def rejected_files() -> list[Path]:
    """The files of refused points kept for the user."""
    with contextlib.suppress(OSError):
        return sorted(folder().glob(f"*{REJECTED}"))
    return []
