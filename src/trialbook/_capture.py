"""What a run records about where it ran, without being asked.

Versions of heavy packages are read from package metadata; they are never imported.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

WATCHED_PACKAGES = ("torch", "torchvision", "ultralytics", "numpy", "opencv-python", "trialbook")


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_state(cwd: Path | None = None) -> dict[str, Any] | None:
    """Commit, branch and dirty state of the repository around ``cwd``, or None."""
    cwd = cwd or Path.cwd()
    commit = _git(["rev-parse", "HEAD"], cwd)
    if commit is None:
        return None
    status = _git(["status", "--porcelain", "--untracked-files=no"], cwd)
    return {
        "commit": commit,
        "branch": _git(["rev-parse", "--abbrev-ref", "HEAD"], cwd),
        "dirty": bool(status),
        "root": _git(["rev-parse", "--show-toplevel"], cwd),
    }


def package_versions() -> dict[str, str]:
    found: dict[str, str] = {}
    for name in WATCHED_PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def environment() -> dict[str, Any]:
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        "argv": list(sys.argv),
        "cwd": str(Path.cwd()),
        "packages": package_versions(),
    }
    cuda = os.environ.get("CUDA_VISIBLE_DEVICES")
    if cuda is not None:
        env["cuda_visible_devices"] = cuda
    git = git_state()
    if git is not None:
        env["git"] = git
    return env
