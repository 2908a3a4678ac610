"""Suggest a run name, ``<version>_<what_changed>``, from the config's difference to the parent.

:func:`suggest_name` builds the name in four steps:

1. **Version.** The parent's ``vN`` prefix (``v3`` in ``v3b_x``) gives ``v(N+1)``; with no
   parent, or a parent name without a ``vN`` prefix, the version is ``v1``.
2. **What changed.** Both configs are flattened (``core.config.flatten``) and compared
   (``core.config.diff``). Keys that do not change what is trained are ignored:
   ``core.noise.RUN_LOCAL_KEYS`` (name, project, save_dir, exist_ok, resume) and
   :data:`IGNORED_KEYS` (workers, device, verbose, plots, save, save_period, cache). Each
   remaining key gives one token, named by the key's last dotted part:

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
``{lr0: 0.0005, mosaic: 0.0}`` give ``v4_lr0_0.0005_no_mosaic``.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Collection, Mapping
from typing import Any

from trialbook.core.config import diff, flatten
from trialbook.core.naming import DEFAULT_PATTERN, check_name
from trialbook.core.noise import RUN_LOCAL_KEYS, last_part

IGNORED_KEYS = ("workers", "device", "verbose", "plots", "save", "save_period", "cache")
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


def what_changed(parent_config: Mapping[str, Any] | None, config: Mapping[str, Any]) -> str:
    """The ``<what_changed>`` part of a name (see the module docstring)."""
    ignored = set(RUN_LOCAL_KEYS) | set(IGNORED_KEYS)
    changes = diff(flatten(parent_config), flatten(config))
    keys = sorted((k for k in changes if last_part(k) not in ignored), key=_order)
    tokens: list[str] = []
    for key in keys:
        token = change_token(key, changes[key][1])
        if token and token not in tokens:
            tokens.append(token)
        if len(tokens) == MAX_TOKENS:
            break
    return "_".join(tokens) or NOTHING_CHANGED


def next_version(parent_name: str | None) -> int:
    """``N + 1`` for a parent named ``vN...``; ``1`` otherwise."""
    m = _VERSION.match(parent_name or "")
    return int(m.group(1)) + 1 if m else 1


def suggest_name(
    parent_name: str | None,
    parent_config: Mapping[str, Any] | None,
    config: Mapping[str, Any],
    *,
    existing: Collection[str] = frozenset(),
    pattern: str = DEFAULT_PATTERN,
) -> str:
    """A new run name ``v(N+1)_<what_changed>``, unique in ``existing``."""
    rest = what_changed(parent_config, config)
    version = next_version(parent_name)
    while True:
        for letter in ("", *string.ascii_lowercase[1:]):
            name = f"v{version}{letter}_{rest}"
            if name not in existing:
                return check_name(name, pattern)
        version += 1
