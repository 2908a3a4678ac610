"""Import MLflow runs: a file store (``mlruns/``) or an MLflow SQLite database.

Read without MLflow installed, and never written to (the database is opened read-only).

File store layouts:

* ``mlruns/<experiment_id>/meta.yaml`` describes an experiment (``name``,
  ``lifecycle_stage``); ``mlruns/<experiment_id>/<run_id>/meta.yaml`` a run. Old MLflow
  (1.x and before) writes integer ids, ``run_uuid`` without ``run_id``, the run's name only
  in the ``mlflow.runName`` tag (``name: ''``), and metric lines without a step; newer
  MLflow writes ``run_id`` and ``run_name`` too. Both are read.
* Inside a run: ``params/<key>`` (the value as text), ``metrics/<key>`` (lines
  ``timestamp value [step]``), ``tags/<key>``; keys with ``/`` are nested folders.
* Not runs, and not read: ``.trash/`` (deleted experiments), the model registry's
  ``models/`` at the top, and inside an experiment MLflow 3's ``models/`` (logged models),
  ``traces/``, ``datasets/`` and ``tags/``.

SQLite database: tables ``experiments``, ``runs``, ``params``, ``metrics`` (``is_nan``
marks NaN) and ``tags`` of MLflow's schema.

Mapping:

* an experiment becomes a project of the same name; a run keeps its name (the
  ``mlflow.runName`` tag, else ``run_name``, else the run id) and is legacy-named when the
  name fails the naming rule; a name used by several runs of one experiment (common in
  MLflow) gets a short suffix on the second and later ones;
* a metric's steps become epochs; several values at one step keep the last by timestamp;
  a point whose step trialbook cannot store as an epoch (negative, or above
  ``core.metrics.MAX_EPOCH``) is left out and reported with its file and line (or, from a
  database, its run and step), and the rest of the run is imported;
  the keys Ultralytics' MLflow callback logs without parentheses (``metrics/mAP50-95B``)
  get them back (``metrics/mAP50-95(B)``), so those runs compare on the protocol metric;
* params become the config (text that reads as a number or a boolean becomes one);
* tags are kept as they are, with ``mlflow.run_id`` and ``mlflow.status`` added;
  ``mlflow.note.content`` becomes the run's note, ``mlflow.parentRunId`` its parent when the
  parent is imported too (parents are imported first), ``mlflow.source.git.commit`` its
  git commit;
* status: FINISHED -> finished, FAILED and KILLED -> failed, RUNNING and SCHEDULED ->
  crashed (the import is a snapshot: no process is recording to the trialbook run, and
  MLflow leaves runs whose process died marked RUNNING forever);
* deleted runs and experiments are skipped (and reported as such).

Importing twice changes nothing: a run whose MLflow run id was imported is skipped, from
the file store or the database alike.
"""

from __future__ import annotations

import math
import os
import re
import sqlite3
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trialbook.core.metrics import finite_number
from trialbook.errors import InvalidInput
from trialbook.integrations.importers.common import (
    LEFT_OUT,
    TAG_PATH,
    ImportProblem,
    ImportReport,
    ParsedRun,
    SkippedRun,
    SourceError,
    Writer,
    capped,
    epoch_problem,
    finite,
    infinity_warning,
    read_text,
    read_yaml,
)

if TYPE_CHECKING:
    from trialbook.api import Book

__all__ = ["STATUS_MAP", "import_mlflow", "read_file_store", "read_sqlite"]

TOOL = "mlflow"
STATUS_MAP = {
    "FINISHED": "finished",
    "FAILED": "failed",
    "KILLED": "failed",
    "RUNNING": "crashed",
    "SCHEDULED": "crashed",
}
# RunStatus as MLflow's file store writes it in meta.yaml
_STATUS_CODES = {1: "RUNNING", 2: "SCHEDULED", 3: "FINISHED", 4: "FAILED", 5: "KILLED"}
_EXPERIMENT_RESERVED = frozenset({"tags", "datasets", "traces", "models"})
_ROOT_RESERVED = frozenset({".trash", "models"})
_SQLITE_MAGIC = b"SQLite format 3\x00"
_INT = re.compile(r"^[+-]?\d+$")
# Ultralytics' MLflow callback drops the parentheses: metrics/mAP50-95B -> metrics/mAP50-95(B)
_ULTRALYTICS_SANITIZED = re.compile(r"^(metrics/(?:precision|recall|mAP50|mAP50-95))([BMP])$")
_FLOAT = re.compile(r"^[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?$")


