"""Import Ultralytics run folders (``runs/detect/train3/``): YOLOv5, YOLOv8, YOLO11 and later,
every task.

A run folder is a folder holding ``results.csv``; a path without one is walked for them
(``runs/`` holds ``detect/train``, ``segment/train2`` ...). What is read, and how:

* ``results.csv``: one row per epoch, stored under the epoch the file gives it (counted
  from 0 in older files, from 1 in newer ones). Cells and headers padded with spaces
  (older YOLOv8), CRLF line endings, a trailing comma, a ``time`` column or none, any
  task's columns (``sem_loss``, ``angle_loss``, YOLOv10's ``*_om`` / ``*_oo`` losses, any
  number of ``lr/pg`` columns) are all read as they are. ``nan`` and empty cells are
  stored as NaN; a later row for an epoch already seen wins (a resumed training).
  A row with the wrong number of cells, or a cell that is not a number, ``nan`` or empty,
  fails the whole folder with its path and line: nothing of it is written. A row whose
  epoch is a whole number trialbook cannot store (negative, or above
  ``core.metrics.MAX_EPOCH``) is left out and reported with its path and line; the rest
  of the run is imported.
* YOLOv5 files (``metrics/mAP_0.5:0.95``, ``x/lr0`` ...) are renamed to the YOLOv8 keys
  (``metrics/mAP50-95(B)``, ``lr/pg0`` ...) so runs of both compare on the protocol metric;
  the tag ``import.format`` says ``yolov5`` (else ``ultralytics``).
* Settings: ``args.yaml`` (YOLOv8+) or ``opt.yaml`` (YOLOv5, hyperparameters nested under
  ``hyp``, or read from ``hyp.yaml`` when ``hyp`` names a file), flattened
  (``hyp.lr0``). The planned ``epochs`` are tagged ``planned_epochs``, and
  ``stopped_early`` says whether fewer epochs were recorded.
* Task: ``task`` in ``args.yaml``, else from the columns: ``(M)`` segment, ``(P)`` pose,
  ``angle_loss`` obb, ``accuracy_top1`` classify, otherwise detect. It is tagged ``task``.
* Project: ``project=`` if given, else the task (``detect``, ``segment`` ...), so runs of
  one task are compared with each other. A classify project created by the import
  compares on ``metrics/accuracy_top1`` (an audited protocol change says so).
* Name: the folder's name. Names such as ``train3`` fail the naming rule; the run keeps it
  and is marked legacy-named, unless ``name=`` gives a new one (one folder only; the
  folder's name is kept in ``import.original_name``).
* Dataset: unpinned, unless ``dataset="NAME:TAG"`` names a tagged version; the run is
  then pinned to it with its split digests and tagged ``pinned_by: import`` (the files
  the run trained on cannot be re-checked).
* ``weights/best.pt`` and ``weights/last.pt`` become artifacts (``weights=False`` skips).
* Per-class numbers: ``results.csv`` holds none, so an imported run has no per-class AP
  series (``metrics/AP50-95(B)/<class>``) and no recall at a fixed precision
  (``metrics/R@P0.95(B)``) that a tracked training records; the report says so once
  (``ImportReport.notes``, ``NO_CLASS_NUMBERS``) when it imported a run of a task that has
  them (not classify). Evaluating the run's weights (``trialbook yolo val``) records them.
* Status ``finished``; created at the settings file's modification time (else
  ``results.csv``'s, less its last ``time`` value), ended at the newest of ``results.csv``
  and the weights.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trialbook.core import classkeys
from trialbook.core import config as config_rules
from trialbook.core.metrics import MAX_EPOCH, finite_number
from trialbook.errors import InvalidInput
from trialbook.integrations.importers.common import (
    TAG_ORIGINAL_NAME,
    TAG_PATH,
    ImportProblem,
    ImportReport,
    ParsedRun,
    SourceError,
    Writer,
    capped,
    finite,
    infinity_warning,
    mtime,
    read_text,
    read_yaml,
    text_tags,
)

if TYPE_CHECKING:
    from trialbook.api import Book

__all__ = [
    "NO_CLASS_NUMBERS",
    "TASKS",
    "ResultsTable",
    "detect_task",
    "find_run_folders",
    "import_ultralytics",
    "normalise_yolov5_key",
    "parse_run_folder",
    "read_results_csv",
]

TOOL = "ultralytics"
RESULTS = "results.csv"
TASKS = ("detect", "segment", "pose", "obb", "classify")
WEIGHTS = ("best.pt", "last.pt")
CLASSIFY_METRIC = "metrics/accuracy_top1"
_NAN_TEXT = frozenset({"", "nan", "+nan", "-nan"})
NO_CLASS_NUMBERS = (
    f"results.csv holds no per-class numbers: the imported runs have no per-class AP series "
    f"({classkeys.ap_key('<class>')}, {classkeys.ap_key('<class>', iou='50')}) and no recall at a "
    f"fixed precision (such as {classkeys.recall_key(classkeys.DEFAULT_LEVEL)}); "
    "`trialbook yolo val RUN --split val` records them for a run's weights"
)

# YOLOv5 -> YOLOv8 metric keys
_V5_EXACT = {
    "metrics/precision": "metrics/precision(B)",
    "metrics/recall": "metrics/recall(B)",
    "metrics/mAP_0.5": "metrics/mAP50(B)",
    "metrics/mAP_0.5:0.95": "metrics/mAP50-95(B)",
    "test/loss": "val/loss",  # YOLOv5 classify validating on a split named test
}
_V5_PATTERNS = (
    (re.compile(r"^metrics/mAP_0\.5:0\.95(\([A-Z]\))$"), r"metrics/mAP50-95\1"),
    (re.compile(r"^metrics/mAP_0\.5(\([A-Z]\))$"), r"metrics/mAP50\1"),
    (re.compile(r"^x/lr(\d+)$"), r"lr/pg\1"),
    (re.compile(r"^lr/(\d+)$"), r"lr/pg\1"),
)
_V5_MARKERS = re.compile(r"^(metrics/mAP_0\.5|x/lr\d+$)")


def normalise_yolov5_key(key: str) -> str:
    """A YOLOv5 ``results.csv`` key under its YOLOv8 name (others unchanged)."""
    if key in _V5_EXACT:
        return _V5_EXACT[key]
    for pattern, repl in _V5_PATTERNS:
        if pattern.match(key):
            return pattern.sub(repl, key)
    return key


def detect_task(columns: Iterable[str], args: dict[str, Any] | None = None) -> str:
    """The task: ``args['task']`` when it is one, else guessed from the metric columns."""
    task = (args or {}).get("task")
    if isinstance(task, str) and task in TASKS:
        return task
    cols = list(columns)
    if any(c.endswith("(M)") for c in cols):
        return "segment"
    if any(c.endswith("(P)") for c in cols):
        return "pose"
    if any("angle_loss" in c for c in cols):
        return "obb"
    if any("accuracy_top1" in c for c in cols):
        return "classify"
    return "detect"


# --------------------------------------------------------------------------- results.csv
class ResultsTable:
    """A parsed ``results.csv``: ``columns`` (as in the file, less ``epoch``), ``series``
    (``{column: {epoch: value}}``, NaN kept), ``last_time`` (the last ``time`` value)."""

    def __init__(
        self,
        path: Path,
        columns: list[str],
        series: dict[str, dict[int, float]],
        epochs: list[int],
        infinities: list[ImportProblem],
        duplicates: list[ImportProblem],
        left_out: list[ImportProblem] | None = None,
    ) -> None:
        self.path = path
        self.columns = columns
        self.series = series
        self.epochs = epochs  # in file order, each once
        self.infinities = infinities
        self.duplicates = duplicates
        self.left_out = left_out or []  # rows whose epoch cannot be stored

    @property
    def last_time(self) -> float | None:
        times = self.series.get("time")
        if not times:
            return None
        value = times[max(times)]
        return None if math.isnan(value) else value


def read_results_csv(path: str | os.PathLike[str]) -> ResultsTable:
    """Parse a ``results.csv``; raise ``SourceError`` naming every bad line."""
    path = Path(path)
    lines = read_text(path, encoding="utf-8-sig").splitlines()
    names, trailing_comma = _header(lines, str(path))
    rows = _Rows(str(path), names, trailing_comma)
    for lineno, line in enumerate(lines[1:], start=2):
        if line.strip():
            rows.add(lineno, line)
    return rows.table(path)


def _header(lines: list[str], where: str) -> tuple[list[str], bool]:
    """The column names of the header line and whether it ends with a comma; raises
    ``SourceError`` for a missing or bad header."""
    if not lines or not lines[0].strip():
        raise SourceError([ImportProblem(where, "is empty: no header line", 1)])
    names = [c.strip() for c in lines[0].split(",")]
    trailing_comma = len(names) > 1 and names[-1] == ""
    if trailing_comma:
        names.pop()
    problems = _header_problems(names, where)
    if problems:
        raise SourceError(problems)
    return names, trailing_comma


def _header_problems(names: list[str], where: str) -> list[ImportProblem]:
    problems: list[ImportProblem] = []
    if "epoch" not in names:
        problems.append(ImportProblem(where, "the header has no 'epoch' column", 1))
    if any(not n for n in names):
        problems.append(ImportProblem(where, "the header has an empty column name", 1))
    seen: set[str] = set()
    for n in names:
        if n in seen:
            problems.append(ImportProblem(where, f"the header names column {n!r} twice", 1))
        seen.add(n)
    return problems


class _Rows:
    """The rows of a ``results.csv`` read one by one into series; every problem is kept
    and raised at the end (:meth:`table`)."""

    def __init__(self, where: str, names: list[str], trailing_comma: bool) -> None:
        self.where = where
        self.names = names
        self.trailing_comma = trailing_comma
        self.epoch_at = names.index("epoch")
        self.columns = [n for n in names if n != "epoch"]
        self.series: dict[str, dict[int, float]] = {c: {} for c in self.columns}
        self.epochs: list[int] = []
        self.first_line: dict[int, int] = {}
        self.infinities: list[ImportProblem] = []
        self.duplicates: list[ImportProblem] = []
        self.left_out: list[ImportProblem] = []
        self.problems: list[ImportProblem] = []

    def add(self, lineno: int, line: str) -> None:
        """Read one (non-blank) row."""
        cells = self._cells(lineno, line)
        if cells is None:
            return
        raw_epoch = cells[self.epoch_at].strip()
        epoch = _epoch(raw_epoch)
        if epoch is None:
            self._problem(lineno, f"epoch {raw_epoch!r} is not a whole number")
            return
        if not 0 <= epoch <= MAX_EPOCH:
            self.left_out.append(
                ImportProblem(
                    self.where,
                    f"epoch {raw_epoch} is out of range (epochs go from 0 to {MAX_EPOCH}); the row is "
                    f"left out, the rest of the run is imported",
                    lineno,
                )
            )
            return
        row = self._values(lineno, int(epoch), cells)
        self._keep(lineno, int(epoch), row)

    def table(self, path: Path) -> ResultsTable:
        if self.problems:
            raise SourceError(capped(self.problems, self.where))
        return ResultsTable(
            path, self.columns, self.series, self.epochs, self.infinities, self.duplicates, self.left_out
        )

    def _problem(self, lineno: int, message: str) -> None:
        self.problems.append(ImportProblem(self.where, message, lineno))

    def _cells(self, lineno: int, line: str) -> list[str] | None:
        """The row's cells (a trailing comma dropped when the header has one too)."""
        cells = line.split(",")
        width = len(self.names)
        if self.trailing_comma and len(cells) == width + 1 and not cells[-1].strip():
            cells.pop()
        if len(cells) != width:
            self._problem(lineno, f"{len(cells)} cells, but the header has {width} columns")
            return None
        return cells

    def _values(self, lineno: int, epoch: int, cells: list[str]) -> dict[str, float]:
        """``{column: value}`` of the row's readable cells; ``nan`` and empty are NaN."""
        row: dict[str, float] = {}
        for name, cell in zip(self.names, cells, strict=True):
            if name == "epoch":
                continue
            text = cell.strip()
            if text.lower() in _NAN_TEXT:
                row[name] = math.nan
                continue
            try:
                value = float(text)
            except ValueError:
                self._problem(lineno, f"column {name!r}: {text!r} is not a number")
                continue
            where = ImportProblem(self.where, f"column {name!r} epoch {epoch}", lineno)
            row[name] = finite(value, self.infinities, where)
        return row

    def _keep(self, lineno: int, epoch: int, row: dict[str, float]) -> None:
        """Store the row under its epoch; a later row for an epoch already seen wins."""
        if epoch in self.first_line:
            self.duplicates.append(
                ImportProblem(
                    self.where,
                    f"epoch {epoch} appears again (first on line {self.first_line[epoch]}); "
                    "the later row is kept",
                    lineno,
                )
            )
        else:
            self.first_line[epoch] = lineno
            self.epochs.append(epoch)
        for name, value in row.items():
            self.series[name][epoch] = value


