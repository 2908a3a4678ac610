"""Helpers shared by the Ultralytics integration tests."""

from __future__ import annotations

import importlib.util
import os

import pytest


def require_ultralytics() -> None:
    """Skip without ultralytics, unless TRIALBOOK_REQUIRE_EXTRAS=1 (CI) makes it a failure."""
    if importlib.util.find_spec("ultralytics") is None:
        if os.environ.get("TRIALBOOK_REQUIRE_EXTRAS") == "1":
            pytest.fail("TRIALBOOK_REQUIRE_EXTRAS=1 but ultralytics is not installed")
        pytest.skip("ultralytics is not installed (make install installs it)")