def _param_value(text: str) -> Any:
    """A param's text as a number or boolean when it plainly is one, else the text."""
    t = text.strip()
    if _INT.match(t):
        return int(t)
    if _FLOAT.match(t):
        return float(t)
    if t in ("True", "true"):
        return True
    if t in ("False", "false"):
        return False
    if t == "None":
        return None
    return text


def _status(raw: Any) -> str:
    """MLflow's status (a name, or the file store's integer code) as its upper-case name."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        return _STATUS_CODES.get(raw, "RUNNING")
    if raw is None:
        return "RUNNING"  # what MLflow assumes for a meta.yaml without a status
    return str(raw).upper()


def _metric_key(key: str, keys: Any) -> str:
    """Ultralytics' sanitized keys under their Ultralytics names (unless both are there)."""
    m = _ULTRALYTICS_SANITIZED.match(key)
    if m is None:
        return key
    full = f"{m.group(1)}({m.group(2)})"
    return key if full in keys else full


def _seconds(ms: Any) -> float | None:
    if ms is None or isinstance(ms, bool):
        return None
    try:
        value = finite_number(float(ms))
    except (TypeError, ValueError, OverflowError):
        return None
    return value / 1000.0 if value is not None else None


class _RunData:
    """What both MLflow layouts give for one run, before it becomes a ParsedRun."""

    def __init__(self, run_id: str, path: str, experiment: str) -> None:
        self.run_id = run_id
        self.path = path
        self.experiment = experiment
        self.name: str | None = None
        self.status = "RUNNING"
        self.start: float | None = None
        self.end: float | None = None
        self.user: str | None = None
        self.params: dict[str, Any] = {}
        self.tags: dict[str, str] = {}
        # key -> step -> (timestamp, order, value); the largest (timestamp, order) wins
        self.points: dict[str, dict[int, tuple[int, int, float]]] = defaultdict(dict)
        self.infinities: list[ImportProblem] = []
        self.left_out: list[ImportProblem] = []  # points whose step cannot be an epoch
        self._order = 0

    def add_point(self, key: str, step: int, timestamp: int, value: float) -> None:
        self._order += 1
        series = self.points[key]
        old = series.get(step)
        if old is None or (timestamp, self._order) >= (old[0], old[1]):
            series[step] = (timestamp, self._order, value)

    def parsed(self) -> ParsedRun:
        name = self.tags.get("mlflow.runName") or self.name or self.run_id
        metrics = {
            _metric_key(k, self.points): {s: v for s, (_, _, v) in steps.items()}
            for k, steps in self.points.items()
        }
        last_point = max((t for steps in self.points.values() for t, _, _ in steps.values()), default=None)
        created = self.start if self.start is not None else (_seconds(last_point) or 0.0)
        ended = self.end
        if ended is None and last_point is not None:
            ended = _seconds(last_point)  # when it was last heard of
        tags = dict(self.tags)
        tags.update({"mlflow.run_id": self.run_id, "mlflow.status": self.status, TAG_PATH: self.path})
        env: dict[str, Any] = {}
        commit = self.tags.get("mlflow.source.git.commit")
        if commit:
            env["git"] = {
                "commit": commit,
                "branch": self.tags.get("mlflow.source.git.branch"),
                "dirty": None,
            }
        if self.user or self.tags.get("mlflow.user"):
            env["user"] = self.tags.get("mlflow.user") or self.user
        run = ParsedRun(
            tool=TOOL,
            key=self.run_id,
            path=self.path,
            project=self.experiment,
            name=name,
            status=STATUS_MAP.get(self.status, "crashed"),
            created_at=created,
            ended_at=max(ended, created) if ended is not None else None,
            metrics=metrics,
            config=dict(self.params),
            tags=tags,
            env=env,
            note=self.tags.get("mlflow.note.content") or None,
            parent_key=self.tags.get("mlflow.parentRunId") or None,
        )
        run.problems.extend(self.left_out)
        infinity_warning(run, self.infinities)
        return run


