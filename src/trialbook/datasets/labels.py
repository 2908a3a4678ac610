"""YOLO label files: check each row and count instances per class.

Every YOLO row (detect, segment, pose, OBB) is whitespace-separated numbers starting with
the class id, followed by at least four coordinates. A file's counts travel (through the
stat cache too) as a short text of space-separated items, each a class id (one row) or
``<class id>:<rows>``; ``""`` for an empty file. An id may appear in several items;
``decode_counts`` adds them up.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from trialbook.errors import InvalidInput

MIN_COLUMNS = 5  # class id + 4 coordinates: the shortest valid row of any YOLO task

_NUMBER = rb"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_NUMBER_RE = re.compile(_NUMBER)
_ROW_RE = re.compile(rb"[ \t]*" + _NUMBER + rb"(?:[ \t]+" + _NUMBER + rb"){%d,}[ \t]*" % (MIN_COLUMNS - 1))
_BOM = b"\xef\xbb\xbf"

# The fast path checks a whole file in a few C-speed passes and leaves anything unusual to
# the line-by-line check, which words the error. Numbers are checked by shape: with every
# digit turned into "0", a file has only a handful of distinct fields ("0.000000",
# "-0.00"...), each checked once by the number pattern and remembered.
_ZERO_DIGITS = bytes.maketrans(b"0123456789", b"0000000000")
_GOOD_SHAPES: set[bytes] = set()
_MAX_SHAPES = 10_000
_LIST_ROWS = 8  # up to this many rows, counts are kept as the list of class ids
# The shape of a good row (digits turned into "0"): a class id, then at least four more
# fields; "~" is the file separator of label_counts_many.
_ROW_SHAPE_RE = re.compile(rb"[ \t]*(?:0+|~)[ \t]+\S+[ \t]+\S+[ \t]+\S+[ \t]+\S")
_GOOD_ROWS: set[bytes] = set()
# The class id of a row (of a row already known to be good), after its line end.
_HEAD_RE = re.compile(rb"\n[ \t]*(\d+|~)")
_SEPARATOR = b"\n~ 0 0 0 0\n"


def label_counts(data: bytes, path: str) -> str:
    """The encoded per-class row counts of the label file ``path`` whose content is
    ``data``.

    Raise ``InvalidInput`` naming ``path:line`` and the text for a row that is not numbers,
    has too few columns, or whose class id is not a whole number >= 0."""
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    if not data:
        return ""
    heads = _fast_row_heads(data)
    if heads is None:
        counts = _count_lines(data, path)
        return " ".join(f"{cls}:{n}" for cls, n in sorted(counts.items()))
    heads.sort()
    return _encode(heads)


def _encode(heads: list[bytes]) -> str:
    """Counts text of the sorted class-id fields of a file's rows."""
    if len(heads) <= _LIST_ROWS:  # a few rows: the class ids themselves
        return b" ".join(heads).decode("ascii")
    tally: dict[bytes, int] = {}
    for token in heads:
        tally[token] = tally.get(token, 0) + 1
    return " ".join(f"{int(token)}:{n}" for token, n in tally.items())


def label_counts_many(datas: list[bytes]) -> list[str] | None:
    """``label_counts`` of many files at once, in a few passes over their concatenation
    (much cheaper than one call per small file); None when any file needs the careful
    one-by-one check."""
    # one final line end each; the separator brings its own
    trimmed = [_without_final_line_end(data) for data in datas]
    kept = [data for data in trimmed if data]
    if not kept:
        return [""] * len(datas)
    blob = _SEPARATOR.join(kept)
    if _BOM in blob:
        return None
    heads = _fast_row_heads(blob, separators=len(kept) - 1)
    if heads is None:
        return None
    parts = b" ".join(heads).split(b" ~ ")
    if len(parts) != len(kept):
        return None
    # Files often share their rows' class ids: encode each distinct sequence once.
    encoded = {part: _encode(sorted(part.split())) for part in set(parts)}
    texts = iter(map(encoded.__getitem__, parts))
    return [next(texts) if data else "" for data in trimmed] if len(kept) < len(trimmed) else list(texts)


def _without_final_line_end(data: bytes) -> bytes:
    if data.endswith(b"\n"):
        return data[:-2] if data.endswith(b"\r\n") else data[:-1]
    return data


def count_rows(data: bytes, path: str) -> dict[int, int]:
    """Rows per class id in the label file ``path`` (see ``label_counts``)."""
    return decode_counts(label_counts(data, path))


def decode_counts(text: str) -> dict[int, int]:
    """``{class id: rows}`` from ``label_counts`` text."""
    out: dict[int, int] = {}
    for item in text.split():
        token, _, n = item.partition(":")
        cls = int(token)
        out[cls] = out.get(cls, 0) + (int(n) if n else 1)
    return out


