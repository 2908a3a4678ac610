"""Fixtures of the dataset tests: a small YOLO dataset in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.datasets import make_dataset


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """The default dataset (see ``default_splits``); returns its data.yaml."""
    return make_dataset(tmp_path / "ds")
