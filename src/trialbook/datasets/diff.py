"""Differences between two dataset manifests: files added, removed and changed per split,
and per-class image and instance deltas, as data and as a short text for error messages.

Per-class deltas are matched by class name, so a reordered or extended ``names`` list
still compares class by class.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import zip_longest
from typing import Any

from trialbook.datasets.manifest import Manifest, SplitManifest
from trialbook.datasets.source import SPLITS


@dataclass(frozen=True)
class ClassDelta:
    """One class whose counts differ between the two manifests (in one split)."""

    name: str
    images_before: int
    images_after: int
    instances_before: int
    instances_after: int

    @property
    def images_delta(self) -> int:
        return self.images_after - self.images_before

    @property
    def instances_delta(self) -> int:
        return self.instances_after - self.instances_before

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "images_before": self.images_before,
            "images_after": self.images_after,
            "images_delta": self.images_delta,
            "instances_before": self.instances_before,
            "instances_after": self.instances_after,
            "instances_delta": self.instances_delta,
        }


@dataclass(frozen=True)
class SplitDiff:
    """One split. ``status``: "unchanged", "changed", "added" (only in the new manifest) or
    "removed" (only in the old one). Paths are relative to the dataset root, sorted."""

    split: str
    status: str
    definition_before: tuple[str, ...] | None
    definition_after: tuple[str, ...] | None
    images_before: int
    images_after: int
    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]
    classes: tuple[ClassDelta, ...]

    @property
    def clean(self) -> bool:
        return self.status == "unchanged"

    @property
    def definition_changed(self) -> bool:
        return self.definition_before != self.definition_after

    def to_dict(self) -> dict[str, Any]:
        return {
            "split": self.split,
            "status": self.status,
            "definition_before": _list_or_none(self.definition_before),
            "definition_after": _list_or_none(self.definition_after),
            "images_before": self.images_before,
            "images_after": self.images_after,
            "added": list(self.added),
            "removed": list(self.removed),
            "changed": list(self.changed),
            "classes": [c.to_dict() for c in self.classes],
        }


@dataclass(frozen=True)
class ManifestDiff:
    """What changed from ``old`` to ``new``. ``clean`` when the digests are equal."""

    old_digest: str
    new_digest: str
    class_names_before: tuple[str, ...]
    class_names_after: tuple[str, ...]
    splits: dict[str, SplitDiff]

    @property
    def clean(self) -> bool:
        return self.old_digest == self.new_digest

    @property
    def class_names_changed(self) -> bool:
        return self.class_names_before != self.class_names_after

    def to_dict(self) -> dict[str, Any]:
        return {
            "clean": self.clean,
            "old_digest": self.old_digest,
            "new_digest": self.new_digest,
            "class_names_before": list(self.class_names_before),
            "class_names_after": list(self.class_names_after),
            "splits": {name: s.to_dict() for name, s in self.splits.items()},
        }

    def short_text(self, limit: int = 10) -> str:
        """A few lines for a human: per split the counts, up to ``limit`` example paths and
        up to ``limit`` per-class deltas."""
        if self.clean:
            return f"dataset unchanged ({self.new_digest[:12]})"
        lines = [f"dataset changed: {self.old_digest[:12]} -> {self.new_digest[:12]}"]
        if self.class_names_changed:
            before, after = self.class_names_before, self.class_names_after
            gone = [n for n in before if n not in after]
            new = [n for n in after if n not in before]
            text = f"class names: {len(before)} -> {len(after)} classes"
            if new:
                text += f"; added {_names(new, limit)}"
            if gone:
                text += f"; removed {_names(gone, limit)}"
            if not new and not gone:
                text += " (same names, new order: class ids changed)"
            lines.append(text)
        for split in self.splits.values():
            lines.extend(_split_text(split, limit))
        return "\n".join(lines)


def diff_manifests(old: Manifest, new: Manifest) -> ManifestDiff:
    """Compare two manifests split by split (files by path, counts by class name)."""
    splits: dict[str, SplitDiff] = {}
    for name in SPLITS:
        a, b = old.splits.get(name), new.splits.get(name)
        if a is None and b is None:
            continue
        same = a is not None and b is not None and old.split_digests[name] == new.split_digests[name]
        splits[name] = _diff_split(name, a, b, old.class_names, new.class_names, same)
    return ManifestDiff(
        old_digest=old.digest,
        new_digest=new.digest,
        class_names_before=old.class_names,
        class_names_after=new.class_names,
        splits=splits,
    )


def _diff_split(
    name: str,
    a: SplitManifest | None,
    b: SplitManifest | None,
    names_a: tuple[str, ...],
    names_b: tuple[str, ...],
    same: bool,
) -> SplitDiff:
    if same:
        assert a is not None
        return SplitDiff(
            name, "unchanged", a.definition, a.definition, a.image_count, a.image_count, (), (), (), ()
        )
    files_a = a.files() if a is not None else {}
    files_b = b.files() if b is not None else {}
    added = tuple(sorted(p for p in files_b if p not in files_a))
    removed = tuple(sorted(p for p in files_a if p not in files_b))
    changed = tuple(sorted(p for p, e in files_b.items() if p in files_a and files_a[p] != e))
    counts_a = _class_counts(a, names_a)
    counts_b = _class_counts(b, names_b)
    classes = []
    for cls in list(counts_b) + [c for c in counts_a if c not in counts_b]:
        ia, na = counts_a.get(cls, (0, 0))
        ib, nb = counts_b.get(cls, (0, 0))
        if (ia, na) != (ib, nb):
            classes.append(ClassDelta(cls, ia, ib, na, nb))
    status = "added" if a is None else "removed" if b is None else "changed"
    return SplitDiff(
        split=name,
        status=status,
        definition_before=a.definition if a is not None else None,
        definition_after=b.definition if b is not None else None,
        images_before=a.image_count if a is not None else 0,
        images_after=b.image_count if b is not None else 0,
        added=added,
        removed=removed,
        changed=changed,
        classes=tuple(classes),
    )


def _class_counts(split: SplitManifest | None, names: tuple[str, ...]) -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    if split is None:
        return out
    for i, cls in enumerate(names):
        images, instances = out.get(cls, (0, 0))
        out[cls] = (images + split.class_images[i], instances + split.class_instances[i])
    return out


def _split_text(split: SplitDiff, limit: int) -> list[str]:
    if split.status == "unchanged":
        return [f"{split.split}: unchanged"]
    lines = [_split_head(split)]
    if split.status == "changed":
        lines += _changed_files(split, limit)
    lines += _class_lines(split, limit)
    return lines


def _split_head(split: SplitDiff) -> str:
    """The first line about a split that is not unchanged."""
    if split.status == "added":
        return f"{split.split}: new split ({split.images_after} images)"
    if split.status == "removed":
        return f"{split.split}: split removed (had {split.images_before} images)"
    return (
        f"{split.split}: {len(split.added)} added, {len(split.removed)} removed, "
        f"{len(split.changed)} changed ({split.images_before} -> "
        f"{split.images_after} images)"
    )


def _changed_files(split: SplitDiff, limit: int) -> list[str]:
    """A changed split's definition change and example files, with a count of the rest."""
    lines = []
    if split.definition_changed:
        lines.append(
            f"  definition: {_list_or_none(split.definition_before)} -> "
            f"{_list_or_none(split.definition_after)}"
        )
    examples = _examples(split, limit)
    lines.extend(f"  {mark} {path}" for mark, path in examples)
    hidden = len(split.added) + len(split.removed) + len(split.changed) - len(examples)
    if hidden > 0:
        lines.append(f"  ... and {hidden} more file{'s' if hidden != 1 else ''}")
    return lines


