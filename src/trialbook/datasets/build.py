"""Building a manifest from a dataset on disk: stat, compare with the stat cache, hash what
changed, count label rows, assemble.

The work is column-wise per folder (names, sizes, hashes as parallel lists), so an
unchanged dataset costs one stat per file plus a few C-level passes, not Python work per
file.
"""

from __future__ import annotations

import gc
import os
import time
from collections import Counter
from collections.abc import Iterator
from itertools import repeat
from stat import S_ISREG
from typing import Any, TypeVar, cast

from trialbook.datasets.cache import RACY_NS, DirRecord, StatCache
from trialbook.datasets.hashing import Hashed, hash_many
from trialbook.datasets.labels import decode_counts, find_class_out_of_range
from trialbook.datasets.manifest import FileEntry, Manifest, SplitManifest
from trialbook.datasets.progress import Reporter
from trialbook.datasets.source import (
    DatasetSource,
    SplitSource,
    explain_error,
    label_dir_for,
    relative_posix,
    resolve_source,
)
from trialbook.errors import InvalidInput

_MAX_LISTED_ERRORS = 5


def build_manifest(
    source: str | os.PathLike[str] | DatasetSource,
    *,
    cache_path: str | os.PathLike[str] | None = None,
    progress: bool | None = None,
    threads: int | None = None,
    timings: dict[str, float] | None = None,
) -> Manifest:
    """Build the manifest of ``source`` (a data.yaml, a dataset folder, or a resolved
    ``DatasetSource``).

    ``cache_path``: a stat cache file (created if missing) that lets unchanged files skip
    reading; None reads everything. ``progress``: None shows a bar on a terminal stderr
    for work longer than a second, True always, False never. ``threads``: hashing threads
    (default: one per CPU but one, at most 8). Raise ``InvalidInput`` for any bad input,
    naming the file (and the line, for labels); nothing but the cache is written.

    ``timings``: a dict that gets the seconds spent in each phase added to it (for
    benchmarks): ``source`` (reading the data.yaml, listing the images, naming their label
    files), ``cache read`` (opening the cache, reading its records), ``stat`` (checking
    files against the cache), ``read+hash``, ``labels`` (counting label rows; part of the
    hashing loop, not counted in ``read+hash``), ``cache write`` (writing the records,
    closing the cache) and ``manifest`` (assembling the columns, the entries, the counts
    and the digests).
    """
    reporter = Reporter(progress)
    # Hundreds of thousands of small objects: the cyclic GC would only rescan them.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        src = source if isinstance(source, DatasetSource) else resolve_source(source)
        _add_time(timings, "source", start)
        start = time.perf_counter()
        with StatCache(cache_path) as cache:
            _add_time(timings, "cache read", start)
            try:
                return _build_and_close(_Builder(src, cache, reporter, threads, timings), cache)
            except _CacheDamaged:
                cache.discard()
        with StatCache(cache_path) as cache:
            return _build_and_close(_Builder(src, cache, reporter, threads, timings), cache)
    finally:
        if gc_was_enabled:
            gc.enable()
        reporter.close()


def _build_and_close(builder: _Builder, cache: StatCache) -> Manifest:
    """The builder's manifest; the cache is closed then, its closing (SQLite's checkpoint
    of what was written) timed as part of the cache write."""
    manifest = builder.build()
    start = time.perf_counter()
    cache.close()
    _add_time(builder.timings, "cache write", start)
    return manifest


def _add_time(timings: dict[str, float] | None, phase: str, start: float) -> None:
    """Add the time since ``start`` to ``phase`` in ``timings`` (when given)."""
    if timings is not None:
        timings[phase] = timings.get(phase, 0.0) + time.perf_counter() - start


_STAT_DIR_FD = os.stat in os.supports_dir_fd
_new_tuple = tuple.__new__  # builds a FileEntry without NamedTuple's slower __new__
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)