def _fast_row_heads(data: bytes, separators: int = 0) -> list[bytes] | None:
    """The class-id field of every row when ``data`` is plainly valid (every field a
    number, every row a whole-number class id and at least five fields, no blank line,
    "\\n" or "\\r\\n" line ends); None when anything needs the careful check. With
    ``separators`` (label_counts_many), that many separator lines are expected too.

    Rows are checked by shape: with every digit turned into "0", the rows of a file (of a
    whole batch of files) have few distinct shapes, each checked once; the class ids are
    then the digits after each line end, found in one C-level pass."""
    if data.count(b"~") != separators:
        return None  # a "~" that is not a separator's
    if b"\r" in data and data.count(b"\r") != data.count(b"\r\n"):
        return None  # a bare "\r" line end
    body = data[:-1] if data.endswith(b"\n") else data
    shapes = set(body.translate(_ZERO_DIGITS).split(b"\n"))
    if not shapes <= _GOOD_ROWS and not _all_rows(shapes - _GOOD_ROWS):
        return None  # a blank line, a short row, a field that is not a number...
    heads = _HEAD_RE.findall(b"\n" + body)
    lines = body.count(b"\n") + 1
    if len(heads) != lines:
        return None  # cannot happen once every row's shape is good; kept as a guard
    if separators and heads.count(b"~") != separators:
        return None  # a separator not where it belongs
    return heads


def _all_rows(shapes: set[bytes]) -> bool:
    """True when every row shape is a good row's (a whole-number class id, then at least
    four more fields, every field a number), each one remembered as good."""
    fields = set(b" ".join(shapes).split())
    fields.discard(b"~")
    if not fields <= _GOOD_SHAPES and not _all_numbers(fields - _GOOD_SHAPES):
        return False
    return _all_good(shapes, _ROW_SHAPE_RE.match, _GOOD_ROWS)


def _all_numbers(shapes: set[bytes]) -> bool:
    """True when every field shape is a number's (each one remembered as good)."""
    return _all_good(shapes, _NUMBER_RE.fullmatch, _GOOD_SHAPES)


def _all_good(shapes: set[bytes], match: Callable[[bytes], object], good: set[bytes]) -> bool:
    """True when ``match`` accepts every shape; each one is added to ``good`` (up to
    ``_MAX_SHAPES`` of them)."""
    for shape in shapes:
        if not match(shape):
            return False
        if len(good) < _MAX_SHAPES:
            good.add(shape)
    return True


def _count_lines(data: bytes, path: str) -> dict[int, int]:
    """Rows per class, line by line: slower, exact about what is wrong and where."""
    counts: dict[int, int] = {}
    fullmatch = _ROW_RE.fullmatch
    for lineno, line in enumerate(data.splitlines(), 1):
        if not fullmatch(line):
            if not line.strip():
                continue
            _explain(line, path, lineno)
        token = line.split(None, 1)[0]
        try:
            cls = int(token)
        except ValueError:
            value = float(token)
            if not value.is_integer():
                raise InvalidInput(
                    f"{path}:{lineno}: class id {token.decode()} is not a whole number: {_show(line)}"
                ) from None
            cls = int(value)
        if cls < 0:
            raise InvalidInput(f"{path}:{lineno}: class id {cls} is negative: {_show(line)}")
        counts[cls] = counts.get(cls, 0) + 1
    return counts


def find_class_out_of_range(data: bytes, path: str, num_classes: int) -> InvalidInput:
    """The error for the first row of ``path`` whose class id is not below ``num_classes``."""
    for lineno, line in enumerate(data.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        try:
            cls = int(float(parts[0]))
        except ValueError:
            continue
        if not 0 <= cls < num_classes:
            return InvalidInput(
                f"{path}:{lineno}: class id {cls} is outside the {num_classes} class names "
                f"(valid ids 0..{num_classes - 1}): {_show(line)}"
            )
    return InvalidInput(
        f"{path}: a class id is outside the {num_classes} class names (the file changed while it was read)"
    )


def _explain(line: bytes, path: str, lineno: int) -> None:
    parts = line.split()
    for token in parts:
        if not _NUMBER_RE.fullmatch(token):
            raise InvalidInput(
                f"{path}:{lineno}: label line is not numbers ({_show(token)} is not a number): {_show(line)}"
            )
    if len(parts) < MIN_COLUMNS:
        raise InvalidInput(
            f"{path}:{lineno}: label line has {len(parts)} numbers; a YOLO row "
            f"is a class id and at least 4 coordinates: {_show(line)}"
        )
    raise InvalidInput(f"{path}:{lineno}: label line is not numbers: {_show(line)}")


def _show(text: bytes) -> str:
    shown = text.decode("utf-8", "replace").strip()
    return repr(shown if len(shown) <= 120 else shown[:117] + "...")
