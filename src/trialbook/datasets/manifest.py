"""Dataset manifests: every file of every split with its size and blake3 hash, per-class
counts, and the digests that identify a dataset version.

Identity (all digests are blake3, full hex; JSON is canonical: ``sort_keys=True``,
``separators=(",", ":")``, ``ensure_ascii=True``):

- a file list (a split's images, or its labels), sorted by path, is summarised by its count
  and three column digests: of its paths joined by NUL (UTF-8; paths are relative to the
  dataset root with '/' separators), of its sizes joined by commas, and of its content
  hashes joined by commas;
- a split digest hashes the JSON of ``{"format", "class_names", "split", "definition",
  "images", "labels"}``, the last two being those summaries;
- the dataset digest hashes the JSON of ``{"format", "class_names", "splits": {split:
  split digest}}``.

Counts (instances, backgrounds, per-class numbers) are derived from the label files, which
the digests cover, so they are not hashed again. ``build_manifest`` lives in ``build``.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from blake3 import blake3

from trialbook.datasets.source import SPLITS
from trialbook.errors import IntegrityError, InvalidInput

FORMAT = "trialbook.manifest/1"
SHORT = 12


class FileEntry(NamedTuple):
    """One file: path relative to the dataset root ('/' separators), size, blake3 hex."""

    path: str
    size: int
    hash: str


@dataclass(frozen=True)
class SplitManifest:
    """One split: its definition (entries relative to the root), files sorted by path, and
    counts. ``class_images[i]`` is the number of images with at least one row of class
    ``i``; ``class_instances[i]`` the number of rows of class ``i``. An image is a
    background when it has no label file or an empty one."""

    name: str
    definition: tuple[str, ...]
    images: tuple[FileEntry, ...] = field(repr=False)
    labels: tuple[FileEntry, ...] = field(repr=False)
    backgrounds: int
    class_images: tuple[int, ...]
    class_instances: tuple[int, ...]

    @property
    def image_count(self) -> int:
        return len(self.images)

    @property
    def label_count(self) -> int:
        return len(self.labels)

    @property
    def instances(self) -> int:
        return sum(self.class_instances)

    @property
    def bytes(self) -> int:
        return sum(e.size for e in self.images) + sum(e.size for e in self.labels)

    def files(self) -> dict[str, FileEntry]:
        """Images and labels together, by path."""
        out = {e.path: e for e in self.images}
        out.update((e.path, e) for e in self.labels)
        return out


@dataclass(frozen=True)
class Manifest:
    """A dataset version's manifest. ``digest`` and ``split_digests`` are computed from the
    content when the manifest is made, so they always agree with it."""

    class_names: tuple[str, ...]
    splits: Mapping[str, SplitManifest]
    digest: str = field(init=False)
    split_digests: Mapping[str, str] = field(init=False)

    def __post_init__(self) -> None:
        n = len(self.class_names)
        for name, split in self.splits.items():
            if name not in SPLITS or split.name != name:
                raise InvalidInput(f"manifest split {name!r} is not one of {SPLITS}")
            if len(split.class_images) != n or len(split.class_instances) != n:
                raise InvalidInput(f"manifest split {name!r} counts do not match {n} classes")
        ordered = {s: self.splits[s] for s in SPLITS if s in self.splits}
        object.__setattr__(self, "splits", ordered)
        digests = {s: _split_digest(self.class_names, split) for s, split in ordered.items()}
        object.__setattr__(self, "split_digests", digests)
        object.__setattr__(
            self,
            "digest",
            _hash_json({"format": FORMAT, "class_names": list(self.class_names), "splits": digests}),
        )

    @property
    def short(self) -> str:
        return self.digest[:SHORT]

    def summary(self) -> dict[str, Any]:
        """Per-split and per-class counts, JSON-able."""
        splits: dict[str, Any] = {}
        for name, split in self.splits.items():
            splits[name] = {
                "digest": self.split_digests[name],
                "definition": list(split.definition),
                "images": split.image_count,
                "labels": split.label_count,
                "backgrounds": split.backgrounds,
                "instances": split.instances,
                "bytes": split.bytes,
                "classes": [
                    {
                        "id": i,
                        "name": cls,
                        "images": split.class_images[i],
                        "instances": split.class_instances[i],
                    }
                    for i, cls in enumerate(self.class_names)
                ],
            }
        return {
            "digest": self.digest,
            "short": self.short,
            "class_names": list(self.class_names),
            "splits": splits,
        }

    def to_bytes(self) -> bytes:
        """Gzip'd JSON (columnar per split); ``Manifest.from_bytes`` gives back an equal
        manifest. Deterministic: the same manifest always gives the same bytes."""
        doc: dict[str, Any] = {
            "format": FORMAT,
            "digest": self.digest,
            "class_names": list(self.class_names),
            "splits": {},
        }
        for name, split in self.splits.items():
            doc["splits"][name] = {
                "definition": list(split.definition),
                "images": _columns(split.images),
                "labels": _columns(split.labels),
                "backgrounds": split.backgrounds,
                "class_images": list(split.class_images),
                "class_instances": list(split.class_instances),
            }
        raw = json.dumps(doc, separators=(",", ":"), ensure_ascii=True).encode("ascii")
        return gzip.compress(raw, compresslevel=6, mtime=0)

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        """Read ``to_bytes`` output. ``InvalidInput`` when it is not a manifest,
        ``IntegrityError`` when its content does not match its recorded digest."""
        try:
            doc = json.loads(gzip.decompress(data))
        except (OSError, EOFError, ValueError) as exc:
            raise InvalidInput(f"not a trialbook manifest: {exc}") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            got = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
            raise InvalidInput(f"not a trialbook manifest (format {got!r}, expected {FORMAT!r})")
        try:
            splits = {
                name: SplitManifest(
                    name=name,
                    definition=tuple(s["definition"]),
                    images=_rows(s["images"]),
                    labels=_rows(s["labels"]),
                    backgrounds=int(s["backgrounds"]),
                    class_images=tuple(int(v) for v in s["class_images"]),
                    class_instances=tuple(int(v) for v in s["class_instances"]),
                )
                for name, s in doc["splits"].items()
            }
            manifest = cls(class_names=tuple(doc["class_names"]), splits=splits)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidInput(f"malformed trialbook manifest: {exc!r}") from None
        if manifest.digest != doc.get("digest"):
            raise IntegrityError(
                f"manifest content has digest {manifest.short}, but it is "
                f"recorded as {str(doc.get('digest'))[:SHORT]}"
            )
        return manifest


def _columns(entries: tuple[FileEntry, ...]) -> dict[str, list[Any]]:
    return {
        "path": [e.path for e in entries],
        "size": [e.size for e in entries],
        "hash": [e.hash for e in entries],
    }


def _rows(columns: dict[str, list[Any]]) -> tuple[FileEntry, ...]:
    paths, sizes, hashes = columns["path"], columns["size"], columns["hash"]
    return tuple(map(FileEntry._make, zip(paths, sizes, hashes, strict=True)))


def _hash_json(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return blake3(text.encode("ascii")).hexdigest()


def _files_digest(entries: tuple[FileEntry, ...]) -> dict[str, Any]:
    """Digests of the path, size and hash columns of sorted entries: paths joined by NUL
    (which no path contains; UTF-8, undecodable bytes kept as they were), sizes and hashes
    joined by commas."""
    paths, sizes, hashes = zip(*entries, strict=True) if entries else ((), (), ())
    return {
        "count": len(entries),
        "paths": blake3("\0".join(paths).encode("utf-8", "surrogateescape")).hexdigest(),
        "sizes": blake3(",".join(map(str, sizes)).encode("ascii")).hexdigest(),
        "hashes": blake3(",".join(hashes).encode("utf-8", "surrogateescape")).hexdigest(),
    }


def _split_digest(class_names: tuple[str, ...], split: SplitManifest) -> str:
    return _hash_json(
        {
            "format": FORMAT,
            "class_names": list(class_names),
            "split": split.name,
            "definition": list(split.definition),
            "images": _files_digest(split.images),
            "labels": _files_digest(split.labels),
        }
    )


__all__ = ["FORMAT", "FileEntry", "Manifest", "SplitManifest"]
