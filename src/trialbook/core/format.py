"""Numbers, times, sizes and digests as text: one way, shared by the CLI, the web UI and
the reports.

* :func:`num`: ``None``, NaN and infinities are ``"-"``; a bool is ``"yes"`` / ``"no"``;
  an int as is; a float with ``digits`` decimals (``0.5123``); anything else its ``str``.
* :func:`delta`: a signed difference with ``digits`` decimals (``+0.0120``, ``-0.0030``);
  ``""`` for anything that is not a finite number.
* :func:`ms`: a latency or a latency budget in milliseconds, always with
  :data:`MS_DIGITS` decimals and the unit (``4.1 ms``, ``50.0 ms``).
* :func:`metric`: a metric value (mAP, AP, a noise threshold), always with
  :data:`METRIC_DIGITS` decimals (``0.5900``).
* :func:`ratio`: a ratio such as the per-class floor, with 2 decimals (``0.90``).
* :func:`protocol_value`: a protocol field's value by the rule of its kind (the latency
  budget by :func:`ms`, the noise and the convergence target by :func:`metric`, the class
  floor by :func:`ratio`, the rest as is); ``"not set"`` for ``None``.

The rule is one for each kind of number: every latency the CLI, the gates' texts and the
reports print is :func:`ms`, every metric value :func:`metric`.
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
NOT_SET = "not set"
MS_DIGITS = 1
METRIC_DIGITS = 4
RATIO_DIGITS = 2
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


def ms(value: Any) -> str:
    """A latency (or a latency budget) in milliseconds: ``4.1 ms``; ``"-"`` for none."""
    number = finite_number(value)
    return MISSING if number is None else f"{number:.{MS_DIGITS}f} ms"


def metric(value: Any) -> str:
    """A metric value with :data:`METRIC_DIGITS` decimals: ``0.5900``; ``"-"`` for none."""
    number = finite_number(value)
    return MISSING if number is None else f"{number:.{METRIC_DIGITS}f}"


def ratio(value: Any) -> str:
    """A ratio (the per-class floor) with 2 decimals: ``0.90``; ``"-"`` for none."""
    number = finite_number(value)
    return MISSING if number is None else f"{number:.{RATIO_DIGITS}f}"


_PROTOCOL_FORMATS = {
    "latency_budget_ms": ms,
    "noise": metric,
    "convergence_target": metric,
    "class_floor": ratio,
}


def protocol_value(field: str, value: Any) -> str:
    """A protocol field's value as text (see the module docstring)."""
    if value is None:
        return NOT_SET
    how = _PROTOCOL_FORMATS.get(field)
    if how is not None and finite_number(value) is not None:
        return how(value)
    return num(value)


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
