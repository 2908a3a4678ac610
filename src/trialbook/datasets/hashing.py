"""Content hashing of dataset files: blake3, streamed, on a thread pool.

blake3 and file reads release the GIL, so threads scale until the disk or the CPU does.
Files go to workers in batches (by count and bytes) so per-task overhead stays small on
datasets of many small files; files of ``BIG_FILE`` bytes or more are hashed with blake3's
own threads as well. Label files are parsed on the worker from the bytes just hashed, a
batch at a time (``label_counts_many``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from stat import S_ISREG
from typing import NamedTuple

from blake3 import blake3

from trialbook.datasets.labels import label_counts, label_counts_many
from trialbook.datasets.source import explain_error
from trialbook.errors import InvalidInput

CHUNK = 1 << 20  # read size for streamed files
BIG_FILE = 64 << 20  # from this size on, blake3 may use several threads for one file
BIG_CHUNK = 16 << 20
BATCH_FILES = 256
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


def _read_small(path: str) -> tuple[os.stat_result, bytes] | None:
    """The stat and the content of a small regular file read in one call: the common case,
    kept cheap. ``None`` when the file needs :func:`hash_dataset_file` (large, not regular,
    a short read, an error other than a missing file, whose wording that function gives);
    raises ``FileNotFoundError`` / ``NotADirectoryError`` for a missing file."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except (FileNotFoundError, NotADirectoryError):
        raise
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if st.st_size > CHUNK or not S_ISREG(st.st_mode):
            return None
        data = os.read(fd, st.st_size)
    except OSError:
        return None
    finally:
        os.close(fd)
    return (st, data) if len(data) == st.st_size else None


def _hash_batch(batch: Sequence[tuple[str, bool, int]]) -> _BatchResult:
    """Hash a batch of ``(path, is_label, size hint)``: small files inline, the rest (and
    every error) through :func:`hash_dataset_file`; label rows counted together at the end."""
    hashed: list[Hashed] = []
    missing: list[str] = []
    errors: list[tuple[str, str]] = []
    labels: list[_ReadLabel] = []
    for path, label, _ in batch:
        try:
            small = _read_small(path)
            if small is None:
                hashed.append(hash_dataset_file(path, label=label))
                continue
        except (FileNotFoundError, NotADirectoryError, MissingFile):
            if label:
                missing.append(path)  # no label file: a background image
            else:
                errors.append((path, f"cannot read image {path}: no such file"))
            continue
        except InvalidInput as exc:
            errors.append((path, str(exc)))
            continue
        st, data = small
        digest = blake3(data).hexdigest()
        if label:
            labels.append((path, st.st_size, st.st_mtime_ns, st.st_ino, digest, data))
        else:
            hashed.append(_new_tuple(Hashed, (path, st.st_size, st.st_mtime_ns, st.st_ino, digest, None)))
    if labels:
        hashed += _count_labels(labels, errors)
    return hashed, missing, errors


def _count_labels(labels: list[_ReadLabel], errors: list[tuple[str, str]]) -> list[Hashed]:
    """The label files read inline, with their rows counted: all together, or file by file
    when that fails, to word the error (added to ``errors``)."""
    together = label_counts_many([r[5] for r in labels])
    texts: list[str | None] = list(together) if together is not None else _count_one_by_one(labels, errors)
    return [
        _new_tuple(Hashed, (path, size, mtime, inode, digest, text))
        for (path, size, mtime, inode, digest, _), text in zip(labels, texts, strict=True)
        if text is not None
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
) -> _BatchResult:
    """Hash ``(path, is_label, size hint)`` items. Return the hashed files, the label files
    that do not exist, and ``(path, message)`` errors; every file is attempted, so all
    problems can be reported at once. Results come in no particular order."""
    threads = threads or default_threads()
    batches = batches_of(files)
    hashed: list[Hashed] = []
    missing: list[str] = []
    errors: list[tuple[str, str]] = []

    def collect(result: _BatchResult, count: int) -> None:
        hashed.extend(result[0])
        missing.extend(result[1])
        errors.extend(result[2])
        if on_progress is not None:
            on_progress(count)

    if threads <= 1 or len(batches) <= 1:
        for batch in batches:
            collect(_hash_batch(batch), len(batch))
    else:
        _hash_on_pool(batches, threads, collect)
    return hashed, missing, errors


def _hash_on_pool(
    batches: list[Sequence[tuple[str, bool, int]]],
    threads: int,
    collect: Callable[[_BatchResult, int], None],
) -> None:
    """Hash ``batches`` on ``threads`` threads, each result to ``collect`` as it comes; on
    an error (or an interrupt) the batches not started are cancelled."""
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="trialbook-hash") as pool:
        pending = {pool.submit(_hash_batch, b): len(b) for b in batches}
        try:
            for future in as_completed(pending):
                collect(future.result(), pending[future])
        except BaseException:
            for future in pending:
                future.cancel()
            raise
