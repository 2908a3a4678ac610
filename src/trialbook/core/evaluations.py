"""What an evaluation may hold (``Run.log_eval``), checked once before it is stored.

* ``metrics``: as ``Run.log`` (``core.metrics.check_metrics``); NaN is kept and flagged.
* ``per_class_ap``: class name -> AP, a finite number in ``[0, 1]``; names are text, and
  two keys that name the same class (``1`` and ``"1"``) are refused, not merged.
* ``class_names``: a list of distinct non-empty names (a plain string is refused: it would
  be split into letters).
* ``confusion_matrix``: square, every count finite and ``>= 0``; ``N x N`` for ``N`` class
  names, or ``(N + 1) x (N + 1)`` with Ultralytics' background row and column.
* ``latency_ms``: a finite number ``>= 0``; ``device`` is text.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from trialbook.core.metrics import check_metrics, check_value
from trialbook.core.text import check_name, check_text
from trialbook.errors import InvalidInput


@dataclass(frozen=True)
class CheckedEvaluation:
    metrics: dict[str, float]
    per_class_ap: dict[str, float]
    class_names: list[str] | None
    confusion_matrix: list[list[float]] | None
    latency_ms: float | None
    device: str | None


def _per_class(per_class_ap: Mapping[Any, Any]) -> dict[str, float]:
    if not isinstance(per_class_ap, Mapping):
        kind = type(per_class_ap).__name__
        raise InvalidInput(f"log_eval: per_class_ap must map class names to AP, not {kind}")
    out: dict[str, float] = {}
    for key, value in per_class_ap.items():
        name = check_name("log_eval: per_class_ap class", str(key) if isinstance(key, int) else key)
        if name in out:
            raise InvalidInput(f"log_eval: per_class_ap names class {name!r} twice ({key!r} and another key)")
        ap = check_value(f"per_class_ap[{name}]", value)
        if not 0.0 <= ap <= 1.0:  # NaN fails this too
            raise InvalidInput(f"log_eval: per_class_ap[{name}] = {ap} is not an AP (a number in [0, 1])")
        out[name] = ap
    return out


def _class_names(class_names: Any) -> list[str]:
    if isinstance(class_names, (str, bytes)) or not isinstance(class_names, Sequence):
        raise InvalidInput(
            "log_eval: class_names must be a list of names, e.g. ['pallet', 'forklift'], "
            f"not {class_names!r:.60}"
        )
    names = [check_name(f"log_eval: class_names[{i}]", n) for i, n in enumerate(class_names)]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InvalidInput(f"log_eval: class_names holds {name!r} twice")
        seen.add(name)
    return names


def _matrix(matrix: Any, names: list[str] | None) -> list[list[float]]:
    if isinstance(matrix, (str, bytes)) or not isinstance(matrix, Sequence):
        raise InvalidInput("log_eval: confusion_matrix must be a list of rows of counts")
    rows: list[list[float]] = []
    for i, row in enumerate(matrix):
        if isinstance(row, (str, bytes)) or not isinstance(row, Sequence):
            raise InvalidInput(f"log_eval: confusion_matrix row {i} is not a list of counts")
        cells = []
        for j, v in enumerate(row):
            count = check_value(f"confusion_matrix[{i}][{j}]", v)
            if not math.isfinite(count) or count < 0:
                raise InvalidInput(
                    f"log_eval: confusion_matrix[{i}][{j}] = {count} is not a count (finite, >= 0)"
                )
            cells.append(count)
        rows.append(cells)
    if any(len(r) != len(rows) for r in rows):
        raise InvalidInput("log_eval: confusion_matrix must be square")
    if names is not None and len(names) not in (len(rows), len(rows) - 1):
        raise InvalidInput(
            f"log_eval: confusion_matrix is {len(rows)}x{len(rows)} but {len(names)} class names "
            f"were given (it must be {len(names)}x{len(names)}, or {len(names) + 1}x{len(names) + 1} "
            "with a background row)"
        )
    return rows


def check_evaluation(
    metrics: Mapping[str, Any] | None,
    per_class_ap: Mapping[Any, Any] | None,
    confusion_matrix: Any,
    class_names: Any,
    latency_ms: Any,
    device: Any,
) -> CheckedEvaluation:
    """The evaluation's parts, checked (see the module docstring); ``InvalidInput``
    naming the part and the item otherwise."""
    names = _class_names(class_names) if class_names is not None else None
    latency = None
    if latency_ms is not None:
        latency = check_value("latency_ms", latency_ms)
        if not math.isfinite(latency) or latency < 0:
            raise InvalidInput(f"log_eval: latency_ms {latency} must be a finite number >= 0")
    return CheckedEvaluation(
        metrics=check_metrics(metrics or {}),
        per_class_ap=_per_class(per_class_ap or {}),
        class_names=names,
        confusion_matrix=_matrix(confusion_matrix, names) if confusion_matrix is not None else None,
        latency_ms=latency,
        device=check_text("log_eval: device", device, max_len=200) if device is not None else None,
    )
