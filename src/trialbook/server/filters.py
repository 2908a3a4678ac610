"""Jinja2 filters of the pages: numbers, times and digests (``core.format``, as the CLI
and the reports write them), sparklines. Output is text that the templates escape
(autoescape is on); nothing here marks anything safe."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import jinja2

from trialbook.core.format import delta, num, short_digest, size, when


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
