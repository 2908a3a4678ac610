"""Jinja2 filters of the pages: numbers, times, digests, sparklines. Output is text that
the templates escape (autoescape is on); nothing here marks anything safe."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import jinja2

from trialbook.core.gates import short_digest


def num(value: Any, digits: int = 4) -> str:
    """A number with ``digits`` decimals (``-`` for none)."""
    if value is None or isinstance(value, bool):
        return "-"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return "-"
        return f"{value:.{digits}f}"
    return str(value)


def delta(value: Any, digits: int = 4) -> str:
    """A signed difference (``+0.0120``)."""
    if value is None or not isinstance(value, (int, float)) or not math.isfinite(value):
        return ""
    return f"{value:+.{digits}f}"


def when(ts: Any) -> str:
    """A Unix time as ``YYYY-MM-DD HH:MM`` (local time)."""
    if not isinstance(ts, (int, float)):
        return "-"
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


def size(n: Any) -> str:
    if not isinstance(n, int):
        return "-"
    step = 1024.0
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < step or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= step
    return f"{n} B"  # pragma: no cover


def spark(values: Sequence[float], width: int = 96, height: int = 22) -> str:
    """SVG polyline points for a sparkline of ``values`` (empty for fewer than two)."""
    vals = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if len(vals) < 2:
        return ""
    lo, hi = min(vals), max(vals)
    span = (hi - lo) or 1.0
    step = width / (len(vals) - 1)
    return " ".join(
        f"{i * step:.1f},{height - 1 - (v - lo) / span * (height - 2):.1f}" for i, v in enumerate(vals)
    )


def path_quote(value: Any) -> str:
    """One URL path segment (``/`` encoded too)."""
    return quote(str(value), safe="")


def install(env: jinja2.Environment) -> None:
    env.filters.update(
        num=num, delta=delta, when=when, size=size, spark=spark, short=short_digest, seg=path_quote
    )
