"""Import TensorBoard scalars from event files (``events.out.tfevents.*``).

Needs the ``tensorboard`` extra (``pip install 'trialbook[tensorboard]'``): the files are
read with TensorBoard's own record reader and its compatibility layers, so scalars written
by TensorFlow 1 (``simple_value``), TensorFlow 2 / ``tensorboard.summary`` (scalar
tensors) and ``torch.utils.tensorboard`` all come in the same way. Without the package the
import stops with an error saying how to install it.

* One run per folder that holds event files (several files in one folder, a restarted
  training, are one run). The run is named after the folder's path under ``PATH`` (``/``
  becoming ``_``), or the folder's name when ``PATH`` is the run folder itself.
* Project: ``project=``, else ``tensorboard``.
* Each scalar tag becomes a metric key, each step an epoch; several values at one step keep
  the last written (by wall time). Other summaries (images, histograms, text) are ignored.
  A value at a step trialbook cannot store as an epoch (negative, or above
  ``core.metrics.MAX_EPOCH``) is left out and reported with its file and step; the rest of
  the run is imported.
* Created and ended at the first and last event's wall time; status ``finished``.
* TensorBoard's reader stops quietly at a damaged record (it takes it for a file still being
  written). This importer also walks each file's record framing (lengths and their
  checksums), so damage is reported: a record that fails a checksum fails the folder, with
  the file and the byte offset; a last record cut short (a writer stopped mid-write) is a
  warning, and the records before it are imported.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, NamedTuple

from trialbook.integrations.importers.common import (
    LEFT_OUT,
    TAG_PATH,
    ImportProblem,
    ImportReport,
    MissingDependency,
    ParsedRun,
    SkippedRun,
    SourceError,
    Writer,
    epoch_problem,
    finite,
    infinity_warning,
)

if TYPE_CHECKING:
    from trialbook.api import Book

__all__ = ["DEFAULT_PROJECT", "EventScalars", "find_event_folders", "import_tensorboard", "read_event_folder"]

TOOL = "tensorboard"
DEFAULT_PROJECT = "tensorboard"
EVENT_MARKER = "tfevents"
INSTALL_HINT = "pip install 'trialbook[tensorboard]'"


def _tensorboard() -> SimpleNamespace:
    """The reader modules of the tensorboard package, or a clear error."""
    try:
        from tensorboard import data_compat, dataclass_compat
        from tensorboard.backend.event_processing import event_file_loader
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.util import tensor_util
    except ImportError as exc:
        raise MissingDependency(
            f"reading TensorBoard event files needs the tensorboard package ({exc}): {INSTALL_HINT}"
        ) from exc

    return SimpleNamespace(
        data_compat=data_compat,
        dataclass_compat=dataclass_compat,
        loader=event_file_loader,
        event_pb2=event_pb2,
        summary_pb2=summary_pb2,
        tensor_util=tensor_util,
    )


def _is_event_file(name: str) -> bool:
    return EVENT_MARKER in name and not name.startswith(".")


def find_event_folders(path: str | os.PathLike[str]) -> list[Path]:
    """Folders at or under ``path`` that hold event files (hidden folders not entered)."""
    root = Path(path).resolve()
    if root.is_file():
        return [root.parent] if _is_event_file(root.name) else []
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        if any(_is_event_file(f) for f in filenames):
            found.append(Path(dirpath))
    return sorted(found)


def _crc32c_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC32C = _crc32c_table()


def _masked_crc32c(data: bytes) -> int:
    """The TFRecord checksum: CRC-32C (Castagnoli), rotated and offset."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC32C[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _framing(path: Path) -> tuple[list[int], int | None, int | None]:
    """Walk a TFRecord file's framing: ``(offsets of the records whose length header is
    sound, offset of a last record cut short or None, offset of a damaged length header or
    None)``. Only the 12-byte headers are read; the records' own checksums are left to
    TensorBoard's reader."""
    offsets: list[int] = []
    size = path.stat().st_size
    with open(path, "rb") as f:
        pos = 0
        while pos < size:
            header = f.read(12)
            if len(header) < 12:
                return offsets, pos, None
            (length,) = struct.unpack("<Q", header[:8])
            (crc,) = struct.unpack("<I", header[8:])
            if crc != _masked_crc32c(header[:8]):
                return offsets, None, pos
            end = pos + 12 + length + 4
            if end > size:
                return offsets, pos, None
            offsets.append(pos)
            pos = end
            f.seek(pos)
    return offsets, None, None


class EventScalars(NamedTuple):
    """The scalars of one folder of event files: ``{tag: {step: (wall_time, value)}}``,
    the warnings, the infinities stored as NaN, and the values left out (a step that
    cannot be an epoch)."""

    scalars: dict[str, dict[int, tuple[float, float]]]
    warnings: list[ImportProblem]
    infinities: list[ImportProblem]
    left_out: list[ImportProblem]


def read_event_folder(folder: str | os.PathLike[str]) -> EventScalars:
    """The scalar summaries in the event files of ``folder`` (not its subfolders).
    Raises ``SourceError`` for a damaged file."""
    reader = _ScalarReader(_tensorboard())
    for path in sorted(p for p in Path(folder).iterdir() if p.is_file() and _is_event_file(p.name)):
        reader.read_file(path)
    if reader.problems:
        raise SourceError(reader.problems)
    return EventScalars(reader.scalars, reader.warnings, reader.infinities, reader.left_out)


