"""When runs can be compared: they were validated on one val split.

One rule, for a decision (two runs) and for a compare view (any number):

* every val split digest known and all equal: comparable, nothing to say;
* none known (imported runs): assumed comparable, with a warning when there are two runs
  or more;
* some known and some not, or two different known digests: **not comparable**; the
  warning names the runs on each split (and those on an unknown one) and how to fix it
  (evaluate them on one split).

A digest that is ``None`` or empty is unknown. :func:`check_val_splits` returns
``(comparable, warning)``; callers name the runs as they like (``"candidate v4_x"``) and
can word the way out (``fix``).
"""

from __future__ import annotations

from collections.abc import Mapping

from trialbook.core.format import short_digest

FIX_ALL = "evaluate all of them on one val split"


def check_val_splits(val_digests: Mapping[str, str | None], *, fix: str = FIX_ALL) -> tuple[bool, str | None]:
    """``(comparable, warning or None)`` for runs named by their val split digests."""
    unknown = [name for name, digest in val_digests.items() if not digest]
    splits: dict[str, list[str]] = {}
    for name, digest in val_digests.items():
        if digest:
            splits.setdefault(digest, []).append(name)
    if not splits:
        return True, _none_known(len(unknown))
    if len(splits) == 1 and not unknown:
        return True, None
    groups = [f"{', '.join(names)} on {short_digest(digest)}" for digest, names in splits.items()]
    if unknown:
        groups.append(f"{', '.join(unknown)} on an unknown val split")
    return False, f"not comparable: validated on different val splits ({'; '.join(groups)}); {fix}"


def _none_known(count: int) -> str | None:
    """The warning for ``count`` runs of which no val split is known."""
    if count < 2:
        return None
    runs, they = ("neither run", "both") if count == 2 else ("none of these runs", "they")
    return (
        f"the val split of {runs} is recorded; the comparison assumes {they} were validated on the same split"
    )
