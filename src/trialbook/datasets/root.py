"""Where a data.yaml's dataset root is: its ``path:`` resolved as the installed Ultralytics
resolves it, so that the files fingerprinted are the files trained on.

Two rules, ``PATH_RULES``:

``"ultralytics"`` (used when Ultralytics is installed), as ``check_det_dataset`` does it
(read in Ultralytics 8.4.190, ``ultralytics/data/utils.py``; the same since 8.1):

* no ``path:`` (or an empty one): the yaml's folder;
* an absolute ``path:``: that folder;
* a relative ``path:``: from the *current folder* if it exists there, else under
  Ultralytics' ``datasets_dir`` setting (``ultralytics.utils.DATASETS_DIR``); ``~`` is
  not expanded;
* a split given as text is ``root / split`` (if that does not exist and the split starts
  with ``../``, ``root / split[3:]``); a split given as a list is ``root / item`` for each
  item, without that fallback.

``"trialbook"`` (without Ultralytics, which cannot say what training will read): a
relative ``path:`` is read from the yaml's folder, so a version never depends on where a
command ran; ``~`` is expanded; the ``../`` fallback applies to every split entry.

A relative ``path:`` can name two folders: the rule's and the other one (the yaml's
folder for the Ultralytics rule; the current folder for trialbook's). The rule's folder is
used when every split named in the yaml is there; if not, and the other folder holds
them all, that one is used (Ultralytics started in this folder could not train on this
yaml at all, so nothing it trains on is mis-fingerprinted). A warning is given only when
the two folders both hold the splits and are different folders (the files may differ
from the trained ones), or when the other folder was used.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trialbook.errors import InvalidInput

PATH_RULES = ("ultralytics", "trialbook")
SPLIT_KEYS = ("train", "val", "test", "validation")


def default_rule() -> str:
    """``"ultralytics"`` when Ultralytics is installed (found, not imported), else ``"trialbook"``."""
    try:
        found = importlib.util.find_spec("ultralytics") is not None
    except (ImportError, ValueError):
        found = False
    return "ultralytics" if found else "trialbook"


@functools.cache
def ultralytics_datasets_dir() -> Path | None:
    """Ultralytics' ``datasets_dir`` setting, or None when Ultralytics cannot be imported.

    Importing it imports torch (seconds), so it is done only when a relative ``path:`` is
    not found from the current folder. Ultralytics logs to stdout when it first writes its
    settings file; that goes to stderr here, so a ``--json`` output stays one document."""
    try:
        with contextlib.redirect_stdout(sys.stderr):
            from ultralytics.utils import DATASETS_DIR
    except Exception:  # a broken install is the same as none here
        return None
    return Path(DATASETS_DIR)


def split_entries(value: Any) -> list[Any]:
    """The entries of a split value: a list's items, or the one value."""
    return value if isinstance(value, list) else [value]


def entry_path(raw: str, root: Path, rule: str, *, listed: bool) -> Path:
    """Where a split entry is under ``root`` by ``rule`` (``listed``: one item of a list)."""
    given = Path(raw) if rule == "ultralytics" else Path(os.path.expanduser(raw))
    path = root / given
    fallback = rule == "trialbook" or not listed
    if fallback and raw.startswith("../") and not path.exists():
        path = root / raw[3:]  # Ultralytics' fallback for YOLOv5-era configs
    return path


def _missing_entries(data: dict[Any, Any], root: Path | None, rule: str) -> int:
    """How many split entries of the yaml do not exist under ``root`` (all: no ``root``)."""
    missing = 0
    for key in SPLIT_KEYS:
        value = data.get(key)
        if value in (None, "", []):
            continue
        listed = isinstance(value, list)
        for raw in split_entries(value):
            if isinstance(raw, str) and raw:
                missing += root is None or not entry_path(raw, root, rule, listed=listed).exists()
    return missing


@dataclass(frozen=True)
class RootChoice:
    """The dataset root of a data.yaml (absolute, not yet resolved through symlinks), the
    rule its split entries are read by, the warnings to give, and a hint to add to an
    error about a missing split entry."""

    root: Path
    rule: str
    warnings: tuple[str, ...] = ()
    hint: str = ""


