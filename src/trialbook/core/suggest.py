"""Suggest a run name, ``<version>_<what_changed>``, from the config's difference to the parent.

:func:`suggest_name` builds the name in four steps:

1. **Version.** The parent's ``vN`` prefix (``v3`` in ``v3b_x``) gives ``v(N+1)``; with no
   parent, or a parent name without a ``vN`` prefix, the version is ``v1``.
2. **What changed** (:func:`config_changes`). Both configs are flattened
   (``core.config.flatten``). The bookkeeping keys, which say where a run is kept and not
   what is trained, are ignored: ``core.config.BOOKKEEPING_KEYS`` (name, project,
   save_dir, exist_ok, resume, device, workers, cache, verbose, plots, save, ...), matched
   on a key's last dotted part. What the parent trained with is, for each key, the value
   it *asked for* (``parent_asked``, see ``core.config.asked``), else the training
   library's default (``defaults``, e.g. Ultralytics'), else its recorded config. So a
   value the library resolved by itself (``optimizer=auto`` becoming ``AdamW`` with its
   own ``lr0``) is not taken for a change. What the new run trains with depends on what
   the new config is:

   * a **whole** config (``partial=False``: an Ultralytics ``args.yaml``, reduced to the
     keys that differ from the defaults, or any config compared as it is): a key it does
     not hold is at its default, so a key the parent asked for and the new config leaves
     out goes back to its default (``epochs: 30`` -> ``epochs_100``), and one with no
     default is removed (``no_<key>``);
   * a **partial** config (``partial=True``: a file of the keys someone chose, as a user
     writes it): it says what the new run changes, so a key it does not mention is kept as
     the parent had it and is no change. To name a removal, write the key with ``null``
     (``no_<key>``); to go back to a default, write the default value.

   Each changed key gives one token, named by the key's last dotted part:

   * ``True`` -> ``<key>``; ``False`` -> ``no_<key>``;
   * ``0`` for an augmentation key (:data:`AUGMENT_KEYS`, e.g. mosaic, mixup, fliplr)
     -> ``no_<key>``; a key removed from the config (or set to ``None``) -> ``no_<key>``;
   * a number -> ``<key>_<value>``: whole numbers without a decimal part (``imgsz_640``),
     others with up to 6 significant digits (``lr0_0.0005``, ``lr0_1e-05``);
   * a string -> ``<key>_<value>``; a path keeps its file name without extension
     (``model_yolo11s`` for ``weights/yolo11s.pt``); a list joins its items with ``-``.

   Tokens are ordered by :data:`KEY_ORDER` (model, data, imgsz, epochs, batch, optimizer,
   lr0, lrf) and then alphabetically by key; at most :data:`MAX_TOKENS` (3) are kept.
   Each token is slugged to ``[a-z0-9_.-]`` and cut to :data:`MAX_TOKEN_LENGTH` (40)
   characters. If nothing changed the part is ``rerun``.
3. **Uniqueness.** If the name is in ``existing`` a letter is added to the version
   (``v4b_...``, ``v4c_...``, up to ``z``); if all are taken the next version is tried.
4. **Check.** The result is checked with ``core.naming.check_name`` against ``pattern``.

Example: parent ``v3_x`` with ``{lr0: 0.001, mosaic: 1.0}`` and a new config
``{lr0: 0.0005, mosaic: 0.0}`` give ``v4_lr0_0.0005_no_mosaic``. With a partial new config
``{lr0: 0.0005}`` the name is ``v4_lr0_0.0005``: mosaic stays as the parent had it.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Collection, Mapping
from typing import Any

from trialbook.core.config import flatten, is_bookkeeping
from trialbook.core.naming import DEFAULT_PATTERN, check_name
from trialbook.core.noise import last_part

AUGMENT_KEYS = frozenset(
    {
        "hsv_h",
        "hsv_s",
        "hsv_v",
        "degrees",
        "translate",
        "scale",
        "shear",
        "perspective",
        "flipud",
        "fliplr",
        "bgr",
        "mosaic",
        "mixup",
        "cutmix",
        "copy_paste",
        "erasing",
        "close_mosaic",
        "augment",
        "auto_augment",
    }
)
KEY_ORDER = ("model", "data", "imgsz", "epochs", "batch", "optimizer", "lr0", "lrf")
MAX_TOKENS = 3
MAX_TOKEN_LENGTH = 40
NOTHING_CHANGED = "rerun"

_VERSION = re.compile(r"^v(\d+)")
_PATH_LIKE = re.compile(r"[/\\]|\.(pt|pth|onnx|engine|yaml|yml|json|txt)$", re.IGNORECASE)


def _slug(text: str) -> str:
    s = re.sub(r"[^a-z0-9_.\-]+", "_", text.lower())
    return re.sub(r"_+", "_", s).strip("_")


def _number(value: float) -> str:
    if isinstance(value, int) or (math.isfinite(value) and value.is_integer()):
        return str(int(value))
    text = f"{value:.6g}"
    return text.replace("e+", "e")


def _value(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _number(value)
    if isinstance(value, (list, tuple)):
        return "-".join(_value(v) for v in value)
    text = str(value)
    if _PATH_LIKE.search(text):
        name = re.split(r"[/\\]", text.rstrip("/\\"))[-1]
        stem, dot, _ = name.rpartition(".")
        text = stem if dot and stem else name
    return text


def change_token(key: str, value: Any) -> str:
    """The name token for one changed config key and its new value."""
    name = _slug(last_part(key)).lstrip(".-") or "key"
    if value is None or value is False:
        token = f"no_{name}"
    elif value is True:
        token = name
    elif name in AUGMENT_KEYS and isinstance(value, (int, float)) and value == 0:
        token = f"no_{name}"
    else:
        token = _slug(f"{name}_{_value(value)}")
    return token[:MAX_TOKEN_LENGTH].rstrip("_")


def _order(key: str) -> tuple[int, str, str]:
    part = last_part(key)
    rank = KEY_ORDER.index(part) if part in KEY_ORDER else len(KEY_ORDER)
    return rank, part, key


_MISSING: Any = object()


def _parent_value(
    key: str, parent: Mapping[str, Any], asked: Mapping[str, Any], defaults: Mapping[str, Any]
) -> Any:
    if key in asked:
        return asked[key]
    if key in defaults:
        return defaults[key]
    return parent.get(key, _MISSING)


def config_changes(
    parent_config: Mapping[str, Any] | None,
    config: Mapping[str, Any] | None,
    *,
    parent_asked: Mapping[str, Any] | None = None,
    defaults: Mapping[str, Any] | None = None,
    partial: bool = False,
) -> dict[str, tuple[Any, Any]]:
    """``{key: (parent value, new value)}`` for the training keys that change (step 2 of the
    module docstring), sorted by key; ``None`` stands for a key that is not there.

    ``parent_config``: the parent's recorded config; ``parent_asked``: the part of it the
    user asked for (``None``: all of it); ``defaults``: the training library's defaults
    (flat; ``None`` when unknown); ``partial``: ``config`` names only what changes."""
    parent = flatten(parent_config)
    new = flatten(config)
    chosen = parent if parent_asked is None else flatten(parent_asked)
    known = dict(defaults or {})
    out: dict[str, tuple[Any, Any]] = {}
    for key in sorted(set(chosen) | set(new)):
        if is_bookkeeping(key) or (partial and key not in new):
            continue
        before = _parent_value(key, parent, chosen, known)
        after = new[key] if key in new else known.get(key, _MISSING)
        if before is _MISSING or after is _MISSING or before != after:
            out[key] = (None if before is _MISSING else before, None if after is _MISSING else after)
    return out


def changes_part(changes: Mapping[str, tuple[Any, Any]]) -> str:
    """The ``<what_changed>`` part of a name for :func:`config_changes`' result."""
    tokens: list[str] = []
    for key in sorted(changes, key=_order):
        token = change_token(key, changes[key][1])
        if token and token not in tokens:
            tokens.append(token)
        if len(tokens) == MAX_TOKENS:
            break
    return "_".join(tokens) or NOTHING_CHANGED