def _epoch(text: str) -> int | float | None:
    """The epoch of a row: a whole number (an int, or an infinite float, which is out of
    range like a too large one), or None for anything else (NaN, a fraction, a word)."""
    try:
        value = float(text)
    except ValueError:
        return None
    if math.isinf(value):
        return value
    if finite_number(value) is None or value != int(value):
        return None
    try:
        return int(text)  # exact, for digits beyond a float's precision
    except ValueError:
        return int(value)


# --------------------------------------------------------------------------- settings
def _settings(folder: Path) -> tuple[Path | None, dict[str, Any]]:
    """``args.yaml`` or ``opt.yaml`` (YOLOv5, ``hyp`` filled from ``hyp.yaml`` if needed)."""
    for file_name in ("args.yaml", "opt.yaml"):
        path = folder / file_name
        if not path.is_file():
            continue
        data = read_yaml(path)
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise SourceError(
                [ImportProblem(str(path), f"holds a {type(data).__name__}, not a mapping of settings", 1)]
            )
        hyp_file = folder / "hyp.yaml"
        if file_name == "opt.yaml" and not isinstance(data.get("hyp"), dict) and hyp_file.is_file():
            hyp = read_yaml(hyp_file)
            if isinstance(hyp, dict):
                data["hyp"] = hyp
        return path, data
    return None, {}


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