class _Folder:
    """The files found in one folder, as parallel lists sorted by name. ``counts`` is None
    for an image, the encoded class counts ("" when empty) for a label file."""

    __slots__ = ("_index", "counts", "hashes", "names", "sizes")

    def __init__(
        self, names: list[str], sizes: list[int], hashes: list[str], counts: list[str | None]
    ) -> None:
        self.names = names
        self.sizes = sizes
        self.hashes = hashes
        self.counts = counts
        self._index: dict[str, int] | None = None

    def index(self) -> dict[str, int]:
        if self._index is None:
            self._index = dict(zip(self.names, range(len(self.names)), strict=True))
        return self._index


# A folder with misses while it is filled in: name -> (size, hash, counts, mtime_ns, inode)
_Partial = dict[str, tuple[int, str, str | None, int, int]]


class _Builder:
    def __init__(
        self,
        src: DatasetSource,
        cache: StatCache,
        reporter: Reporter,
        threads: int | None,
        timings: dict[str, float] | None = None,
    ) -> None:
        self.src = src
        self.timings = timings
        self.cache = cache
        self.reporter = reporter
        self.threads = threads
        self.errors: list[tuple[str, str]] = []  # (sort key, message)
        self.racy_ns = time.time_ns() - RACY_NS
        # The folders of the todo list in its order: (folder, its names when the whole
        # folder is read, how many todo items it has); and the hashed files of the folders
        # read whole, placed by position: {folder: (names, hashed files)}.
        self.segments: list[tuple[str, list[str] | None, int]] = []
        self.whole: dict[str, tuple[list[str], list[Hashed]]] = {}

    def build(self) -> Manifest:
        # Every wanted file, by folder: {folder: {name: is_label}}, and for every image
        # folder of every split the label file name of each image.
        start = time.perf_counter()
        wanted: dict[str, dict[str, bool]] = {}
        label_names: dict[tuple[str, str], list[str]] = {}
        for split_name, split in self.src.splits.items():
            for folder, names in split.folders.items():
                files = wanted.get(folder)
                if files is None:
                    wanted[folder] = dict.fromkeys(names, False)
                else:
                    files.update(dict.fromkeys(names, False))
                labels = [n.rpartition(".")[0] + ".txt" for n in names]
                label_names[split_name, folder] = labels
                label_folder = label_dir_for(folder)
                label_files = wanted.get(label_folder)
                if label_files is None:
                    wanted[label_folder] = dict.fromkeys(labels, True)
                else:
                    label_files.update(dict.fromkeys(labels, True))

        start = self._lap("source", start)
        records = self.cache.load(wanted)
        start = self._lap("cache read", start)
        info: dict[str, _Folder] = {}
        partial: dict[str, _Partial] = {}
        todo: list[tuple[str, bool, int]] = []
        total = sum(len(files) for files in wanted.values())
        self.reporter.phase(f"checking {total} files", total)
        for folder, files in wanted.items():
            record = records.get(folder)
            before = len(todo)
            whole = None
            if record is None:  # nothing cached: hash all; their stat comes with the hash
                head = folder + os.sep
                todo += [(head + n, is_label, 0) for n, is_label in files.items()]
                partial[folder] = {}
                whole = list(files)
            else:
                self._check_folder(folder, files, record, info, partial, todo)
            if len(todo) > before:
                self.segments.append((folder, whole, len(todo) - before))
            self.reporter.advance(len(files))
        start = self._lap("stat", start)
        self._raise_errors()
        if todo:
            self._hash(todo, partial)
            start = self._lap("read+hash", start)
        self._complete(partial, info)  # caches what was read, even when some files failed
        self._raise_errors()
        manifest = self._assemble(label_names, info)
        self._lap("manifest", start)
        return manifest

    def _lap(self, phase: str, start: float) -> float:
        """Add the time since ``start`` to ``phase`` in the timings; the time now."""
        _add_time(self.timings, phase, start)
        return time.perf_counter()

    # -- stat and compare with the cache ---------------------------------------------------

    def _check_folder(
        self,
        folder: str,
        files: dict[str, bool],
        record: DirRecord,
        info: dict[str, _Folder],
        partial: dict[str, _Partial],
        todo: list[tuple[str, bool, int]],
    ) -> None:
        names = sorted(files)
        results = self._stat_folder(folder, names, files)
        if results is None:
            return
        present, sts = results
        sizes = [st.st_size for st in sts]
        mtimes = [st.st_mtime_ns for st in sts]
        inodes = [st.st_ino for st in sts]
        if (
            present == record.names
            and sizes == record.sizes
            and mtimes == record.mtimes
            and inodes == record.inodes
        ):
            info[folder] = _Folder(present, sizes, record.hashes, record.counts)
            return
        found: _Partial = {}
        for file, size, mtime, ino in zip(present, sizes, mtimes, inodes, strict=True):
            i = record.find(file)
            is_label = files[file]
            if (
                i is not None
                and record.sizes[i] == size
                and record.mtimes[i] == mtime
                and record.inodes[i] == ino
                and (record.counts[i] is not None) == is_label
            ):
                found[file] = (size, record.hashes[i], record.counts[i], mtime, ino)
            else:
                todo.append((folder + os.sep + file, is_label, size))
        partial[folder] = found

    def _stat_folder(
        self,
        folder: str,
        names: list[str],
        files: dict[str, bool],
    ) -> tuple[list[str], list[os.stat_result]] | None:
        """(names that exist, their stats); missing labels are left out, anything else
        wrong is recorded as an error."""
        fd = None
        if _STAT_DIR_FD:
            fd = self._open_folder(folder, names, files)
            if fd is None:
                return None
        try:
            if not any(files.values()):  # images only: all must exist, so try in one go
                sts = _stat_all(folder, names, fd)
                if sts is not None:
                    return names, sts
            return self._stat_each(folder, names, files, fd)
        finally:
            if fd is not None:
                os.close(fd)

    def _open_folder(self, folder: str, names: list[str], files: dict[str, bool]) -> int | None:
        """A descriptor of ``folder`` to stat its files with, or ``None`` (the error recorded)."""
        try:
            return os.open(folder, _DIR_FLAGS)
        except (FileNotFoundError, NotADirectoryError):
            self._missing_images(folder, [n for n in names if not files[n]])
        except OSError as exc:
            self._error(folder, f"cannot read folder {folder}: {explain_error(exc)}")
        return None

    def _stat_each(
        self, folder: str, names: list[str], files: dict[str, bool], fd: int | None
    ) -> tuple[list[str], list[os.stat_result]]:
        """Stat the files one by one: a missing label file is a background image, any
        other missing, unreadable or irregular file an error."""
        present: list[str] = []
        sts: list[os.stat_result] = []
        missing: list[str] = []
        for n in names:
            try:
                st = os.stat(n, dir_fd=fd) if fd is not None else os.stat(folder + os.sep + n)
            except (FileNotFoundError, NotADirectoryError):
                if not files[n]:
                    missing.append(n)
                continue  # a missing label file: a background image
            except OSError as exc:
                path = folder + os.sep + n
                kind = "label file" if files[n] else "image"
                self._error(path, f"cannot read {kind} {path}: {explain_error(exc)}")
                continue
            if not S_ISREG(st.st_mode):
                path = folder + os.sep + n
                kind = "label path" if files[n] else "image"
                self._error(path, f"{kind} {path} is not a regular file")
                continue
            present.append(n)
            sts.append(st)
        self._missing_images(folder, missing)
        return present, sts

    def _missing_images(self, folder: str, names: list[str]) -> None:
        for n in names:
            path = folder + os.sep + n
            self._error(path, f"cannot read image {path}: no such file{self._listed(path)}")

    def _listed(self, image: str) -> str:
        if len(self.errors) >= _MAX_LISTED_ERRORS:
            return ""  # only the first few errors are shown; skip re-reading list files
        for name, split in self.src.splits.items():
            if any(os.path.isfile(e) for e in split.entries) and image in split.images:
                where = self.src.where_listed(name, image)
                if where:
                    return f" (listed at {where})"
        return ""

    # -- hash ------------------------------------------------------------------------------

    def _hash(self, todo: list[tuple[str, bool, int]], partial: dict[str, _Partial]) -> None:
        self.reporter.phase(f"hashing {len(todo)} files", len(todo))
        labels_before = self.timings.get("labels", 0.0) if self.timings is not None else 0.0
        hashed, missing, errors = hash_many(
            todo, threads=self.threads, on_progress=self.reporter.advance, timings=self.timings
        )
        if self.timings is not None:  # label counting is timed on its own: not hashing
            self.timings["read+hash"] = self.timings.get("read+hash", 0.0) - (
                self.timings.get("labels", 0.0) - labels_before
            )
        for path, message in errors:
            if message.endswith(": no such file"):
                message += self._listed(path)
            self._error(path, message)
        if not errors and self._place(hashed, missing, partial):
            return
        self.whole.clear()
        sep = os.sep
        for path, size, mtime, inode, digest, counts in hashed:
            folder, _, file = path.rpartition(sep)
            partial[folder][file] = (size, digest, counts, mtime, inode)

    def _place(self, hashed: list[Hashed], missing: list[str], partial: dict[str, _Partial]) -> bool:
        """Give each folder its hashed files by position (they come in the order of the
        todo list, less the missing label files), without splitting every path; False
        (nothing placed) when they do not line up, to be placed path by path."""
        sep = os.sep
        gone: dict[str, set[str]] = {}
        for path in missing:
            folder, _, file = path.rpartition(sep)
            gone.setdefault(folder, set()).add(file)
        pos = 0
        rest: list[tuple[str, list[Hashed]]] = []
        for folder, names, count in self.segments:
            dropped = gone.get(folder)
            n = count - len(dropped) if dropped else count
            part = hashed[pos : pos + n]
            pos += n
            if names is None:
                rest.append((folder, part))
                continue
            if dropped:
                names = [name for name in names if name not in dropped]
            head = folder + sep
            if len(names) != n or (n and (part[0][0] != head + names[0] or part[-1][0] != head + names[-1])):
                return False
            self.whole[folder] = (names, part)
        if pos != len(hashed):
            return False
        for folder, part in rest:
            found = partial[folder]
            for path, size, mtime, inode, digest, counts in part:
                head, _, file = path.rpartition(sep)
                if head != folder:
                    return False
                found[file] = (size, digest, counts, mtime, inode)
        return True

    def _complete(self, partial: dict[str, _Partial], info: dict[str, _Folder]) -> None:
        """Turn the folders that had misses into columns, and cache them (without the
        files changed too recently to trust their mtime)."""
        racy = self.racy_ns
        records: dict[str, DirRecord] = {}
        columns: list[list[Any]]
        for folder, (names, part) in self.whole.items():  # already in columns' order
            columns = list(map(list, zip(*part, strict=True))) if part else [[] for _ in range(6)]
            _, sizes, mtimes, inodes, hashes, counts = columns
            if names != sorted(names):  # a label file name sorts apart from its image's
                order = sorted(range(len(names)), key=names.__getitem__)
                names, hashes, counts = _take(names, order), _take(hashes, order), _take(counts, order)
                sizes, mtimes, inodes = _take(sizes, order), _take(mtimes, order), _take(inodes, order)
            info[folder] = _Folder(names, sizes, hashes, counts)
            records[folder] = _cacheable(racy, names, sizes, mtimes, inodes, hashes, counts)
        for folder, found in partial.items():
            if folder in self.whole:
                continue
            names = sorted(found)
            if names:
                sizes, hashes, counts, mtimes, inodes = map(
                    list, zip(*map(found.__getitem__, names), strict=True)
                )
            else:
                sizes, hashes, counts, mtimes, inodes = [], [], [], [], []
            info[folder] = _Folder(names, sizes, hashes, counts)
            records[folder] = _cacheable(racy, names, sizes, mtimes, inodes, hashes, counts)
        start = time.perf_counter()
        self.cache.save(records)
        if self.timings is not None:  # the cache write is timed apart from the manifest
            spent = time.perf_counter() - start
            self.timings["cache write"] = self.timings.get("cache write", 0.0) + spent
            self.timings["manifest"] = self.timings.get("manifest", 0.0) - spent

    # -- assemble --------------------------------------------------------------------------

    def _assemble(self, label_names: dict[tuple[str, str], list[str]], info: dict[str, _Folder]) -> Manifest:
        """The manifest, built column-wise: one C-level pass per folder, not per file."""
        splits: dict[str, SplitManifest] = {}
        checked: set[str] = set()  # label counts texts already checked against nc
        for split_name, split in self.src.splits.items():
            manifest = self._split_manifest(split_name, split, label_names, info, checked)
            if manifest is not None:
                splits[split_name] = manifest
        self._raise_errors()
        return Manifest(class_names=self.src.class_names, splits=splits)

    def _split_manifest(
        self,
        split_name: str,
        split: SplitSource,
        label_names: dict[tuple[str, str], list[str]],
        info: dict[str, _Folder],
        checked: set[str],
    ) -> SplitManifest | None:
        """One split's manifest; ``None`` once errors were found (they are raised later)."""
        root = self.src.root
        images: list[FileEntry] = []
        labels: list[FileEntry] = []
        per_text: Counter[str | None] = Counter()  # label counts text -> images
        backgrounds = 0
        for folder, files in split.folders.items():
            images += _entries(_rel_head(folder, root), *_columns(info[folder], files))
            label_folder = label_dir_for(folder)
            lf = info.get(label_folder)
            if lf is None:  # no label folder
                backgrounds += len(files)
                continue
            found = list(map(lf.index().get, label_names[split_name, folder]))
            missing = found.count(None)
            backgrounds += missing
            used = cast("list[int]", [i for i in found if i is not None] if missing else found)
            texts = [lf.counts[i] for i in used]
            per_text.update(texts)
            self._check_classes(texts, label_folder, lf, checked)
            labels += _entries(_rel_head(label_folder, root), *_used_columns(lf, used))
        if self.errors:
            return None
        backgrounds += per_text.pop("", 0)  # empty label files
        class_images, class_instances = _class_totals(per_text, len(self.src.class_names))
        images.sort()
        labels.sort()
        return SplitManifest(
            name=split_name,
            definition=split.definition,
            images=tuple(images),
            labels=tuple(labels),
            backgrounds=backgrounds,
            class_images=tuple(class_images),
            class_instances=tuple(class_instances),
        )

    def _check_classes(
        self, texts: list[str | None], label_folder: str, lf: _Folder, checked: set[str]
    ) -> None:
        """Record an error for each label counts text not checked yet that names a class
        id out of range (the first label file that has it named)."""
        nc = len(self.src.class_names)
        for text in set(texts) - checked:
            checked.add(text or "")
            if text and max(_decode(text)) >= nc:
                path = label_folder + os.sep + lf.names[lf.counts.index(text)]
                self._error(path, self._class_error(path, nc))

    def _class_error(self, path: str, nc: int) -> str:
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            return f"cannot read label file {path}: {explain_error(exc)}"
        return str(find_class_out_of_range(data, path, nc))

    # -- errors ----------------------------------------------------------------------------

    def _error(self, key: str, message: str) -> None:
        self.errors.append((key, message))

    def _raise_errors(self) -> None:
        if not self.errors:
            return
        errors = [m for _, m in sorted(self.errors)]
        message = errors[0]
        if len(errors) > 1:
            more = errors[1:_MAX_LISTED_ERRORS]
            message += f"\n({len(errors) - 1} more problem{'s' if len(errors) > 2 else ''}"
            message += ":\n  " + "\n  ".join(more)
            if len(errors) > _MAX_LISTED_ERRORS:
                message += "\n  ..."
            message += ")"
        raise InvalidInput(message)


