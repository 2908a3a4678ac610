"""What a run records about where it ran, without being asked.

Versions of heavy packages are read from package metadata; they are never imported.
The modules that read it all (``importlib.metadata``, ``platform``, ``socket``,
``subprocess``) are imported when a run's environment is captured, not with trialbook.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from pathlib import Path
from typing import Any

WATCHED_PACKAGES = ("torch", "torchvision", "ultralytics", "numpy", "opencv-python", "trialbook")


def _git(args: list[str], cwd: Path) -> str | None:
    import subprocess

    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


GIT_CACHE_S = 5.0
_git_cache: dict[Path, tuple[float, dict[str, Any] | None]] = {}


def git_state(cwd: Path | None = None) -> dict[str, Any] | None:
    """Commit, branch and dirty state of the repository around ``cwd``, or None.

    One ``git status --porcelain=v2 --branch`` call gives all three; a process that starts
    many runs in a row reads it at most once every ``GIT_CACHE_S`` seconds per folder.
    """
    cwd = cwd or Path.cwd()
    cached = _git_cache.get(cwd)
    if cached is not None and time.monotonic() - cached[0] < GIT_CACHE_S:
        return dict(cached[1]) if cached[1] is not None else None
    state = _read_git_state(cwd)
    _git_cache[cwd] = (time.monotonic(), state)
    return dict(state) if state is not None else None


def _read_git_state(cwd: Path) -> dict[str, Any] | None:
    out = _git(["status", "--porcelain=v2", "--branch", "--untracked-files=no"], cwd)
    if out is None:
        return None
    state: dict[str, Any] = {"commit": None, "branch": None, "dirty": False}
    for line in out.splitlines():
        if line.startswith("# branch.oid "):
            oid = line.split(" ", 2)[2]
            state["commit"] = None if oid == "(initial)" else oid
        elif line.startswith("# branch.head "):
            head = line.split(" ", 2)[2]
            state["branch"] = None if head == "(detached)" else head
        elif not line.startswith("#"):
            state["dirty"] = True
    return state


@functools.lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    from importlib import metadata

    found: dict[str, str] = {}
    for name in WATCHED_PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def environment() -> dict[str, Any]:
    import platform
    import socket

    env: dict[str, Any] = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        "argv": list(sys.argv),
        "cwd": str(Path.cwd()),
        "packages": dict(package_versions()),
    }
    cuda = os.environ.get("CUDA_VISIBLE_DEVICES")
    if cuda is not None:
        env["cuda_visible_devices"] = cuda
    git = git_state()
    if git is not None:
        env["git"] = git
    return env
