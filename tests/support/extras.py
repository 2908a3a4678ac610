"""Optional extras (ultralytics, tensorboard): a test that needs one is skipped without
it, unless ``TRIALBOOK_REQUIRE_EXTRAS=1`` (CI) makes its absence a failure."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

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


def yolo_env(folder: Path) -> dict[str, str]:
    """The environment of a subprocess that runs Ultralytics as a user would: this
    session's, without ``TRIALBOOK_URI``, with Ultralytics' settings in ``folder`` (its
    ``YOLO_CONFIG_DIR``) rather than in the home folder."""
    env = {k: v for k, v in os.environ.items() if k != "TRIALBOOK_URI"}
    env["YOLO_CONFIG_DIR"] = str(folder)
    return env


def venv_command(name: str) -> str:
    """The console script ``name`` installed beside this interpreter (the ``make install``
    venv's ``bin/``): tests run the command a user runs."""
    path = Path(sys.executable).parent / name
    assert path.exists(), f"{path} is not installed: run make install"
    return str(path)
