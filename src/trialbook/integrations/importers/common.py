"""What the importers share: the parsed run, the report, and the one writer.

An importer turns each source (a run folder, an MLflow run, a folder of event files) into
a ``ParsedRun`` without touching the book; a source that cannot be read raises
``SourceError`` with every problem found (path and line). ``Writer.write`` then records
a parsed run through the ``Store`` protocol, so imports work on every kind of book:

1. a source already imported (its ``import.source`` tag is in the book) is skipped;
2. a run is written all or nothing: every point is checked first (an epoch outside
   ``0..core.metrics.MAX_EPOCH``, a value that is not a number: that point is left out and
   reported as a problem with its path and line or step, the rest of the run is
   imported), its artifact files are stored (by content, so a failure later leaves no
   record of them), then the run, its points, artifacts, note and final status are
   recorded in one transaction of the store. A write that fails leaves no run behind, so
   importing the source again starts afresh. (A run left ``running`` by an import of an
   older trialbook, or by a store without transactions, is completed by the next import:
   points are upserted, artifacts already attached are not added twice.);
3. a name taken in the project by another source gets a short suffix derived from the
   source (``train_3f2a1c``), and the original name is kept in ``import.original_name``;
   a name the user chose (``--name``) is never changed: a clash fails instead;
4. a name that does not follow the project's naming rule is kept and the run is marked
   legacy-named (``trialbook lint`` lists it).

Infinite values, which trialbook refuses from live runs, are stored as NaN (flagged, never
a best or final value); the run says how many in its ``import.infinite_as_nan`` tag and the
report carries a warning naming where the first one was.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trialbook import settings
from trialbook.core import metrics as metric_rules
from trialbook.core import naming
from trialbook.core.entities import Artifact, RunRecord
from trialbook.core.metrics import MAX_EPOCH, finite_number
from trialbook.errors import InvalidInput, NotFound, TrialbookError

if TYPE_CHECKING:
    from trialbook.api import Book

TAG_TOOL = "import.tool"
TAG_SOURCE = "import.source"
TAG_PATH = "import.path"
TAG_ORIGINAL_NAME = "import.original_name"
TAG_INFINITE = "import.infinite_as_nan"

MAX_PROBLEMS_PER_SOURCE = 20


class MissingDependency(TrialbookError):
    """An optional package an importer needs is not installed."""


@dataclass(frozen=True)
class ImportProblem:
    """Something that could not be read (or was read with a caveat), and where."""

    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "line": self.line, "message": self.message}


class SourceError(Exception):
    """A source that cannot be imported; ``problems`` says every place that was wrong."""

    def __init__(self, problems: list[ImportProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


def capped(problems: list[ImportProblem], path: str) -> list[ImportProblem]:
    """At most ``MAX_PROBLEMS_PER_SOURCE`` problems, plus one line counting the rest."""
    if len(problems) <= MAX_PROBLEMS_PER_SOURCE:
        return problems
    rest = len(problems) - MAX_PROBLEMS_PER_SOURCE
    return [*problems[:MAX_PROBLEMS_PER_SOURCE], ImportProblem(path, f"... and {rest} more problems")]


@dataclass
class ParsedRun:
    """One run read from a source, ready to be written. Nothing here touches the book."""

    tool: str  # "ultralytics", "mlflow", "tensorboard"
    key: str  # identity of the source for that tool (an absolute path, an MLflow run id)
    path: str  # where it was read from, for messages
    project: str
    name: str
    status: str = "finished"
    created_at: float = 0.0
    ended_at: float | None = None
    metrics: dict[str, dict[int, float]] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    env: dict[str, Any] = field(default_factory=dict)
    artifacts: list[tuple[str, Path]] = field(default_factory=list)  # (name, file)
    note: str | None = None
    parent_key: str | None = None  # the parent's ``key`` (same tool), if it was imported
    name_given: bool = False  # chosen by the user: never suffixed, a clash fails
    dataset: str | None = None
    pinned: bool = False
    split_digests: dict[str, str] = field(default_factory=dict)
    new_project_protocol: dict[str, Any] = field(default_factory=dict)  # if the project is new
    warnings: list[ImportProblem] = field(default_factory=list)
    # points (or rows) left out because trialbook cannot store them: failures of the
    # import (the exit code says so), though the rest of the run is imported
    problems: list[ImportProblem] = field(default_factory=list)

    @property
    def source(self) -> str:
        """The value of the ``import.source`` tag: ``tool:key``."""
        return f"{self.tool}:{self.key}"

    @property
    def epochs(self) -> int:
        return len({e for series in self.metrics.values() for e in series})


@dataclass(frozen=True)
class ImportedRun:
    project: str
    name: str
    run_id: str
    source: str
    path: str
    epochs: int
    status: str
    legacy_name: bool
    pinned: bool
    renamed_from: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "name": self.name,
            "run_id": self.run_id,
            "source": self.source,
            "path": self.path,
            "epochs": self.epochs,
            "status": self.status,
            "legacy_name": self.legacy_name,
            "pinned": self.pinned,
            "renamed_from": self.renamed_from,
        }


@dataclass(frozen=True)
class SkippedRun:
    path: str
    reason: str
    project: str | None = None
    name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "reason": self.reason, "project": self.project, "name": self.name}


@dataclass
class ImportReport:
    """What one import did. ``ok`` is False when anything could not be imported."""

    tool: str
    imported: list[ImportedRun] = field(default_factory=list)
    skipped: list[SkippedRun] = field(default_factory=list)
    failed: list[ImportProblem] = field(default_factory=list)
    warnings: list[ImportProblem] = field(default_factory=list)
    # what the whole import could not bring, said once (not a problem of one source)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "ok": self.ok,
            "imported": [r.to_dict() for r in self.imported],
            "skipped": [s.to_dict() for s in self.skipped],
            "failed": [p.to_dict() for p in self.failed],
            "warnings": [p.to_dict() for p in self.warnings],
            "notes": list(self.notes),
        }


def finite(value: float, counter: list[ImportProblem], where: ImportProblem) -> float:
    """``value`` if it is a finite number (``core.metrics.finite_number``) or NaN (kept as
    NaN); an infinity becomes NaN and ``where`` is added to ``counter``."""
    number = finite_number(value)
    if number is not None:
        return number
    if not math.isnan(value):
        counter.append(where)
    return math.nan


def infinity_warning(run: ParsedRun, found: list[ImportProblem]) -> None:
    """Tag and warn about infinite values stored as NaN (see the module docstring)."""
    if not found:
        return
    run.tags[TAG_INFINITE] = str(len(found))
    first = found[0]
    run.warnings.append(
        ImportProblem(
            first.path,
            f"{len(found)} infinite value(s) stored as NaN "
            f"(trialbook keeps no infinities); the first: "
            f"{first.message}",
            first.line,
        )
    )


def epoch_problem(step: object) -> str | None:
    """Why ``step`` cannot be stored as an epoch (``core.metrics.check_epoch``), or None."""
    if type(step) is int and 0 <= step <= MAX_EPOCH:
        return None
    try:
        metric_rules.check_epoch(step)
    except InvalidInput as exc:
        return str(exc)
    return None


LEFT_OUT = "the point is left out, the rest of the run is imported"


def mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


class Writer:
    """Writes parsed runs into a book, skipping sources it already holds."""

    def __init__(self, book: Book, report: ImportReport) -> None:
        self.book = book
        self.report = report
        self._index: dict[str, RunRecord] | None = None

    # the book's earlier imports ------------------------------------------------------
    @property
    def index(self) -> dict[str, RunRecord]:
        """``import.source`` tag -> run, for every run in the book (read once)."""
        if self._index is None:
            self._index = {}
            for run in self.book.store.list_runs():
                source = run.tags.get(TAG_SOURCE)
                if source:
                    self._index[source] = run
        return self._index

    def already_imported(self, tool: str, key: str, path: str) -> bool:
        """True (and the skip reported) if the book holds a complete import of the source.

        Importers ask before parsing, so a source imported earlier is not even read."""
        earlier = self.index.get(f"{tool}:{key}")
        if earlier is None or earlier.status == "running":
            return False
        self.report.skipped.append(
            SkippedRun(
                path, f"already imported as {earlier.project}/{earlier.name}", earlier.project, earlier.name
            )
        )
        return True

    # writing ---------------------------------------------------------------------------
    def write_all(self, runs: Iterable[ParsedRun]) -> None:
        for run in runs:
            self.write(run)

    def write(self, run: ParsedRun) -> RunRecord | None:
        """Record ``run``; every outcome goes into the report. Returns the run written."""
        if self.already_imported(run.tool, run.key, run.path):
            return None
        earlier = self.index.get(run.source)  # an import that stopped half-way, if any
        try:
            self._check(run)
            files = self._store_files(run)
            with self.book.store.transaction():
                record, renamed_from = self._create(run, earlier)
                record = self._fill(record, run, files, resumed=earlier is not None)
        except SourceError as exc:
            self.report.failed.extend(exc.problems)
            return None
        except (TrialbookError, OSError) as exc:
            self.report.failed.append(ImportProblem(run.path, str(exc)))
            return None
        self.index[run.source] = record
        self.report.warnings.extend(run.warnings)
        self.report.failed.extend(capped(run.problems, run.path))
        self.report.imported.append(
            ImportedRun(
                project=record.project,
                name=record.name,
                run_id=record.id,
                source=run.source,
                path=run.path,
                epochs=run.epochs,
                status=run.status,
                legacy_name=record.legacy_name,
                pinned=record.pinned,
                renamed_from=renamed_from,
            )
        )
        return record

    def _check(self, run: ParsedRun) -> None:
        """What must hold before anything is written (so a failure leaves nothing). Points
        the store cannot hold are left out of ``run`` and listed in ``run.problems``."""
        problems = []
        for key in list(run.metrics):
            try:
                metric_rules.check_key(key)
            except TrialbookError as exc:
                problems.append(ImportProblem(run.path, str(exc)))
                continue
            _drop_bad_points(run, key)
        if run.artifacts and self.book.blobs is None:
            problems.append(
                ImportProblem(
                    run.path,
                    f"{self.book.uri} keeps no artifact files, so "
                    "the weights cannot be stored: set "
                    "TRIALBOOK_ARTIFACTS to a folder, or pass "
                    "--no-weights",
                )
            )
        for _, path in run.artifacts:
            if not path.is_file():
                problems.append(ImportProblem(str(path), "weights file is missing or not a file"))
        if problems:
            raise SourceError(problems)

    def _store_files(self, run: ParsedRun) -> list[tuple[str, str, int, float]]:
        """Store the run's artifact files (once per content): ``(name, digest, size,
        created_at)`` of each. Done before the run is recorded: a stored file that no
        record names is harmless, a record without its file is not."""
        if not run.artifacts:
            return []
        assert self.book.blobs is not None  # checked in _check
        stored = []
        for name, path in run.artifacts:
            digest, size = self.book.blobs.put_file(path)
            stored.append((name, digest, size, mtime(path) or run.created_at))
        return stored

    def _create(self, run: ParsedRun, earlier: RunRecord | None) -> tuple[RunRecord, str | None]:
        store = self.book.store
        try:
            project = store.get_project(run.project)
        except NotFound:
            project = store.ensure_project(run.project)
            if run.new_project_protocol:
                project = store.update_protocol(
                    run.project,
                    run.new_project_protocol,
                    who=settings.who(),
                    reason=f"set by `trialbook import {run.tool}`, which created this project "
                    f"for {run.tags.get('task', run.tool)} runs",
                )
        if earlier is not None:  # an earlier import of this source stopped half-way
            return earlier, None
        pattern = project.protocol.naming_pattern
        name, renamed_from = run.name, None
        if run.name_given:
            naming.check_name(name, pattern)
        if self._taken(run.project, name):
            if run.name_given:
                raise SourceError(
                    [
                        ImportProblem(
                            run.path,
                            f"project {run.project!r} already has a run named {name!r}: pick another --name",
                        )
                    ]
                )
            suffix = hashlib.sha1(run.source.encode()).hexdigest()[:6]
            renamed_from, name = name, f"{name}_{suffix}"
            if self._taken(run.project, name):
                raise SourceError(
                    [
                        ImportProblem(
                            run.path,
                            f"project {run.project!r} already has runs named {renamed_from!r} and {name!r}",
                        )
                    ]
                )
            run.tags[TAG_ORIGINAL_NAME] = renamed_from
            run.warnings.append(
                ImportProblem(
                    run.path,
                    f"project {run.project!r} already has a run named {renamed_from!r}; imported as {name!r}",
                )
            )
        parent = self.index.get(f"{run.tool}:{run.parent_key}") if run.parent_key else None
        tags = {**run.tags, TAG_TOOL: run.tool, TAG_SOURCE: run.source}
        record = store.create_run(
            RunRecord(
                id=uuid.uuid4().hex,
                project=run.project,
                name=name,
                status="running",
                created_at=run.created_at,
                heartbeat_at=run.created_at,
                ended_at=None,
                parent_id=parent.id if parent is not None and parent.project == run.project else None,
                dataset=run.dataset,
                pinned=run.pinned,
                split_digests=dict(run.split_digests),
                config=dict(run.config),
                env=dict(run.env),
                tags=tags,
                legacy_name=not naming.is_valid_name(name, pattern),
            )
        )
        return record, renamed_from

    def _taken(self, project: str, name: str) -> bool:
        try:
            self.book.store.get_run(project, name)
        except NotFound:
            return False
        return True

    def _fill(
        self, record: RunRecord, run: ParsedRun, files: list[tuple[str, str, int, float]], *, resumed: bool
    ) -> RunRecord:
        """Points, artifacts, note and the final status of ``record``; the run as stored."""
        store = self.book.store
        points = {key: series for key, series in run.metrics.items() if series}
        if points:
            store.log_batch(record.id, points)
        have = {a.name for a in store.list_artifacts(record.id)} if resumed and files else set()
        for name, digest, size, created_at in files:
            if name in have:
                continue
            store.add_artifact(
                Artifact(
                    id=uuid.uuid4().hex,
                    run_id=record.id,
                    name=name,
                    digest=digest,
                    size=size,
                    created_at=created_at,
                )
            )
        if run.note:
            notes = store.get_notes([record.id])
            if record.id not in notes or notes[record.id].is_empty:
                store.set_note(record.id, {"text": run.note}, who=settings.who())
        end = run.ended_at if run.ended_at is not None else run.created_at
        store.set_run_status(record.id, run.status, ended_at=run.ended_at, heartbeat_at=end)
        return store.get_run_by_id(record.id)


def _drop_bad_points(run: ParsedRun, key: str) -> None:
    """Leave out of ``run.metrics[key]`` the points the store cannot hold (an epoch out of
    range, a value that is not a number or is infinite), each one listed in
    ``run.problems``. The importers check epochs where they read them, with the line;
    this is the last check, for every importer."""
    series = run.metrics[key]
    if all(type(e) is int and 0 <= e <= MAX_EPOCH for e in series) and all(
        type(v) is float and not math.isinf(v) for v in series.values()
    ):
        return
    kept: dict[int, float] = {}
    for epoch, value in series.items():
        why = epoch_problem(epoch)
        if why is not None:
            run.problems.append(ImportProblem(run.path, f"metric {key!r} step {epoch!r}: {why}; {LEFT_OUT}"))
            continue
        try:
            kept[epoch] = metric_rules.check_value(key, value, epoch=epoch)
        except InvalidInput as exc:
            run.problems.append(ImportProblem(run.path, f"{exc}; {LEFT_OUT}"))
    run.metrics[key] = kept


def text_tags(values: Mapping[str, Any]) -> dict[str, str]:
    """Tags are text: ``None`` values are left out, others become ``str``."""
    return {str(k): str(v) for k, v in values.items() if v is not None}


def read_text(path: Path, *, encoding: str = "utf-8") -> str:
    """A text file's content with its line endings made ``\n`` (as ``open`` reads text), or
    ``SourceError`` naming the file when it cannot be read or is not UTF-8 (with the
    offset of the first bad byte)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SourceError([ImportProblem(str(path), f"cannot be read: {exc.strerror or exc}")]) from exc
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise SourceError([ImportProblem(str(path), f"is not UTF-8 text (byte {exc.start})")]) from exc
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_yaml(path: Path) -> Any:
    """A YAML file's content, or ``SourceError`` naming the file (and line) when it cannot
    be read, is not UTF-8, is not valid YAML or is refused by trialbook's YAML reader
    (``trialbook.datasets.yamlfile``: size, aliases, nesting, duplicate keys)."""
    from trialbook.datasets.yamlfile import YamlError
    from trialbook.datasets.yamlfile import read_yaml as read_yaml_file

    try:
        return read_yaml_file(path)
    except YamlError as exc:
        raise SourceError([ImportProblem(str(path), exc.problem, exc.line)]) from None
    except OSError as exc:
        raise SourceError([ImportProblem(str(path), f"cannot be read: {exc.strerror or exc}")]) from None