# --------------------------------------------------------------------------- file store
def _yaml(path: Path) -> dict[str, Any]:
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise SourceError([ImportProblem(str(path), "is not a mapping (not an MLflow meta.yaml)", 1)])
    return data


def _files(folder: Path) -> Iterator[tuple[str, Path]]:
    """``(key, file)`` for every file under ``folder``; nested folders make ``a/b`` keys."""
    if not folder.is_dir():
        return
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for file_name in sorted(filenames):
            path = Path(dirpath) / file_name
            yield path.relative_to(folder).as_posix(), path


_METRIC_LINE = "timestamp value [step]"


def _metric_line(line: str) -> tuple[int, float, int] | str:
    """``(timestamp, value, step)`` of a line of a metric file, or what is wrong with it."""
    parts = line.split()
    if len(parts) < 2:
        return f"expected '{_METRIC_LINE}', got {line.strip()!r}"
    try:
        return int(parts[0]), float(parts[1]), int(parts[2]) if len(parts) > 2 else 0
    except ValueError:
        return f"expected '{_METRIC_LINE}' as numbers, got {line.strip()!r}"


def _read_metric_file(data: _RunData, key: str, path: Path, problems: list[ImportProblem]) -> None:
    """Add the points of the file store's metric file ``path`` to ``data``; bad lines go
    to ``problems``."""
    for lineno, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        parsed = _metric_line(line)
        if isinstance(parsed, str):
            problems.append(ImportProblem(str(path), parsed, lineno))
            continue
        timestamp, value, step = parsed
        why = epoch_problem(step)
        if why is not None:
            left_out = f"metric {key!r} step {step}: {why}; {LEFT_OUT}"
            data.left_out.append(ImportProblem(str(path), left_out, lineno))
            continue
        where = ImportProblem(str(path), f"metric {key!r} step {step}", lineno)
        data.add_point(key, step, timestamp, finite(value, data.infinities, where))


def _read_run_folder(folder: Path, meta: dict[str, Any], experiment: str) -> _RunData:
    run_id = str(meta.get("run_id") or meta.get("run_uuid") or folder.name)
    data = _RunData(run_id, str(folder), experiment)
    data.name = meta.get("run_name") or meta.get("name") or None
    data.status = _status(meta.get("status"))
    data.start, data.end = _seconds(meta.get("start_time")), _seconds(meta.get("end_time"))
    data.user = meta.get("user_id") or None
    for key, path in _files(folder / "params"):
        data.params[key] = _param_value(read_text(path))
    for key, path in _files(folder / "tags"):
        data.tags[key] = read_text(path)
    problems: list[ImportProblem] = []
    for key, path in _files(folder / "metrics"):
        _read_metric_file(data, key, path, problems)
    if problems:
        raise SourceError(capped(problems, str(folder)))
    return data


def _experiment_folders(root: Path) -> list[Path]:
    """Experiment folders: ``root`` itself if it is one, else its children that are."""
    meta = root / "meta.yaml"
    if meta.is_file():
        return [root]
    if not root.is_dir():
        return []
    return [
        child
        for child in sorted(root.iterdir())
        if child.is_dir() and child.name not in _ROOT_RESERVED and (child / "meta.yaml").is_file()
    ]


def read_file_store(
    root: str | os.PathLike[str], report: ImportReport, writer: Writer | None = None
) -> list[ParsedRun]:
    """Parse every live run of the file store at ``root`` (``mlruns/`` or one experiment
    folder in it). Runs already imported (per ``writer``), deleted runs and unreadable
    runs are reported, not returned."""
    root = Path(root).resolve()
    experiments = _experiment_folders(root)
    if not experiments:
        raise InvalidInput(f"{root} is not an MLflow file store: no <experiment>/meta.yaml in it")
    runs: list[ParsedRun] = []
    for folder in experiments:
        runs += _read_experiment(folder, report, writer)
    return runs