class _CacheDamaged(Exception):
    """Cached label counts that cannot be read: the build starts again without the cache."""


def _decode(text: str) -> dict[int, int]:
    """Counts from a label counts text; only cached texts can be malformed."""
    try:
        counts = decode_counts(text)
    except ValueError:
        raise _CacheDamaged(text) from None
    if counts and min(counts) < 0:
        raise _CacheDamaged(text)
    return counts


def _cacheable(
    racy: int,
    names: list[str],
    sizes: list[int],
    mtimes: list[int],
    inodes: list[int],
    hashes: list[str],
    counts: list[str | None],
) -> DirRecord:
    """The cache record of a folder's columns, without the files modified at ``racy`` ns
    or later (too recently to trust their mtime)."""
    if mtimes and max(mtimes) >= racy:
        keep = [i for i, m in enumerate(mtimes) if m < racy]
        names, hashes, counts = _take(names, keep), _take(hashes, keep), _take(counts, keep)
        sizes, mtimes, inodes = _take(sizes, keep), _take(mtimes, keep), _take(inodes, keep)
    return DirRecord(names, sizes, mtimes, inodes, hashes, counts)


_T = TypeVar("_T")


def _take(column: list[_T], indices: list[int]) -> list[_T]:
    return [column[i] for i in indices]


