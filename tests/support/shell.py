"""The venv's ``trialbook`` command in a subprocess, in one folder, as a user types it,
with Ultralytics' settings in a folder of the test (``yolo_env``)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from support.extras import venv_command, yolo_env


class Shell:
    """``trialbook ...`` in one folder, as a user types it."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.env = yolo_env(cwd.parent / "ultralytics")

    def __call__(
        self, *args: str, code: int = 0, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [venv_command("trialbook"), *args],
            cwd=self.cwd,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert done.returncode == code, (
            f"trialbook {' '.join(args)}: {done.stdout[-2000:]}{done.stderr[-3000:]}"
        )
        return done

    def json(self, *args: str) -> dict:  # type: ignore[type-arg]
        return json.loads(self(*args, "--json").stdout)  # type: ignore[no-any-return]


def tagged_shapes(
    tmp_path_factory: Any, name: str, counts: dict[str, int], classes: list[str], *, size: int = 64
) -> Shell:
    """A ``Shell`` in a new folder holding a book (``trialbook init``) and a drawn dataset
    ``data/shapes`` of ``counts`` images a split, tagged ``shapes:v1``."""
    from trialbook.demo.story import write_dataset

    cwd = tmp_path_factory.mktemp(name) / "work"
    cwd.mkdir()
    tb = Shell(cwd)
    write_dataset(cwd / "data" / "shapes", counts, seed=7, size=size, classes=classes)
    tb("init")
    tb("data", "tag", "shapes", "data/shapes/data.yaml", "--tag", "v1")
    return tb