def _read_experiment(folder: Path, report: ImportReport, writer: Writer | None) -> list[ParsedRun]:
    """The live runs of one experiment folder (a deleted experiment is reported skipped)."""
    try:
        exp_meta = _yaml(folder / "meta.yaml")
    except SourceError as exc:
        report.failed.extend(exc.problems)
        return []
    if "run_uuid" in exp_meta or "run_id" in exp_meta:
        return []  # root was a run folder's parent by mistake; not an experiment
    exp_name = str(exp_meta.get("name") or f"mlflow-{folder.name}")
    if exp_meta.get("lifecycle_stage") == "deleted":
        report.skipped.append(SkippedRun(str(folder), f"experiment {exp_name!r} is deleted in MLflow"))
        return []
    runs: list[ParsedRun] = []
    for run_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        if run_dir.name in _EXPERIMENT_RESERVED:
            continue
        try:
            run = _read_run_dir(run_dir, exp_name, report, writer)
        except SourceError as exc:
            report.failed.extend(exc.problems)
            continue
        if run is not None:
            runs.append(run)
    return runs


def _read_run_dir(
    run_dir: Path, experiment: str, report: ImportReport, writer: Writer | None
) -> ParsedRun | None:
    """One run folder of an experiment, or ``None`` when it is not a run, was imported
    already or is deleted (the last two reported); raises ``SourceError``."""
    meta_path = run_dir / "meta.yaml"
    if not meta_path.is_file():
        if (run_dir / "metrics").is_dir() or (run_dir / "params").is_dir():
            report.failed.append(ImportProblem(str(run_dir), "run folder without meta.yaml"))
        return None
    meta = _yaml(meta_path)
    if "run_uuid" not in meta and "run_id" not in meta:
        return None  # not a run (an MLflow 3 logged model kept elsewhere, say)
    run_id = str(meta.get("run_id") or meta.get("run_uuid"))
    if writer is not None and writer.already_imported(TOOL, run_id, str(run_dir)):
        return None
    if meta.get("lifecycle_stage") == "deleted":
        report.skipped.append(SkippedRun(str(run_dir), "run is deleted in MLflow"))
        return None
    return _read_run_folder(run_dir, meta, experiment).parsed()


# --------------------------------------------------------------------------- sqlite
_TABLES = ("experiments", "runs", "params", "metrics", "tags")


