"""``services.lint.load_config`` (``trialbook name --config``) reads YAML through the one
safe reader: bombs and duplicate keys are refused naming the file and line."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from trialbook.errors import InvalidInput
from trialbook.services.lint import load_config


def test_an_alias_bomb_is_refused_at_once(tmp_path: Path) -> None:
    path = tmp_path / "args.yaml"
    lines = ["a0: &a0 [" + ", ".join(["lol"] * 9) + "]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 7)]
    path.write_text("\n".join([*lines, "lr0: *a6"]) + "\n")
    started = time.monotonic()
    with pytest.raises(InvalidInput, match="aliases expand to") as err:
        load_config(path)
    assert time.monotonic() - started < 2
    assert str(err.value).startswith(f"config file {path}: ") and "line 8" in str(err.value)


def test_a_duplicate_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "args.yaml"
    path.write_text("lr0: 0.01\nimgsz: 640\nlr0: 0.02\n")
    with pytest.raises(InvalidInput) as err:
        load_config(path)
    assert str(err.value) == f"config file {path}: key 'lr0' is given twice (on line 1 and line 3)"
    path.write_text("lr0: 0.01\nimgsz: 640\n")
    assert load_config(path) == {"lr0": 0.01, "imgsz": 640}
