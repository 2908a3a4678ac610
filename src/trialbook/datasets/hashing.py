"""Content hashing of dataset files: blake3, streamed, on a thread pool.

blake3 and file reads release the GIL, so threads scale until the disk or the CPU does.
Files go to workers in batches (by count and bytes) so per-task overhead stays small on
datasets of many small files; files of ``BIG_FILE`` bytes or more are hashed with blake3's
own threads as well. Label files are parsed on the worker from the bytes just hashed, a
batch at a time (``label_counts_many``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from stat import S_ISREG
from typing import NamedTuple, cast

from blake3 import blake3

from trialbook.datasets.labels import label_counts, label_counts_many
from trialbook.datasets.source import explain_error
from trialbook.errors import InvalidInput

CHUNK = 1 << 20  # read size for streamed files
BIG_FILE = 64 << 20  # from this size on, blake3 may use several threads for one file
BIG_CHUNK = 16 << 20
BATCH_FILES = 1024
BATCH_BYTES = 32 << 20
# O_NONBLOCK: a FIFO named like an image must not hang the build (no effect on files).
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0)


def default_threads() -> int:
    """Hashing threads: one per CPU but one (left to the caller, often a training process
    starting up), at least 1, at most 8. On two CPUs that means no pool at all: there a
    second thread mostly contends with the first (measured in bench/fingerprint.py). Pass
    more threads for slow or remote storage, where reads wait rather than compute."""
    return max(1, min(8, (os.cpu_count() or 1) - 1))


class Hashed(NamedTuple):
    """One hashed file. ``counts`` is the encoded per-class row counts for a label file."""

    path: str
    size: int
    mtime_ns: int
    inode: int
    hash: str
    counts: str | None


class FileChanged(Exception):
    """The file's size changed while it was read."""


class MissingFile(Exception):
    """The file does not exist (or a folder on its path is not a folder)."""


def hash_dataset_file(path: str, *, label: bool = False) -> Hashed:
    """Hash ``path`` (and count label rows when ``label``). The stat is taken from the open
    file, so the hash belongs to the size, mtime and inode returned with it."""
    for attempt in range(3):
        try:
            return _hash_once(path, label)
        except FileChanged:
            if attempt == 2:
                raise InvalidInput(f"{path} kept changing while it was read") from None
        except (FileNotFoundError, NotADirectoryError):
            raise MissingFile(path) from None
        except OSError as exc:
            raise InvalidInput(f"cannot read {path}: {explain_error(exc)}") from None
    raise AssertionError("unreachable")


def _hash_once(path: str, label: bool) -> Hashed:
    fd = os.open(path, _OPEN_FLAGS)
    try:
        st = os.fstat(fd)
        if not S_ISREG(st.st_mode):
            raise InvalidInput(f"{path} is not a regular file")
        size = st.st_size
        if size <= CHUNK or label:
            data = _read_exact(fd, size)
            digest = blake3(data).hexdigest()
            counts = label_counts(data, path) if label else None
        else:
            big = size >= BIG_FILE
            hasher = blake3(max_threads=blake3.AUTO) if big else blake3()
            step = BIG_CHUNK if big else CHUNK
            done = 0
            while done < size:
                block = os.read(fd, min(step, size - done))
                if not block:
                    raise FileChanged(path)
                hasher.update(block)
                done += len(block)
            digest = hasher.hexdigest()
            counts = None
    finally:
        os.close(fd)
    return Hashed(path, size, st.st_mtime_ns, st.st_ino, digest, counts)


def _read_exact(fd: int, size: int) -> bytes:
    data = os.read(fd, size)
    if len(data) == size:
        return data
    parts = [data]
    done = len(data)
    while done < size:
        block = os.read(fd, size - done)
        if not block:
            raise FileChanged()
        parts.append(block)
        done += len(block)
    return b"".join(parts)


# (hashed files, label files that do not exist, (path, message) errors)
_BatchResult = tuple[list[Hashed], list[str], list[tuple[str, str]]]
# A small label file read in one call, its rows counted with the others of its batch:
# (path, size, mtime_ns, inode, hash, content)
_ReadLabel = tuple[str, int, int, int, str, bytes]
_new_tuple = tuple.__new__  # builds a Hashed without NamedTuple's slower __new__


def _hash_batch(
    batch: Sequence[tuple[str, bool, int]], timings: dict[str, float] | None = None
) -> _BatchResult:
    """Hash a batch of ``(path, is_label, size hint)``: small files inline, the rest (and
    every error) through :func:`hash_dataset_file`; label rows counted together at the end
    (their time added to ``timings["labels"]`` when given). Results keep the batch's order."""
    hashed: list[Hashed | None] = []
    missing: list[str] = []
    errors: list[tuple[str, str]] = []
    labels: list[_ReadLabel] = []
    slots: list[int] = []  # where in ``hashed`` each label file goes, once its rows are counted
    # The common case (a small regular file, read in one call) inline, with locals: this
    # loop runs once per file of a cold build.
    open_, fstat, read, close, new, add = os.open, os.fstat, os.read, os.close, _new_tuple, hashed.append
    add_label = labels.append
    for path, label, _ in batch:
        try:
            fd = open_(path, _OPEN_FLAGS)
        except (FileNotFoundError, NotADirectoryError):
            _missing(path, label, missing, errors)
            continue
        except OSError:
            fd = -1
        data = None
        if fd >= 0:
            try:
                st = fstat(fd)
                if st.st_size <= CHUNK and S_ISREG(st.st_mode):
                    data = read(fd, st.st_size)
            except OSError:
                pass
            finally:
                close(fd)
        if data is None or len(data) != st.st_size:
            _hash_apart(path, label, hashed, missing, errors)
        elif label:
            slots.append(len(hashed))
            add(None)  # filled in once the batch's label rows are counted
            add_label((path, st.st_size, st.st_mtime_ns, st.st_ino, blake3(data).hexdigest(), data))
        else:
            add(new(Hashed, (path, st.st_size, st.st_mtime_ns, st.st_ino, blake3(data).hexdigest(), None)))
    if labels:
        _fill_labels(hashed, slots, labels, errors, timings)
    done = [h for h in hashed if h is not None] if errors else cast("list[Hashed]", hashed)
    return done, missing, errors


