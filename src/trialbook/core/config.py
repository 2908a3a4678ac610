"""Run configuration: nested mappings flattened to readable dotted keys."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from trialbook.errors import InvalidInput

MAX_DEPTH = 32


def _plain(value: Any, key: str, depth: int = 0) -> Any:
    """A JSON-safe version of a config value (lists nested deeper than :data:`MAX_DEPTH`,
    or holding themselves, are refused)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (list, tuple)):
        if depth >= MAX_DEPTH:
            raise InvalidInput(f"config value {key!r} is nested more than {MAX_DEPTH} levels deep")
        return [_plain(v, key, depth + 1) for v in value]
    if hasattr(value, "item"):
        try:
            return _plain(value.item(), key, depth)
        except InvalidInput:
            raise
        except Exception:
            pass
    return str(value)


def flatten(config: Mapping[str, Any] | None, *, sep: str = ".") -> dict[str, Any]:
    """Flatten nested mappings: ``{"hyp": {"lr0": 0.01}}`` -> ``{"hyp.lr0": 0.01}``.

    Lists stay lists; any other object becomes its ``str``. Keys keep their order.
    A mapping that contains itself (directly or deeper) is refused with ``InvalidInput``
    naming the key where the cycle closes, as is a config nested deeper than
    :data:`MAX_DEPTH` levels.
    """
    out: dict[str, Any] = {}
    if config is not None and not isinstance(config, Mapping):
        raise InvalidInput(f"config must be a mapping of keys to values, not {type(config).__name__}")

    def walk(prefix: str, node: Mapping[str, Any], seen: tuple[int, ...]) -> None:
        if len(seen) > MAX_DEPTH:
            raise InvalidInput(f"config is nested more than {MAX_DEPTH} levels deep (at {prefix!r})")
        for k, v in node.items():
            key = f"{prefix}{sep}{k}" if prefix else str(k)
            if isinstance(v, Mapping) and v:
                if id(v) in seen:
                    raise InvalidInput(f"config holds itself: {key!r} refers back to a mapping holding it")
                walk(key, v, (*seen, id(v)))
            else:
                out[key] = _plain(dict(v) if isinstance(v, Mapping) else v, key)

    if config:
        walk("", config, (id(config),))
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
