"""Fixtures of the discipline's tests (helpers in discipline_helpers.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from discipline_helpers import CLI, make_cli

from trialbook.api import Book


@pytest.fixture
def sbook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Book]:
    """An embedded (SQLite) book in tmp_path."""
    monkeypatch.delenv("TRIALBOOK_URI", raising=False)
    monkeypatch.setenv("TRIALBOOK_USER", "tester")
    b = Book.open(str(tmp_path / ".trialbook"), create=True)
    yield b
    b.close()


@pytest.fixture
def tb(sbook: Book) -> CLI:
    """``tb("decide", "v2_x", "--baseline", "v1_x")`` on ``sbook``; checks the exit code."""
    return make_cli(sbook.uri)
