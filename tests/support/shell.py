"""The venv's ``trialbook`` command in a subprocess, in one folder, as a user types it,
with Ultralytics' settings in a folder of the test (``yolo_env``)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

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