# --------------------------------------------------------------------------- folders
def find_run_folders(paths: Sequence[str | os.PathLike[str]]) -> tuple[list[Path], list[ImportProblem]]:
    """Run folders in ``paths``: each path that holds ``results.csv``, else every folder
    under it that does (hidden folders and ``weights/`` are not entered). Sorted, each once."""
    found: dict[Path, None] = {}  # in order, each once
    problems: list[ImportProblem] = []
    for given in paths:
        root = _search_root(given)
        if isinstance(root, ImportProblem):
            problems.append(root)
            continue
        here = _run_folders_under(root)
        if not here:
            problems.append(
                ImportProblem(str(given), f"holds no Ultralytics run folder (no {RESULTS} in it or below it)")
            )
        found.update(dict.fromkeys(sorted(here)))
    return list(found), problems


def _search_root(given: str | os.PathLike[str]) -> Path | ImportProblem:
    """The folder to look in for ``given`` (a ``results.csv`` stands for its folder), or
    the problem with it."""
    root = Path(given).resolve()
    if not root.exists():
        return ImportProblem(str(given), "no such file or folder")
    if not root.is_file():
        return root
    if root.name == RESULTS:
        return root.parent
    return ImportProblem(
        str(given), f"is a file; give a run folder (with {RESULTS}) or a folder holding some"
    )


