"""Text that every backend can store: the one check of names, keys and free text.

SQLite stores any Python ``str``, PostgreSQL refuses a NUL character, and neither can
encode a lone surrogate (``"\\ud800"``) as UTF-8; an INTEGER column holds up to
``2**31 - 1``. trialbook refuses such input when it is given (``InvalidInput`` naming
what and where), identically on every backend, instead of failing later in a writer.
"""

from __future__ import annotations

from trialbook.errors import InvalidInput

MAX_NAME = 200  # a project, run, dataset, tag or class name
MAX_INT = 2**31 - 1  # the largest number an INTEGER column holds on every backend


def problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as text, or None."""
    if "\x00" in value:
        return "holds a NUL character"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            return f"holds a character that cannot be encoded as UTF-8 ({exc.reason}) at {exc.start}"
    return None


def check_text(what: str, value: object, *, max_len: int | None = None) -> str:
    """``value`` when it is a ``str`` every backend stores; ``InvalidInput`` otherwise."""
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be text, not {type(value).__name__} ({value!r:.60})")
    why = problem(value)
    if why is not None:
        raise InvalidInput(f"{what} {value!r:.80} {why}")
    if max_len is not None and len(value) > max_len:
        raise InvalidInput(
            f"{what} {value[:40]!r}... is {len(value)} characters long; the limit is {max_len}"
        )
    return value


def check_name(what: str, value: object, *, max_len: int = MAX_NAME) -> str:
    """A name (project, run, class ...): non-blank text, at most ``max_len`` characters,
    without ``/`` (which separates ``PROJECT/RUN``) or control characters."""
    text = check_text(what, value, max_len=max_len)
    if not text.strip():
        raise InvalidInput(f"{what} must not be empty")
    if "/" in text:
        raise InvalidInput(f"{what} {text!r} must not contain '/' (it separates PROJECT/RUN)")
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise InvalidInput(f"{what} {text!r} must not contain control characters")
    return text


def check_count(what: str, value: object, *, low: int = 0, high: int = MAX_INT) -> int:
    """A whole number in ``[low, high]`` (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{what} must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise InvalidInput(f"{what} {value} is out of range: it must be between {low} and {high}")
    return value


# "The note has text": some field holds a character that is not one of NOTE_BLANKS.
# The blanks are the ASCII whitespace characters, no more (not Python's Unicode
# whitespace, which SQL's trim() does not know): the SQL twin of this rule,
# ``store.sql.schema.note_written()``, trims exactly these characters on SQLite and
# PostgreSQL, so the runs table, the project counts and ``core.notes.note_debt`` agree.
# ``core.entities`` (``Note.has_text``) and ``core.notes`` read it from here.
NOTE_BLANKS = " \t\n\r\f\v"
NOTE_TEXT_FIELDS = ("hypothesis", "change", "result", "next", "text")


def has_text(value: object) -> bool:
    """True when ``value`` is a string holding a character other than ``NOTE_BLANKS``."""
    return isinstance(value, str) and bool(value.strip(NOTE_BLANKS))
