"""Optional extras (ultralytics, tensorboard): a test that needs one is skipped without
it, unless ``TRIALBOOK_REQUIRE_EXTRAS=1`` (CI) makes its absence a failure."""

from __future__ import annotations

import importlib.util
import os

import pytest

REQUIRE_EXTRAS = os.environ.get("TRIALBOOK_REQUIRE_EXTRAS") == "1"


def require_ultralytics() -> None:
    """Skip without ultralytics, unless TRIALBOOK_REQUIRE_EXTRAS=1 (CI) makes it a failure."""
    if importlib.util.find_spec("ultralytics") is None:
        if REQUIRE_EXTRAS:
            pytest.fail("TRIALBOOK_REQUIRE_EXTRAS=1 but ultralytics is not installed")
        pytest.skip("ultralytics is not installed (make install installs it)")


def require_tensorboard() -> None:
    """Skip without tensorboard, unless TRIALBOOK_REQUIRE_EXTRAS=1 (CI) makes it a failure."""
    try:
        import tensorboard  # noqa: F401
    except ImportError as exc:
        if REQUIRE_EXTRAS:
            pytest.fail(f"TRIALBOOK_REQUIRE_EXTRAS=1 but tensorboard is not installed: {exc}")
        pytest.skip("the tensorboard extra is not installed")
