"""Numbers, times, sizes and digests as text: one way, shared by the CLI, the web UI and
the reports.

* :func:`num`: ``None``, NaN and infinities are ``"-"``; a bool is ``"yes"`` / ``"no"``;
  an int as is; a float with ``digits`` decimals (``0.5123``); anything else its ``str``.
* :func:`delta`: a signed difference with ``digits`` decimals (``+0.0120``, ``-0.0030``);
  ``""`` for anything that is not a finite number.
* :func:`when`: a Unix time as ``YYYY-MM-DD HH:MM`` in local time; ``"-"`` for anything
  that is not a finite number (or is out of the platform's range).
* :func:`size`: a byte count in binary units, ``512 B``, ``1.5 KiB``, ``3.2 MiB``,
  ``1.0 GiB`` (GiB is the largest unit); ``"-"`` for anything that is not a number.
* :func:`short_digest`: the first :data:`SHORT_DIGEST` characters of a digest without its
  ``algorithm:`` prefix; ``"unknown"`` for none.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from trialbook.core.metrics import finite_number

SHORT_DIGEST = 12
MISSING = "-"
_UNITS = ("B", "KiB", "MiB", "GiB")
_STEP = 1024.0


def num(value: Any, digits: int = 4) -> str:
    """A value for a table cell (see the module docstring)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if value is None or isinstance(value, float):
        number = finite_number(value)
        return MISSING if number is None else f"{number:.{digits}f}"
    return str(value)


def delta(value: Any, digits: int = 4) -> str:
    """A signed difference (``+0.0120``); ``""`` when there is none."""
    number = finite_number(value)
    return "" if number is None else f"{number:+.{digits}f}"


def when(ts: Any) -> str:
    """A Unix time as ``YYYY-MM-DD HH:MM`` (local time); ``"-"`` when there is none."""
    seconds = finite_number(ts)
    if seconds is None:
        return MISSING
    try:
        return dt.datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M")
    except (OverflowError, OSError, ValueError):
        return MISSING


def size(n: Any) -> str:
    """A byte count: ``512 B``, ``1.5 KiB``, ``3.2 MiB``, ``1.0 GiB``."""
    value = finite_number(n)
    if value is None:
        return MISSING
    for unit in _UNITS[:-1]:
        text = _with_unit(value, unit)
        if abs(float(text.split()[0])) < _STEP:  # as shown: 1023.96 KiB is "1.0 MiB"
            return text
        value /= _STEP
    return _with_unit(value, _UNITS[-1])


def _with_unit(value: float, unit: str) -> str:
    return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"


def short_digest(digest: str | None) -> str:
    """A short prefix of a digest for display (``"unknown"`` for ``None``)."""
    if not digest:
        return "unknown"
    return digest.rsplit(":", 1)[-1][:SHORT_DIGEST]
