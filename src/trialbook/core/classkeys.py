"""The metric keys of one class and of recall at a fixed precision (issue 16), named once.

* ``metrics/AP50-95(B)/<class>`` and ``metrics/AP50(B)/<class>``: a class's AP, per epoch
  (the Ultralytics callback) and in evaluations; ``(M)`` masks, ``(P)`` poses;
* ``metrics/R@P0.95(B)`` and ``metrics/R@P0.95(B)/<class>``: the highest recall whose
  precision is at least the protocol's precision level (``Protocol.precision_level``,
  default 0.95; the key follows it: ``R@P0.9``); 0 when never reached.
"""

from __future__ import annotations

DEFAULT_LEVEL = 0.95  # Protocol.precision_level's default
PART = {"detect": "B", "obb": "B", "segment": "M", "pose": "P"}


def level_text(level: float) -> str:
    """``0.95`` -> ``"0.95"``, ``0.9`` -> ``"0.9"``: the level as the key spells it."""
    return f"{level:g}"


def ap_key(cls: str, *, iou: str = "50-95", part: str = "B") -> str:
    """``metrics/AP50-95(B)/pallet`` (``iou`` ``"50-95"`` or ``"50"``)."""
    return f"metrics/AP{iou}({part})/{cls}"


def recall_key(level: float, cls: str | None = None, *, part: str = "B") -> str:
    """``metrics/R@P0.95(B)``, or ``metrics/R@P0.95(B)/pallet`` for one class."""
    key = f"metrics/R@P{level_text(level)}({part})"
    return f"{key}/{cls}" if cls is not None else key