def _fill_labels(
    hashed: list[Hashed | None],
    slots: list[int],
    labels: list[_ReadLabel],
    errors: list[tuple[str, str]],
    timings: dict[str, float] | None,
) -> None:
    """Count the rows of the batch's label files and put their entries in their ``slots``
    (None for a label file with bad rows, its error recorded)."""
    start = time.perf_counter()
    for slot, entry in zip(slots, _count_labels(labels, errors), strict=True):
        hashed[slot] = entry
    if timings is not None:
        timings["labels"] = timings.get("labels", 0.0) + time.perf_counter() - start


def _missing(path: str, label: bool, missing: list[str], errors: list[tuple[str, str]]) -> None:
    """Note a file that does not exist: a label file is a background image's, an image an error."""
    if label:
        missing.append(path)
    else:
        errors.append((path, f"cannot read image {path}: no such file"))


def _hash_apart(
    path: str, label: bool, hashed: list[Hashed | None], missing: list[str], errors: list[tuple[str, str]]
) -> None:
    """Hash a file that is not read in one call (large, not regular, an error to word)."""
    try:
        hashed.append(hash_dataset_file(path, label=label))
    except MissingFile:
        _missing(path, label, missing, errors)
    except InvalidInput as exc:
        errors.append((path, str(exc)))


def _count_labels(labels: list[_ReadLabel], errors: list[tuple[str, str]]) -> list[Hashed | None]:
    """The label files read inline, with their rows counted: all together, or file by file
    when that fails, to word the error (added to ``errors``; the file's entry is None)."""
    together = label_counts_many([r[5] for r in labels])
    texts: list[str | None] = list(together) if together is not None else _count_one_by_one(labels, errors)
    return [
        None if text is None else _new_tuple(Hashed, (path, size, mtime, inode, digest, text))
        for (path, size, mtime, inode, digest, _), text in zip(labels, texts, strict=True)
    ]


def _count_one_by_one(labels: list[_ReadLabel], errors: list[tuple[str, str]]) -> list[str | None]:
    texts: list[str | None] = []
    for path, *_, data in labels:
        try:
            texts.append(label_counts(data, path))
        except InvalidInput as exc:
            errors.append((path, str(exc)))
            texts.append(None)
    return texts


def batches_of(files: Sequence[tuple[str, bool, int]]) -> list[Sequence[tuple[str, bool, int]]]:
    """``files`` cut into batches of at most ``BATCH_FILES`` files, a batch ending once its
    size hints reach ``BATCH_BYTES``."""
    if not any([item[2] for item in files]):  # no size hints (a first build): by count only
        return [files[i : i + BATCH_FILES] for i in range(0, len(files), BATCH_FILES)]
    batches: list[Sequence[tuple[str, bool, int]]] = []
    start = batch_bytes = 0
    for i, item in enumerate(files, 1):
        batch_bytes += item[2]
        if i - start >= BATCH_FILES or batch_bytes >= BATCH_BYTES:
            batches.append(files[start:i])
            start, batch_bytes = i, 0
    if start < len(files):
        batches.append(files[start:])
    return batches


def hash_many(
    files: Sequence[tuple[str, bool, int]],
    *,
    threads: int | None = None,
    on_progress: Callable[[int], None] | None = None,
    timings: dict[str, float] | None = None,
) -> _BatchResult:
    """Hash ``(path, is_label, size hint)`` items. Return the hashed files, the label files
    that do not exist, and ``(path, message)`` errors; every file is attempted, so all
    problems can be reported at once. The hashed files come in the order of ``files``
    (the missing and failed ones left out), on a pool too. ``timings``:
    a dict that gets the seconds spent counting label rows added under ``"labels"`` (summed
    over threads)."""
    threads = threads or default_threads()
    batches = batches_of(files)
    hashed: list[Hashed] = []
    missing: list[str] = []
    errors: list[tuple[str, str]] = []

    def collect(result: _BatchResult, count: int) -> None:
        hashed.extend(result[0])
        missing.extend(result[1])
        errors.extend(result[2])
        if on_progress is not None and count:
            on_progress(count)

    if threads <= 1 or len(batches) <= 1:
        for batch in batches:
            collect(_hash_batch(batch, timings), len(batch))
    else:
        _hash_on_pool(batches, threads, collect, timings, on_progress)
    return hashed, missing, errors


def _hash_on_pool(
    batches: list[Sequence[tuple[str, bool, int]]],
    threads: int,
    collect: Callable[[_BatchResult, int], None],
    timings: dict[str, float] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> None:
    """Hash ``batches`` on ``threads`` threads, reporting progress as each batch is done
    and giving the results to ``collect`` in the order of the batches; on an error (or an
    interrupt) the batches not started are cancelled."""
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="trialbook-hash") as pool:
        futures = [pool.submit(_hash_batch, b, timings) for b in batches]
        sizes = {future: len(b) for future, b in zip(futures, batches, strict=True)}
        try:
            for future in as_completed(futures):
                future.result()  # raises the batch's exception, if any
                if on_progress is not None:
                    on_progress(sizes[future])
            for future in futures:
                collect(future.result(), 0)
        except BaseException:
            for future in futures:
                future.cancel()
            raise