def _run_folders_under(root: Path) -> list[Path]:
    """``root`` if it is a run folder, else the run folders below it."""
    if (root / RESULTS).is_file():
        return [root]
    here: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "weights")
        if RESULTS in filenames:
            here.append(Path(dirpath))
    return here


def parse_run_folder(
    folder: str | os.PathLike[str],
    *,
    project: str | None = None,
    name: str | None = None,
    pin: dict[str, Any] | None = None,
    weights: bool = True,
) -> ParsedRun:
    """Read one run folder into a ``ParsedRun`` (nothing is written). ``pin`` is the
    dataset fields of a pinned run (``dataset``, ``split_digests``)."""
    folder = Path(folder).resolve()
    table = read_results_csv(folder / RESULTS)
    settings_path, args = _settings(folder)
    yolov5 = (settings_path is not None and settings_path.name == "opt.yaml") or any(
        _V5_MARKERS.match(c) for c in table.columns
    )
    series = _yolov8_keys(table.series) if yolov5 else table.series
    task = detect_task(series, args)
    planned = _int(args.get("epochs"))
    recorded = len(table.epochs)
    tags: dict[str, Any] = {
        TAG_PATH: str(folder),
        "import.format": "yolov5" if yolov5 else "ultralytics",
        "task": task,
        "planned_epochs": planned,
        "stopped_early": None if planned is None else str(recorded < planned).lower(),
    }
    if name is not None:
        tags[TAG_ORIGINAL_NAME] = folder.name
    run = ParsedRun(
        tool=TOOL,
        key=str(folder),
        path=str(folder),
        project=project or task,
        name=name or folder.name,
        status="finished",
        metrics=series,
        config=config_rules.flatten(args),
        name_given=name is not None,
    )
    if pin:
        run.dataset, run.pinned = pin["dataset"], True
        run.split_digests = dict(pin["split_digests"])
        tags["pinned_by"] = "import"
    if task == "classify":
        run.new_project_protocol = {"metric": CLASSIFY_METRIC, "direction": "max"}
    run.tags = text_tags(tags)
    if weights:
        run.artifacts = [(w, folder / "weights" / w) for w in WEIGHTS if (folder / "weights" / w).is_file()]
    run.created_at, run.ended_at = _times(folder, settings_path, table, run.artifacts)
    if recorded == 0:
        run.warnings.append(
            ImportProblem(str(folder / RESULTS), "holds no epoch rows: the run is imported without metrics")
        )
    run.warnings.extend(table.duplicates)
    run.problems.extend(table.left_out)
    infinity_warning(run, table.infinities)
    return run