def _framing_problem(
    path: Path, offsets: list[int], read: int, cut_at: int | None, damaged_at: int | None
) -> tuple[ImportProblem | None, ImportProblem | None]:
    """``(problem, warning)`` of a file whose framing is as :func:`_framing` found it and
    of which TensorBoard's reader read ``read`` records."""
    if read < len(offsets) or damaged_at is not None:
        bad = min(read, len(offsets))
        at = offsets[bad] if bad < len(offsets) else damaged_at
        return (
            ImportProblem(
                str(path),
                f"record {bad + 1} (byte {at}) is damaged (checksum mismatch); TensorBoard reads "
                f"only the {read} record(s) before it",
            ),
            None,
        )
    if cut_at is not None:
        return None, ImportProblem(
            str(path),
            f"the last record (byte {cut_at}) is cut short, as when a writer stops mid-write; "
            f"the {read} complete record(s) are imported",
        )
    return None, None


class _ScalarReader:
    """The scalars of the event files of one folder, read file by file (the summary
    metadata carries over from one file to the next, as in TensorBoard)."""

    def __init__(self, tb: SimpleNamespace) -> None:
        self.tb = tb
        self.scalar_class = tb.summary_pb2.DATA_CLASS_SCALAR
        self.initial_metadata: dict[str, Any] = {}
        self.scalar_tags: set[str] = set()
        self.scalars: dict[str, dict[int, tuple[float, float]]] = {}
        self.warnings: list[ImportProblem] = []
        self.infinities: list[ImportProblem] = []
        self.left_out: list[ImportProblem] = []
        self.problems: list[ImportProblem] = []

    def read_file(self, path: Path) -> None:
        try:
            offsets, cut_at, damaged_at = _framing(path)
            records = list(self.tb.loader.RawEventFileLoader(str(path)).Load())
        except OSError as exc:
            self.problems.append(ImportProblem(str(path), f"cannot be read: {exc.strerror or exc}"))
            return
        problem, warning = _framing_problem(path, offsets, len(records), cut_at, damaged_at)
        if problem is not None:
            self.problems.append(problem)
            return
        if warning is not None:
            self.warnings.append(warning)
        for index, record in enumerate(records):
            try:
                event = self.tb.event_pb2.Event.FromString(record)
            except Exception as exc:  # protobuf's DecodeError
                self.problems.append(
                    ImportProblem(
                        str(path),
                        f"record {index + 1} (byte {offsets[index]}) is not a TensorBoard event: {exc}",
                    )
                )
                return
            self._add_event(path, event)

    def _add_event(self, path: Path, event: Any) -> None:
        event = self.tb.data_compat.migrate_event(event)
        for migrated in self.tb.dataclass_compat.migrate_event(event, self.initial_metadata):
            if migrated.HasField("summary"):
                for value in migrated.summary.value:
                    self._add_value(path, migrated, value)

    def _add_value(self, path: Path, event: Any, value: Any) -> None:
        """One summary value: kept when its tag is a scalar's (the last by wall time)."""
        if value.metadata.data_class == self.scalar_class:
            self.scalar_tags.add(value.tag)
        if value.tag not in self.scalar_tags or not value.HasField("tensor"):
            return
        try:
            number = float(self.tb.tensor_util.make_ndarray(value.tensor).item())
        except (TypeError, ValueError) as exc:
            self.problems.append(
                ImportProblem(str(path), f"scalar {value.tag!r} at step {event.step}: {exc}")
            )
            return
        why = epoch_problem(event.step)
        if why is not None:
            self.left_out.append(
                ImportProblem(str(path), f"scalar {value.tag!r} step {event.step}: {why}; {LEFT_OUT}")
            )
            return
        where = ImportProblem(str(path), f"scalar {value.tag!r} step {event.step}")
        number = finite(number, self.infinities, where)
        series = self.scalars.setdefault(value.tag, {})
        old = series.get(event.step)
        if old is None or event.wall_time >= old[0]:
            series[event.step] = (event.wall_time, number)


def _run_name(folder: Path, root: Path) -> str:
    if folder == root:
        return folder.name or "run"
    return "_".join(folder.relative_to(root).parts)


def import_tensorboard(
    book: Book, path: str | os.PathLike[str], *, project: str | None = None
) -> ImportReport:
    """Import every folder of event files at or under ``path`` (see the module docstring).

    Raises ``MissingDependency`` when tensorboard is not installed (before reading
    anything) and ``InvalidInput`` when ``path`` holds no event file."""
    from trialbook.errors import InvalidInput

    _tensorboard()
    given = Path(path)
    if not given.exists():
        raise InvalidInput(f"{given}: no such file or folder")
    root = given.resolve()
    folders = find_event_folders(root)
    if not folders:
        raise InvalidInput(f"{given} holds no TensorBoard event files (events.out.tfevents.*)")
    if root.is_file():
        root = root.parent
    report = ImportReport(TOOL)
    writer = Writer(book, report)
    for folder in folders:
        if writer.already_imported(TOOL, str(folder), str(folder)):
            continue
        try:
            scalars, warnings, infinities, left_out = read_event_folder(folder)
        except SourceError as exc:
            report.failed.extend(exc.problems)
            continue
        if not scalars:
            report.warnings.extend(warnings)
            report.failed.extend(left_out)
            report.skipped.append(SkippedRun(str(folder), "no scalar summaries in its event files"))
            continue
        times = [t for series in scalars.values() for t, _ in series.values()]
        run = ParsedRun(
            tool=TOOL,
            key=str(folder),
            path=str(folder),
            project=project or DEFAULT_PROJECT,
            name=_run_name(folder, root),
            status="finished",
            created_at=min(times),
            ended_at=max(times),
            metrics={tag: {step: v for step, (_, v) in series.items()} for tag, series in scalars.items()},
            tags={TAG_PATH: str(folder)},
            warnings=list(warnings),
            problems=list(left_out),
        )
        infinity_warning(run, infinities)
        writer.write(run)
    return report
