"""Run names: ``<version>_<what_changed>``, checked against the protocol's pattern."""

from __future__ import annotations

import re

from trialbook.errors import InvalidInput

DEFAULT_PATTERN = r"^v\d+[a-z]?_[a-z0-9][a-z0-9_.\-]*$"

_TRAILING_NUMBER = re.compile(r"^([a-z_]*?)_?(\d+)$")


def _slug(text: str) -> str:
    s = re.sub(r"[^a-z0-9_.\-]+", "_", text.lower()).strip("_")
    return re.sub(r"_+", "_", s)


def suggest_fix(name: str) -> str:
    """A name in the ``<version>_<what_changed>`` form close to ``name``."""
    slug = _slug(name)
    m = re.match(r"^v(\d+[a-z]?)[_\-]?(.*)$", slug)
    if m:
        rest = m.group(2) or "what_changed"
        return f"v{m.group(1)}_{rest}"
    m = _TRAILING_NUMBER.match(slug)
    if m:  # train3, exp12, run_5
        return f"v{int(m.group(2))}_what_changed"
    return f"v1_{slug or 'what_changed'}"


def check_name(name: object, pattern: str = DEFAULT_PATTERN) -> str:
    """Return ``name`` if it follows ``pattern``; otherwise raise with a suggestion."""
    if not isinstance(name, str) or not name:
        raise InvalidInput("a run needs a name of the form <version>_<what_changed>, e.g. v3_pallets_added")
    if re.fullmatch(pattern, name) is None:
        raise InvalidInput(
            f"run name {name!r} does not follow the naming rule {pattern!r}: "
            f"name a run <version>_<what_changed>, e.g. {suggest_fix(name)!r}"
        )
    return name


def is_valid_name(name: str, pattern: str = DEFAULT_PATTERN) -> bool:
    return re.fullmatch(pattern, name) is not None