def _class_lines(split: SplitDiff, limit: int) -> list[str]:
    """Up to ``limit`` classes whose counts changed, with a count of the rest."""
    lines = [
        f"  {delta.name}: images {_signed(delta.images_delta)} ({delta.images_before} -> "
        f"{delta.images_after}), instances {_signed(delta.instances_delta)} "
        f"({delta.instances_before} -> {delta.instances_after})"
        for delta in split.classes[:limit]
    ]
    if len(split.classes) > limit:
        lines.append(f"  ... and {len(split.classes) - limit} more classes changed")
    return lines


def _examples(split: SplitDiff, limit: int) -> list[tuple[str, str]]:
    """Up to ``limit`` paths taken in turn from added, removed and changed, then grouped."""
    picked: dict[str, list[str]] = {"+": [], "-": [], "~": []}
    taken = 0
    for trio in zip_longest(split.added, split.removed, split.changed):
        for mark, path in zip("+-~", trio, strict=True):
            if path is not None and taken < limit:
                picked[mark].append(path)
                taken += 1
        if taken >= limit:
            break
    return [(mark, path) for mark in "+-~" for path in picked[mark]]


def _signed(n: int) -> str:
    return f"+{n}" if n > 0 else str(n)


def _names(names: list[str], limit: int) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _list_or_none(value: tuple[str, ...] | None) -> list[str] | None:
    return list(value) if value is not None else None
