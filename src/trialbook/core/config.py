"""Run configuration: nested mappings flattened to readable dotted keys."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def _plain(value: Any) -> Any:
    """A JSON-safe version of a config value."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item"):
        try:
            return _plain(value.item())
        except Exception:
            pass
    return str(value)


def flatten(config: Mapping[str, Any] | None, *, sep: str = ".") -> dict[str, Any]:
    """Flatten nested mappings: ``{"hyp": {"lr0": 0.01}}`` -> ``{"hyp.lr0": 0.01}``.

    Lists stay lists; any other object becomes its ``str``. Keys keep their order.
    """
    out: dict[str, Any] = {}

    def walk(prefix: str, node: Mapping[str, Any]) -> None:
        for k, v in node.items():
            key = f"{prefix}{sep}{k}" if prefix else str(k)
            if isinstance(v, Mapping) and v:
                walk(key, v)
            else:
                out[key] = _plain(dict(v) if isinstance(v, Mapping) else v)

    if config:
        walk("", config)
    return out


def diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Keys whose values differ between two flat configs: ``{key: (a_value, b_value)}``."""
    missing = object()
    out: dict[str, tuple[Any, Any]] = {}
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key, missing), b.get(key, missing)
        if va != vb:
            out[key] = (None if va is missing else va, None if vb is missing else vb)
    return out
