"""What the importers share (trialbook.integrations.importers.common)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from trialbook.integrations.importers import ImportProblem
from trialbook.integrations.importers.common import SourceError, capped, finite, read_text, read_yaml


def test_import_problem_text() -> None:
    assert str(ImportProblem("runs/a/results.csv", "bad cell", 3)) == "runs/a/results.csv:3: bad cell"
    assert str(ImportProblem("runs/a", "no results.csv")) == "runs/a: no results.csv"
    assert ImportProblem("p", "m", 2).to_dict() == {"path": "p", "line": 2, "message": "m"}


def test_finite_keeps_numbers_and_nan_and_counts_infinities() -> None:
    found: list[ImportProblem] = []
    where = ImportProblem("f", "column 'x' epoch 3", 5)
    assert finite(0.5, found, where) == 0.5
    assert math.isnan(finite(math.nan, found, where))
    assert found == []
    assert math.isnan(finite(math.inf, found, where))
    assert math.isnan(finite(-math.inf, found, where))
    assert found == [where, where]


def test_capped() -> None:
    problems = [ImportProblem("f", f"p{i}") for i in range(25)]
    out = capped(problems, "f")
    assert len(out) == 21 and out[-1].message == "... and 5 more problems"
    assert capped(problems[:3], "f") == problems[:3]


def test_read_text_makes_line_ends_newlines(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"a\r\nb\rc\n")
    assert read_text(path) == "a\nb\nc\n"
    path.write_bytes(b"\xef\xbb\xbfepoch,x\r\n")
    assert read_text(path, encoding="utf-8-sig") == "epoch,x\n"


def test_read_text_errors_name_the_file_and_the_byte(tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(b"x" * 10_000 + b"\xff")
    with pytest.raises(SourceError) as err:
        read_text(path)
    assert str(err.value) == f"{path}: is not UTF-8 text (byte 10000)"
    with pytest.raises(SourceError, match="cannot be read"):
        read_text(tmp_path / "missing.txt")


def test_read_yaml_errors_give_the_line(tmp_path: Path) -> None:
    path = tmp_path / "args.yaml"
    path.write_text("a: 1\nb: [\n", encoding="utf-8")
    with pytest.raises(SourceError) as err:
        read_yaml(path)
    (problem,) = err.value.problems
    assert problem.path == str(path) and problem.line is not None and "not valid YAML" in problem.message
    path.write_text("a: 1\r\nb: two\r\n", encoding="utf-8")
    assert read_yaml(path) == {"a": 1, "b": "two"}
