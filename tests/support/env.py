"""This process's environment for a subprocess that must not see the test's trialbook
settings (its book, token, outbox ...), as a fresh shell of the user would not."""

from __future__ import annotations

import os

# kept: the suite's own choices for every process it starts (tests/conftest.py)
KEPT = ("TRIALBOOK_SYSTEM_METRICS",)


def without_trialbook(*, aws: bool = False) -> dict[str, str]:
    """``os.environ`` without its ``TRIALBOOK_*`` variables (and ``AWS_*`` with ``aws``),
    but for those in ``KEPT``."""
    dropped = ("TRIALBOOK_", "AWS_") if aws else ("TRIALBOOK_",)
    return {k: v for k, v in os.environ.items() if k in KEPT or not k.startswith(dropped)}