def _is_sqlite(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(16) == _SQLITE_MAGIC
    except OSError:
        return False


def read_sqlite(
    path: str | os.PathLike[str], report: ImportReport, writer: Writer | None = None
) -> list[ParsedRun]:
    """Parse every live run of an MLflow SQLite database (opened read-only)."""
    path = Path(path).resolve()
    where = str(path)
    try:
        conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise InvalidInput(f"{where}: cannot open the MLflow database: {exc}") from exc
    try:
        try:
            have = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.DatabaseError as exc:
            raise InvalidInput(f"{where}: cannot read the MLflow database: {exc}") from exc
        missing = [t for t in _TABLES if t not in have]
        if missing:
            raise InvalidInput(f"{where} is not an MLflow database: no table(s) {', '.join(missing)}")
        return _read_db(conn, where, report, writer)
    finally:
        conn.close()


def _read_db(
    conn: sqlite3.Connection, where: str, report: ImportReport, writer: Writer | None
) -> list[ParsedRun]:
    experiments = {
        str(eid): (name, stage)
        for eid, name, stage in conn.execute("SELECT experiment_id, name, lifecycle_stage FROM experiments")
    }
    rows = conn.execute(
        "SELECT run_uuid, name, status, start_time, end_time, lifecycle_stage, experiment_id, "
        "user_id FROM runs ORDER BY start_time, run_uuid"
    ).fetchall()
    runs: list[ParsedRun] = []
    for run_uuid, name, status, start, end, stage, exp_id, user in rows:
        at = f"{where} (run {run_uuid})"
        exp_name, exp_stage = experiments.get(str(exp_id), (f"mlflow-{exp_id}", "active"))
        if writer is not None and writer.already_imported(TOOL, run_uuid, at):
            continue
        if exp_stage == "deleted" or stage == "deleted":
            what = f"experiment {exp_name!r}" if exp_stage == "deleted" else "run"
            report.skipped.append(SkippedRun(at, f"{what} is deleted in MLflow"))
            continue
        data = _RunData(run_uuid, at, exp_name)
        data.name, data.status, data.user = name or None, _status(status), user
        data.start, data.end = _seconds(start), _seconds(end)
        problems = _read_db_run(conn, data)
        if problems:
            report.failed.extend(capped(problems, at))
            continue
        runs.append(data.parsed())
    return runs


def _read_db_run(conn: sqlite3.Connection, data: _RunData) -> list[ImportProblem]:
    """Fill ``data`` with the params, tags and metrics of its run; the values that are
    not numbers are returned as problems."""
    run_uuid, at = data.run_id, data.path
    for key, value in conn.execute("SELECT key, value FROM params WHERE run_uuid = ?", (run_uuid,)):
        data.params[key] = _param_value(value if value is not None else "")
    for key, value in conn.execute("SELECT key, value FROM tags WHERE run_uuid = ?", (run_uuid,)):
        if value is not None:
            data.tags[key] = value
    problems: list[ImportProblem] = []
    for key, value, timestamp, step, is_nan in conn.execute(
        "SELECT key, value, timestamp, step, is_nan FROM metrics WHERE run_uuid = ? "
        "ORDER BY key, step, timestamp",
        (run_uuid,),
    ):
        try:
            number = math.nan if is_nan else float(value)
            step_i, ts = int(step or 0), int(timestamp or 0)
        except OverflowError:  # an infinite step or timestamp (SQLite stores REAL infinities)
            where = f"metric {key!r} step {step!r} (timestamp {timestamp!r})"
            data.left_out.append(ImportProblem(at, f"{where}: out of range; {LEFT_OUT}"))
            continue
        except (TypeError, ValueError):
            problems.append(
                ImportProblem(at, f"metric {key!r}: value {value!r} at step {step!r} is not a number")
            )
            continue
        why = epoch_problem(step_i)
        if why is not None:
            data.left_out.append(ImportProblem(at, f"metric {key!r} step {step_i}: {why}; {LEFT_OUT}"))
            continue
        number = finite(number, data.infinities, ImportProblem(at, f"metric {key!r} step {step_i}"))
        data.add_point(key, step_i, ts, number)
    return problems


# --------------------------------------------------------------------------- import
def _parents_first(runs: list[ParsedRun]) -> list[ParsedRun]:
    """Order runs so that a parent in the same import comes before its children."""
    by_key = {r.key: r for r in runs}
    done: set[str] = set()
    out: list[ParsedRun] = []

    def visit(run: ParsedRun, depth: int = 0) -> None:
        if run.key in done:
            return
        done.add(run.key)
        parent = by_key.get(run.parent_key) if run.parent_key else None
        if parent is not None and depth < 100:
            visit(parent, depth + 1)
        out.append(run)

    for run in runs:
        visit(run)
    return out


def import_mlflow(book: Book, path: str | os.PathLike[str]) -> ImportReport:
    """Import the MLflow runs at ``path``: an ``mlruns/`` folder (or a folder holding one,
    or one experiment folder), an MLflow SQLite file, or ``sqlite:///PATH``."""
    report = ImportReport(TOOL)
    writer = Writer(book, report)
    text = os.fspath(path)
    if text.startswith("sqlite:///"):
        text = text[len("sqlite:///") :]
    where = Path(text)
    if not where.exists():
        raise InvalidInput(f"{where}: no such file or folder")
    if where.is_file():
        if not _is_sqlite(where):
            raise InvalidInput(f"{where} is neither an MLflow SQLite database nor an mlruns/ folder")
        runs = read_sqlite(where, report, writer)
    else:
        if not _experiment_folders(where) and (where / "mlruns").is_dir():
            where = where / "mlruns"
        if not _experiment_folders(where) and (where / "mlflow.db").is_file():
            runs = read_sqlite(where / "mlflow.db", report, writer)
        else:
            runs = read_file_store(where, report, writer)
    runs.sort(key=lambda r: (r.created_at, r.key))  # a shared name stays with the first run
    writer.write_all(_parents_first(runs))
    return report