def _candidates(raw: str, config: Path, rule: str) -> tuple[Path | None, Path, str]:
    """(the rule's folder, the other folder, how the rule's was found) for a relative ``path:``."""
    here = Path.cwd()
    beside = config.parent / os.path.expanduser(raw)
    if rule == "trialbook":
        return beside, here / raw, "from the yaml's folder (trialbook's rule without Ultralytics)"
    if Path(raw).exists():
        return here / raw, beside, f"from the current folder {here} (Ultralytics' rule)"
    datasets_dir = ultralytics_datasets_dir()
    if datasets_dir is None:
        return None, beside, "Ultralytics' datasets_dir (Ultralytics could not be imported)"
    return (datasets_dir / raw), beside, f"under Ultralytics' datasets_dir {datasets_dir}"


def _same(a: Path, b: Path) -> bool:
    """True when both name one folder (through symlinks)."""
    try:
        return a.resolve() == b.resolve()
    except (OSError, RuntimeError):
        return False


def choose_root(data: dict[Any, Any], config: Path, rule: str | None = None) -> RootChoice:
    """The dataset root of the parsed data.yaml ``data`` read from ``config`` (see the module
    docstring); ``rule`` is one of ``PATH_RULES`` (default: :func:`default_rule`)."""
    rule = rule or default_rule()
    if rule not in PATH_RULES:
        raise InvalidInput(f"path rule must be one of {', '.join(PATH_RULES)}, not {rule!r}")
    raw = data.get("path")
    if raw in (None, ""):
        return RootChoice(config.parent, rule)
    if not isinstance(raw, str):
        raise InvalidInput(f"{config}: 'path' must be a folder, got {raw!r}")
    given = Path(raw) if rule == "ultralytics" else Path(os.path.expanduser(raw))
    if given.is_absolute():
        return RootChoice(given, rule)
    first, other, how = _candidates(raw, config, rule)
    first_missing = _missing_entries(data, first, rule)
    other_missing = _missing_entries(data, other, rule)
    what = f"{config}: `path: {raw}` is relative"
    if first is not None and not first_missing:
        if not other_missing and not _same(first, other):
            return RootChoice(first, rule, (_both_warning(what, rule, first, other, how),))
        return RootChoice(first, rule)
    if not other_missing:
        return RootChoice(other, rule, (_other_warning(what, rule, first, other, how),))
    # Neither holds every split: the error is about the one that holds more of them.
    where = f"read {how}: {first}" if first is not None else f"cannot be read {how}"
    hint = f" ({what}; {where}; from the other folder: {other}; make `path:` absolute, or remove it)"
    chosen = first if first is not None and first_missing <= other_missing else other
    return RootChoice(chosen, rule, hint=hint)


def _both_warning(what: str, rule: str, used: Path, other: Path, how: str) -> str:
    if rule == "ultralytics":
        return (
            f"{what}: Ultralytics reads it {how}, {used}, which trialbook fingerprinted; from the "
            f"yaml's folder it is {other}, other files. Training started in another folder may "
            "read other files: remove `path:` (Ultralytics then uses the yaml's folder) or make it absolute"
        )
    return (
        f"{what}: trialbook read it from the yaml's folder, {used}, without Ultralytics installed; "
        f"Ultralytics started in this folder reads {other}, other files. Remove `path:` "
        "(Ultralytics then uses the yaml's folder) or make it absolute"
    )


def _other_warning(what: str, rule: str, first: Path | None, used: Path, how: str) -> str:
    if rule == "ultralytics":
        return (
            f"{what}: Ultralytics, started in this folder, reads it {how}, "
            f"{first}, which does not hold the splits, so it could not train on this yaml from here; "
            f"trialbook fingerprinted {used}, from the yaml's folder, which Ultralytics reads when "
            "training starts there. Remove `path:` (Ultralytics then uses the yaml's folder) or make "
            "it absolute"
        )
    return (
        f"{what}: the yaml's folder holds no {first} with the splits; trialbook fingerprinted "
        f"{used}, from the current folder, as Ultralytics started here reads it. Remove `path:` "
        "(Ultralytics then uses the yaml's folder) or make it absolute"
    )
