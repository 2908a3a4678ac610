"""Fixtures of the importer tests: ``sqlite_book`` in tmp_path/book (so that the sources
written in tmp_path are outside it), and a writer of Ultralytics run folders."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.ultralytics_files import DETECT, RunFolder, args_yaml, results_csv
from trialbook.api import Book


@pytest.fixture
def run_folder(tmp_path: Path) -> RunFolder:
    """Write an Ultralytics run folder; returns its path."""

    def make(
        rel: str = "runs/detect/train",
        *,
        keys: Sequence[str] = DETECT,
        epochs: Sequence[int] = range(1, 6),
        style: str = "plain",
        time_column: bool = True,
        newline: str = "\n",
        args: dict[str, Any] | bool | None = True,
        opt: dict[str, Any] | None = None,
        weights: bool = True,
        cells: dict[tuple[int, str], str] | None = None,
        csv_text: str | None = None,
    ) -> Path:
        folder = tmp_path / rel
        folder.mkdir(parents=True, exist_ok=True)
        if args is True:
            args = args_yaml(name=folder.name, save_dir=str(folder))
        if isinstance(args, dict):
            (folder / "args.yaml").write_text(yaml.safe_dump(args, sort_keys=False))
        if opt is not None:
            (folder / "opt.yaml").write_text(yaml.safe_dump(opt, sort_keys=False))
        text = (
            csv_text
            if csv_text is not None
            else results_csv(
                keys, list(epochs), style=style, time_column=time_column, newline=newline, cells=cells
            )
        )
        (folder / "results.csv").write_bytes(text.encode())
        if weights:
            (folder / "weights").mkdir(exist_ok=True)
            (folder / "weights" / "best.pt").write_bytes(b"best weights " + folder.name.encode())
            (folder / "weights" / "last.pt").write_bytes(b"last weights " + folder.name.encode())
        return folder

    return make


@pytest.fixture
def sqlite_book(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Book]:
    """An embedded book in tmp_path/book, with the cwd there (so the CLI finds it)."""
    import trialbook

    home = tmp_path / "book"
    home.mkdir()
    monkeypatch.chdir(home)
    monkeypatch.delenv("TRIALBOOK_URI", raising=False)
    monkeypatch.delenv("TRIALBOOK_ARTIFACTS", raising=False)
    book = trialbook.init(home)
    yield book
    book.close()
