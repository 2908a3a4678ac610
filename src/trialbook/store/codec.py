"""The wire format of the remote store: every argument and result of the ``Store``
protocol as JSON, decoded back to the same types, and trialbook's errors as JSON.

Plain JSON carries what it can (strings, ints, bools, ``None``, finite floats, lists,
objects with string keys). The rest is tagged by a one-key marker starting with ``$``:

=========================================  ================================================
value                                      JSON
=========================================  ================================================
an entity (``core.entities`` dataclass)    ``{"$": "RunRecord", "id": ..., ...fields}``
NaN, +inf, -inf                            ``{"$f": "nan"}``, ``{"$f": "inf"}``, ``{"$f": "-inf"}``
a tuple                                    ``{"$t": [...]}``
a dict with a key that is no string, or    ``{"$d": [[key, value], ...]}``
starts with ``$``
=========================================  ================================================

so a plain JSON object never holds a key starting with ``$`` and decoding is unambiguous.
Any other iterable (a set, a generator, dict keys) travels as a list. Only the entities of
``core.entities`` are ever built from a document: a ``$`` naming anything else is refused.

An error travels as ``{"error": "NotFound", "message": "..."}`` and is raised again by
``decode_error`` as the same ``trialbook.errors`` class with the same message.

``READS`` and ``WRITES`` name the store methods the wire carries (every public method of
the ``Store`` protocol but ``transaction`` and ``close``): the server's allow-list and the
client's idea of which calls change the book.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from typing import Any, cast

from trialbook import errors
from trialbook.core import entities
from trialbook.errors import InvalidInput, TrialbookError

__all__ = [
    "ENTITIES",
    "ERRORS",
    "METHODS",
    "READS",
    "WRITES",
    "decode",
    "decode_error",
    "encode",
    "encode_error",
]

ENTITIES: dict[str, type] = {
    name: cls
    for name, cls in vars(entities).items()
    if isinstance(cls, type) and dataclasses.is_dataclass(cls) and cls.__module__ == entities.__name__
}

ERRORS: dict[str, type[TrialbookError]] = {
    name: cls
    for name, cls in vars(errors).items()
    if isinstance(cls, type) and issubclass(cls, TrialbookError)
}

READS = frozenset(
    {
        # projects
        "get_project",
        "list_projects",
        "protocol_history",
        # runs
        "get_run",
        "get_run_by_id",
        "find_runs",
        "list_runs",
        "get_runs_by_name",
        "run_names",
        "child_runs",
        # metrics
        "get_summaries",
        "get_history",
        "get_all_history",
        "history_since",
        # records
        "list_evaluations",
        "list_artifacts",
        "get_notes",
        "note_history",
        "search_notes",
        # decisions
        "list_decisions",
        "find_decision",
        "first_comparison_at",
        "list_ships",
        # datasets
        "get_dataset_version",
        "list_dataset_versions",
        "get_tag",
        "list_tags",
        # queries
        "run_rows",
        "runs_page",
        "project_counts",
        "project_datasets",
        "series_keys",
        "sparklines",
    }
)

WRITES = frozenset(
    {
        "ensure_project",
        "create_project",
        "update_protocol",
        "create_run",
        "set_run_status",
        "count_unwritten",
        "log_batch",
        "add_evaluation",
        "add_artifact",
        "set_note",
        "add_decision",
        "record_comparison",
        "ship_run",
        "add_dataset_version",
        "add_tagged_version",
        "tag_version",
        "set_tag",
    }
)

METHODS = READS | WRITES

_FLOATS = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def encode(value: Any) -> Any:
    """``value`` as a JSON-compatible document (see the module docstring)."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"$f": _float_name(value)}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _encode_entity(value)
    if isinstance(value, tuple):
        return {"$t": [encode(v) for v in value]}
    if isinstance(value, Mapping):
        return _encode_mapping(value)
    if isinstance(value, (list, Iterable)) and not isinstance(value, (bytes, bytearray)):
        return [encode(v) for v in value]
    raise InvalidInput(f"the remote store cannot send a {type(value).__name__} ({value!r:.80})")


def _float_name(value: float) -> str:
    if math.isnan(value):
        return "nan"
    return "inf" if value > 0 else "-inf"


def _encode_entity(value: Any) -> dict[str, Any]:
    name = type(value).__name__
    if ENTITIES.get(name) is not type(value):
        raise InvalidInput(f"the remote store cannot send a {name}: not an entity of trialbook.core.entities")
    doc: dict[str, Any] = {"$": name}
    for f in dataclasses.fields(cast(Any, value)):
        doc[f.name] = encode(getattr(value, f.name))
    return doc


def _encode_mapping(value: Mapping[Any, Any]) -> dict[str, Any]:
    if all(isinstance(k, str) and not k.startswith("$") for k in value):
        return {k: encode(v) for k, v in value.items()}
    return {"$d": [[encode(k), encode(v)] for k, v in value.items()]}


def decode(doc: Any) -> Any:
    """The value ``encode`` made ``doc`` from. Raises ``InvalidInput`` for a document
    that no ``encode`` makes (an unknown tag or entity, a bad field)."""
    if isinstance(doc, list):
        return [decode(v) for v in doc]
    if not isinstance(doc, dict):
        return doc
    if not any(k.startswith("$") for k in doc):
        return {k: decode(v) for k, v in doc.items()}
    if "$" in doc:
        return _decode_entity(doc)
    if len(doc) == 1:
        ((tag, body),) = doc.items()
        if tag == "$f" and body in _FLOATS:
            return _FLOATS[body]
        if tag == "$t" and isinstance(body, list):
            return tuple(decode(v) for v in body)
        if tag == "$d" and isinstance(body, list):
            return _decode_pairs(body)
    raise InvalidInput(f"the remote store got a document it cannot read: {str(doc)[:120]}")


def _decode_pairs(pairs: list[Any]) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for pair in pairs:
        if not (isinstance(pair, list) and len(pair) == 2):
            raise InvalidInput(f"the remote store got a bad mapping entry: {str(pair)[:120]}")
        key = decode(pair[0])
        if isinstance(key, (list, dict)):
            raise InvalidInput(f"the remote store got a mapping key that is no value: {str(pair[0])[:120]}")
        out[key] = decode(pair[1])
    return out


def _decode_entity(doc: dict[str, Any]) -> Any:
    name = doc["$"]
    cls = ENTITIES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise InvalidInput(f"the remote store got an unknown entity {name!r}")
    fields = {k: decode(v) for k, v in doc.items() if k != "$"}
    try:
        return cls(**fields)
    except TypeError as exc:
        raise InvalidInput(f"the remote store got a bad {name}: {exc}") from None


def encode_error(exc: TrialbookError) -> dict[str, str]:
    """``{"error": class name, "message": text}`` of one of trialbook's errors (a class
    that is not one of ``trialbook.errors``' own travels as its nearest base that is)."""
    cls: type = type(exc)
    while cls.__name__ not in ERRORS or ERRORS[cls.__name__] is not cls:
        cls = next(b for b in cls.__mro__[1:] if issubclass(b, TrialbookError))
    return {"error": cls.__name__, "message": str(exc)}


def decode_error(doc: Mapping[str, Any]) -> TrialbookError | None:
    """The error ``encode_error`` made ``doc`` from; ``None`` when ``doc`` is not one."""
    name, message = doc.get("error"), doc.get("message")
    cls = ERRORS.get(name) if isinstance(name, str) else None
    if cls is None or not isinstance(message, str):
        return None
    return cls(message)