def _yolov8_keys(series: dict[str, dict[int, float]]) -> dict[str, dict[int, float]]:
    """YOLOv5 series under their YOLOv8 keys (a key whose new name is taken keeps its own)."""
    renamed: dict[str, dict[int, float]] = {}
    for key, values in series.items():
        new = normalise_yolov5_key(key)
        renamed[new if new not in series or new == key else key] = values
    return renamed


def _times(
    folder: Path, settings_path: Path | None, table: ResultsTable, artifacts: list[tuple[str, Path]]
) -> tuple[float, float]:
    """``(created, ended)``: settings are written when training starts, results.csv after
    every epoch (see the module docstring)."""
    results_time = mtime(folder / RESULTS) or 0.0
    ended = max([results_time, *(mtime(p) or 0.0 for _, p in artifacts)])
    started = mtime(settings_path) if settings_path is not None else None
    if started is None:
        started = results_time - (table.last_time or 0.0)
    return min(started, ended), ended


# --------------------------------------------------------------------------- import
def import_ultralytics(
    book: Book,
    paths: Sequence[str | os.PathLike[str]],
    *,
    project: str | None = None,
    dataset: str | None = None,
    name: str | None = None,
    weights: bool = True,
) -> ImportReport:
    """Import every Ultralytics run folder in ``paths`` (see the module docstring).

    Raises ``InvalidInput`` / ``NotFound`` before importing anything for a bad ``dataset``
    reference or a ``name`` given for several folders; every other problem is in the
    report, and the other folders are imported.
    """
    report = ImportReport(TOOL)
    pin = _pin(book, dataset) if dataset else None
    folders, problems = find_run_folders(paths)
    report.failed.extend(problems)
    if name is not None and len(folders) > 1:
        raise InvalidInput(
            f"--name names one run, but {len(folders)} run folders were found "
            f"({', '.join(f.name for f in folders[:5])}"
            f"{', ...' if len(folders) > 5 else ''}); import them one at a time"
        )
    writer = Writer(book, report)
    for folder in folders:
        if writer.already_imported(TOOL, str(folder), str(folder)):
            continue
        try:
            run = parse_run_folder(folder, project=project, name=name, pin=pin, weights=weights)
        except SourceError as exc:
            report.failed.extend(exc.problems)
            continue
        written = writer.write(run) is not None
        if written and run.tags.get("task") != "classify" and NO_CLASS_NUMBERS not in report.notes:
            report.notes.append(NO_CLASS_NUMBERS)
    return report


def _pin(book: Book, ref: str) -> dict[str, Any]:
    """The dataset fields for runs pinned by import to ``ref`` (as a run started on it
    records them, less the check of the working files, which cannot be redone)."""
    from trialbook.api import pinned_digests

    return {"dataset": ref, "split_digests": pinned_digests(book.dataset_version(ref))}
