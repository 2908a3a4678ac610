"""References typed by users: ``NAME:TAG`` for a dataset version, and the labels a
dataset name or a tag may use."""

from __future__ import annotations

from trialbook.errors import InvalidInput

MAX_LABEL = 200


def parse_dataset_ref(ref: str, *, tag_required: bool = True) -> tuple[str, str | None]:
    """``pallets:v3`` -> ``("pallets", "v3")``; ``pallets`` -> ``("pallets", None)`` when
    ``tag_required`` is false. Raises ``InvalidInput`` for anything else."""
    name, sep, tag = ref.partition(":")
    if not name or (sep and not tag) or (tag_required and not sep):
        raise InvalidInput(f"dataset {ref!r} must be NAME:TAG, e.g. pallets:v3")
    return name, (tag or None)


def check_label(what: str, value: str) -> str:
    """``value`` when it is a valid dataset name or tag: letters, digits, ``.``, ``_``,
    ``-``, at most :data:`MAX_LABEL` characters; otherwise ``InvalidInput`` naming ``what``."""
    if not value or not all(c.isalnum() or c in "._-" for c in value) or len(value) > MAX_LABEL:
        raise InvalidInput(
            f"{what} {value!r} must be letters, digits, '.', '_' or '-' (at most {MAX_LABEL} characters)"
        )
    return value
