"""Run notes: the four fields, note debt, and a drafted result line.

A note holds :data:`NOTE_FIELDS` (hypothesis, change, result, next) plus free text.

Has text
    :func:`has_text` (and ``Note.has_text``) is true when some field of hypothesis,
    change, result, next and text holds a character that is not a blank. The blanks are
    :data:`~trialbook.core.entities.NOTE_BLANKS`, the ASCII whitespace characters
    ``" \\t\\n\\r\\f\\v"``: a note of ``"\\n\\t"`` says nothing, a note of a no-break space
    (U+00A0) says something. The store counts note debt in SQL with the same rule
    (``store.sql.schema.note_written``); ``tests/store/test_sql_twins.py`` holds them equal.

Note debt
    :func:`note_debt` is true for a run whose status is ``"finished"`` and whose note is
    missing or has no text (:func:`has_text`). Running, failed and crashed runs are never
    in debt (pass the effective status, ``core.runs.effective_status``).

Drafted result line
    :func:`draft_result` writes the run's numbers against its parent run, for example
    ``pallet AP 0.31 → 0.58; overall mAP 0.51 → 0.59``:

    * first the classes present in both runs whose AP moved by more than the noise
      (``core.noise.exceeds``), largest move first (ties by class name); a class present
      in only one run is left out;
    * then ``overall <short metric name> <parent> → <run>``; when the overall change is
      not more than the noise, `` (within noise)`` is added;
    * values have 2 decimals; with no parent value the line is
      ``overall mAP 0.59 (no parent run to compare)``, and with no run value
      ``overall mAP not recorded``.

    The short metric name is the last ``/`` part of the key without its task suffix
    (``(B)``; ``(M)`` and ``(P)`` become a ``mask``/``pose`` prefix), and ``mAP50-95``
    is written ``mAP``: ``metrics/mAP50-95(B)`` -> ``mAP``, ``metrics/mAP50(M)`` ->
    ``mask mAP50``, ``val/loss`` -> ``loss``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from trialbook.core.noise import exceeds
from trialbook.core.text import NOTE_BLANKS, NOTE_TEXT_FIELDS, check_text
from trialbook.core.text import has_text as _text_in
from trialbook.errors import InvalidInput

if TYPE_CHECKING:
    from trialbook.core.entities import Note

NOTE_FIELDS = ("hypothesis", "change", "result", "next")
__all__ = [
    "NOTE_BLANKS",
    "NOTE_FIELDS",
    "draft_result",
    "has_text",
    "note_debt",
    "short_metric_name",
]
_TASK_SUFFIX = re.compile(r"\(([A-Za-z])\)$")
_TASK_PREFIX = {"M": "mask ", "P": "pose "}


def short_metric_name(metric: str) -> str:
    """A short display name of a metric key (see the module docstring)."""
    name = metric.rsplit("/", 1)[-1]
    prefix = ""
    m = _TASK_SUFFIX.search(name)
    if m:
        prefix = _TASK_PREFIX.get(m.group(1).upper(), "")
        name = name[: m.start()]
    if name.lower() == "map50-95":
        name = "mAP"
    return prefix + (name or metric)


def draft_result(
    metric_name: str,
    parent_value: float | None,
    run_value: float | None,
    parent_per_class: Mapping[str, float] | None,
    run_per_class: Mapping[str, float] | None,
    noise: float,
) -> str:
    """A draft of a note's result line; see the module docstring for the format."""
    short = short_metric_name(metric_name)
    if run_value is None:
        return f"overall {short} not recorded"
    if parent_value is None:
        return f"overall {short} {run_value:.2f} (no parent run to compare)"
    parent_per_class = parent_per_class or {}
    run_per_class = run_per_class or {}
    moves: list[tuple[float, str]] = []
    for cls, before in parent_per_class.items():
        if cls in run_per_class and exceeds(abs(run_per_class[cls] - before), noise):
            moves.append((abs(run_per_class[cls] - before), cls))
    moves.sort(key=lambda m: (-m[0], m[1]))
    parts = [f"{c} AP {parent_per_class[c]:.2f} → {run_per_class[c]:.2f}" for _, c in moves]
    overall = f"overall {short} {parent_value:.2f} → {run_value:.2f}"
    if not exceeds(abs(run_value - parent_value), noise):
        overall += " (within noise)"
    parts.append(overall)
    return "; ".join(parts)


def has_text(note: Note | Mapping[str, Any] | None) -> bool:
    """True when some field of ``note`` (a ``Note`` or a mapping of field to text) holds a
    character other than ``NOTE_BLANKS``. ``None``, missing fields and values that are not
    strings hold nothing."""
    if note is None:
        return False
    if isinstance(note, Mapping):
        return any(_text_in(note.get(name)) for name in NOTE_TEXT_FIELDS)
    return any(_text_in(getattr(note, name, None)) for name in NOTE_TEXT_FIELDS)


def note_debt(note: Note | Mapping[str, Any] | None, status: str) -> bool:
    """True when a finished run has no note, or a note with no text (:func:`has_text`)."""
    return in_debt(has_text(note), status)


def in_debt(written: bool, status: str) -> bool:
    """The note-debt rule on a known answer to "has the note text?" (a runs table reads
    that answer from the database's twin of :func:`has_text`)."""
    return status == "finished" and not written


MAX_NOTE_FIELD = 20_000


def check_note_fields(fields: Mapping[str, Any]) -> dict[str, str]:
    """The fields of a note to write: known names (``NOTE_FIELDS`` and ``text``) with text
    every backend stores, at most :data:`MAX_NOTE_FIELD` characters each; ``None`` values
    are left out (they keep their text). ``InvalidInput`` naming the field otherwise."""
    known = (*NOTE_FIELDS, "text")
    unknown = [k for k in fields if k not in known]
    if unknown:
        raise InvalidInput(f"unknown note field(s): {', '.join(map(str, unknown))}; use {', '.join(known)}")
    return {
        k: check_text(f"note field {k}", v, max_len=MAX_NOTE_FIELD)
        for k, v in fields.items()
        if v is not None
    }