def what_changed(
    parent_config: Mapping[str, Any] | None,
    config: Mapping[str, Any] | None,
    *,
    parent_asked: Mapping[str, Any] | None = None,
    defaults: Mapping[str, Any] | None = None,
    partial: bool = False,
) -> str:
    """The ``<what_changed>`` part of a name (see the module docstring)."""
    return changes_part(
        config_changes(parent_config, config, parent_asked=parent_asked, defaults=defaults, partial=partial)
    )


def next_version(parent_name: str | None) -> int:
    """``N + 1`` for a parent named ``vN...``; ``1`` otherwise."""
    m = _VERSION.match(parent_name or "")
    return int(m.group(1)) + 1 if m else 1


def suggest_name(
    parent_name: str | None,
    parent_config: Mapping[str, Any] | None,
    config: Mapping[str, Any] | None,
    *,
    existing: Collection[str] = frozenset(),
    pattern: str = DEFAULT_PATTERN,
    parent_asked: Mapping[str, Any] | None = None,
    defaults: Mapping[str, Any] | None = None,
    partial: bool = False,
) -> str:
    """A new run name ``v(N+1)_<what_changed>``, unique in ``existing``; the keyword
    arguments after ``pattern`` are :func:`config_changes`'."""
    rest = what_changed(parent_config, config, parent_asked=parent_asked, defaults=defaults, partial=partial)
    return unique_name(next_version(parent_name), rest, existing, pattern)


def unique_name(version: int, rest: str, existing: Collection[str], pattern: str = DEFAULT_PATTERN) -> str:
    """``v<version>[letter]_<rest>`` not in ``existing`` (step 3), checked (step 4)."""
    while True:
        for letter in ("", *string.ascii_lowercase[1:]):
            name = f"v{version}{letter}_{rest}"
            if name not in existing:
                return check_name(name, pattern)
        version += 1
