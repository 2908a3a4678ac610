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


# Keys that say where or how a run is kept, not what is trained (Ultralytics' names): left
# out of name suggestions, of the config differences in compare and the exports, and of
# the noise estimate's grouping (``core.noise``). A nested key counts by its last part.
BOOKKEEPING_KEYS = frozenset(
    {
        # where the run is kept, and under what name
        "name",
        "project",
        "save_dir",
        "exist_ok",
        "resume",
        # where and how fast it runs
        "device",
        "workers",
        "cache",
        # what it prints and saves besides the weights
        "verbose",
        "plots",
        "save",
        "save_period",
        "save_json",
        "save_txt",
        "save_conf",
        "save_crop",
        "save_frames",
        "show",
        "show_labels",
        "show_conf",
        "show_boxes",
        "line_width",
        "visualize",
        "profile",
        # settings of other modes (predict, track), not of training
        "mode",
        "source",
        "tracker",
        "stream_buffer",
        "vid_stride",
        # validation during training (whether, not how: the metric's definition is elsewhere)
        "val",
    }
)

# ``run.env`` key under which a tracker records what the user asked for: a mapping of the
# flat keys and values given (for Ultralytics runs, those that differ from Ultralytics'
# defaults, as given, before Ultralytics resolves ``optimizer=auto``), or a list of keys
# whose values are then taken from the config. A run without it asked for every key.
ASKED_ENV_KEY = "config_asked"

# A config holding at least this share of the training library's default keys is a whole
# config (an Ultralytics ``args.yaml``), not a list of the keys someone chose.
WHOLE_SHARE = 0.5


def is_bookkeeping(key: str) -> bool:
    """True for a flat key whose last dotted part is a bookkeeping key."""
    return key.rsplit(".", 1)[-1] in BOOKKEEPING_KEYS


def training_diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """:func:`diff` of two flat configs without the bookkeeping keys."""
    return {k: v for k, v in diff(a, b).items() if not is_bookkeeping(k)}


def is_whole(flat: Mapping[str, Any], defaults: Mapping[str, Any]) -> bool:
    """True when the flat config holds at least :data:`WHOLE_SHARE` of the keys of
    ``defaults`` (the training library's defaults; empty when unknown: never whole)."""
    return bool(defaults) and len(set(flat) & set(defaults)) >= WHOLE_SHARE * len(defaults)


def non_default(flat: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The keys of a whole flat config whose values differ from ``defaults``. Keys that
    ``defaults`` does not know (another version's arguments, ``save_dir``) are left out:
    whether they were chosen cannot be told."""
    return {k: v for k, v in flat.items() if k in defaults and v != defaults[k]}


def asked(
    config: Mapping[str, Any] | None,
    env: Mapping[str, Any] | None,
    defaults: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The part of a run's ``config`` (flattened) the user asked for.

    1. ``env[ASKED_ENV_KEY]`` as a mapping: those keys and values, flattened (what was
       given, even where the training library resolved it to another value later);
    2. as a list of keys: those keys of the config;
    3. otherwise, when ``defaults`` (the training library's, e.g. Ultralytics') is given
       and the config is whole (:func:`is_whole`, an imported ``args.yaml``): the keys
       that differ from ``defaults`` (:func:`non_default`);
    4. otherwise the whole config.

    Anything else under ``ASKED_ENV_KEY`` (text, a number) is not a record of what was
    asked and is ignored (rules 3 and 4 apply)."""
    flat = flatten(config)
    recorded = (env or {}).get(ASKED_ENV_KEY)
    if isinstance(recorded, Mapping):
        return flatten(recorded)
    if isinstance(recorded, list):
        wanted = {str(k) for k in recorded}
        return {k: v for k, v in flat.items() if k in wanted}
    if defaults and is_whole(flat, defaults):
        return non_default(flat, defaults)
    return flat


def split_asked(
    config: Mapping[str, Any] | None,
    env: Mapping[str, Any] | None,
    defaults: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(asked, rest)`` of a run's flat config: what to show first and what to fold.
    ``asked`` is :func:`asked`; ``rest`` the config's other keys."""
    flat = flatten(config)
    first = asked(config, env, defaults)
    return first, {k: v for k, v in flat.items() if k not in first}
