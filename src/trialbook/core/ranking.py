"""Ranking runs on the protocol's one comparison metric."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def rank(items: Sequence[T], value: Callable[[T], Any], direction: str) -> list[T]:
    """Best first under ``direction``; items without a value go last, in their given order."""
    have = [i for i in items if value(i) is not None]
    missing = [i for i in items if value(i) is None]
    have.sort(key=lambda i: value(i) or 0.0, reverse=direction != "min")
    return have + missing
