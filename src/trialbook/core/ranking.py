"""Ranking runs on the protocol's one comparison metric.

The rule, shared by every list of runs and by the store's ranked pages
(``QueryStore.runs_page(sort="rank")``, whose SQL orders the same way):

* runs with a value come first, best first: highest first unless ``direction`` is
  ``"min"`` (``"none"`` ranks like ``"max"``);
* runs with no value (``None``) come after every run with one;
* ties, among equal values and among the runs with no value, keep the order of the
  items as given, or the order of ``tiebreak`` (ascending) when one is passed. The store
  breaks ties oldest first, by ``core.runs.run_order`` (``created_at``, then ``id``): pass
  ``tiebreak=run_order`` (or give the runs oldest first) to rank the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def rank(
    items: Sequence[T],
    value: Callable[[T], Any],
    direction: str,
    *,
    tiebreak: Callable[[T], Any] | None = None,
) -> list[T]:
    """``items`` ranked by ``value`` under ``direction`` (see the module docstring)."""
    ordered = sorted(items, key=tiebreak) if tiebreak is not None else list(items)
    have = [i for i in ordered if value(i) is not None]
    missing = [i for i in ordered if value(i) is None]
    # sorted() is stable: equal values keep the tie order established above
    have.sort(key=value, reverse=direction != "min")
    return have + missing