def _stat_all(folder: str, names: list[str], fd: int | None) -> list[os.stat_result] | None:
    """The stats of all ``names`` when every one is a regular file, else ``None``."""
    try:
        if fd is not None:
            sts = [os.stat(n, dir_fd=fd) for n in names]
        else:
            sts = [os.stat(folder + os.sep + n) for n in names]
    except OSError:
        return None
    return sts if all(map(S_ISREG, [st.st_mode for st in sts])) else None


def _columns(f: _Folder, files: list[str]) -> tuple[list[str], list[int], list[str]]:
    """``(names, sizes, hashes)`` of ``files`` (sorted names of ``f``)."""
    if files == f.names:
        return files, f.sizes, f.hashes
    picked = list(map(f.index().__getitem__, files))
    return files, [f.sizes[i] for i in picked], [f.hashes[i] for i in picked]


def _used_columns(lf: _Folder, used: list[int]) -> tuple[list[str], list[int], list[str]]:
    """``(names, sizes, hashes)`` of the label files at indices ``used`` (once each)."""
    distinct = set(used)
    if len(distinct) == len(lf.names):  # every label file of the folder
        return lf.names, lf.sizes, lf.hashes
    unique = sorted(distinct)
    return [lf.names[i] for i in unique], [lf.sizes[i] for i in unique], [lf.hashes[i] for i in unique]


def _entries(head: str, names: list[str], sizes: list[int], hashes: list[str]) -> Iterator[FileEntry]:
    """File entries ``head + name`` built column-wise (one C-level pass)."""
    return map(_new_tuple, repeat(FileEntry), zip(map(head.__add__, names), sizes, hashes, strict=True))


def _class_totals(per_text: Counter[str | None], nc: int) -> tuple[list[int], list[int]]:
    """``(images, instances)`` per class from ``{label counts text: images}``."""
    class_images = [0] * nc
    class_instances = [0] * nc
    for text, count in per_text.items():
        for cls, rows in _decode(text or "").items():
            class_images[cls] += count
            class_instances[cls] += rows * count
    return class_images, class_instances


def _rel_head(folder: str, root: str) -> str:
    """The prefix of the manifest paths of the files in ``folder``."""
    rel = relative_posix(folder, root)
    return "" if rel == "." else rel + "/"


__all__ = ["build_manifest"]
