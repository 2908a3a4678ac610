"""Dataset versions in a book: tag, status, diff, show and list.

A version is a content-addressed manifest (``trialbook.datasets``) of a dataset's files;
its full manifest is kept as a blob in the book, its per-split and per-class counts and
split digests in the store. A tag (``pallets:v3``) names one version and never moves.
Pinning a run to a version at start is the book's (``Book.dataset_version``,
``Book.fingerprint``), so the Python API needs nothing from this layer.
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from typing_extensions import TypedDict

from trialbook.api import Book
from trialbook.core.entities import DatasetVersion
from trialbook.core.refs import check_label, parse_dataset_ref
from trialbook.errors import Conflict, InvalidInput, NotFound, StorageError

if TYPE_CHECKING:
    from trialbook.datasets import Manifest, ManifestDiff

DIFF_FILES_SHOWN = 100
DIFF_KINDS = ("added", "removed", "changed")


class VersionView(TypedDict):
    """``data show --json``, ``data list --json`` ``versions[]``."""

    name: str
    digest: str
    short: str
    tags: list[str]
    created_at: float
    source: str | None
    class_names: list[str]
    splits: dict[str, dict[str, Any]]


class TagResult(VersionView):
    """``data tag --json``: the version, its new tag, whether it was new, warnings."""

    tag: str
    created: bool
    warnings: list[str]


class VersionList(TypedDict):
    versions: list[VersionView]


class DatasetGroup(TypedDict):
    name: str
    versions: list[VersionView]


class DatasetsOverview(TypedDict):
    """``GET /api/v1/datasets``: versions grouped by dataset."""

    datasets: list[DatasetGroup]


class _DiffFields(TypedDict):
    clean: bool
    old_digest: str
    new_digest: str
    class_names_before: list[str]
    class_names_after: list[str]
    splits: dict[str, dict[str, Any]]
    added: dict[str, list[str]]
    removed: dict[str, list[str]]
    changed: dict[str, list[str]]


class DataStatus(_DiffFields):
    """``data status --json``: the working files against a version, and warnings about
    where a relative ``path:`` leads (``source_warnings``)."""

    dataset: str
    tag: str
    digest: str
    source: str
    working_digest: str
    warnings: list[str]


# "from" is a keyword: the functional form
_Ends = TypedDict("_Ends", {"from": str, "to": str, "from_digest": str, "to_digest": str})


class DatasetDiff(_DiffFields, _Ends):
    """``data diff --json`` and ``GET /api/v1/datasets/NAME/diff``."""


def _diff_fields(d: ManifestDiff, files: int | None = None) -> _DiffFields:
    """A diff as JSON, with the files added / removed / changed per split at the top;
    ``files`` cuts each list of names (the ``*_count`` keys keep the whole counts)."""
    out = d.to_dict()
    splits: dict[str, dict[str, Any]] = out["splits"]
    top: dict[str, dict[str, list[str]]] = {kind: {} for kind in DIFF_KINDS}
    for name, split in splits.items():
        for kind in DIFF_KINDS:
            names: list[str] = split.get(kind) or []
            if files is not None:
                split[f"{kind}_count"] = len(names)
                split[kind] = names = names[:files]
            if names:
                top[kind][name] = names
    return {
        "clean": out["clean"],
        "old_digest": out["old_digest"],
        "new_digest": out["new_digest"],
        "class_names_before": out["class_names_before"],
        "class_names_after": out["class_names_after"],
        "splits": splits,
        "added": top["added"],
        "removed": top["removed"],
        "changed": top["changed"],
    }


def version_view(book: Book, version: DatasetVersion) -> VersionView:
    tags = [t.tag for t in book.store.list_tags(version.name) if t.digest == version.digest]
    return {
        "name": version.name,
        "digest": version.digest,
        "short": version.digest[:12],
        "tags": tags,
        "created_at": version.created_at,
        "source": version.source,
        "class_names": version.class_names,
        "splits": version.splits,
    }


def source_warnings(source: str | os.PathLike[str]) -> list[str]:
    """Things about a dataset source that may surprise at training time: a relative
    ``path:`` in a data.yaml that names other files from another folder
    (``datasets.root``: it is resolved as the installed Ultralytics resolves it, and
    warned about only when the fingerprinted files may not be the trained ones)."""
    from trialbook.datasets.source import root_warnings

    return root_warnings(source)


def _version_of(name: str, manifest: Manifest, source: str, manifest_digest: str) -> DatasetVersion:
    splits = {}
    for split, counts in manifest.summary()["splits"].items():
        splits[split] = {**counts, "digest": manifest.split_digests[split]}
    return DatasetVersion(
        digest=manifest.digest,
        name=name,
        created_at=time.time(),
        class_names=list(manifest.class_names),
        splits=splits,
        source=source,
        manifest_digest=manifest_digest,
    )


def _fingerprint(
    book: Book, source: str | os.PathLike[str], progress: bool | None, notes: list[str]
) -> Manifest:
    """``book.fingerprint(source)``; a stat cache that could not be used (a full disk) is
    added to ``notes`` instead of being a Python warning."""
    from trialbook.datasets.cache import CacheWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CacheWarning)
        manifest = book.fingerprint(source, progress=progress)
    for w in caught:
        if issubclass(w.category, CacheWarning):
            notes.append(str(w.message))
        else:  # not ours: as if it had not been caught
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)
    return manifest


def tag(
    book: Book, name: str, source: str | os.PathLike[str], tag: str, *, progress: bool | None = None
) -> TagResult:
    """Tag the files of ``source`` as ``name:tag``. Tagging the same content again is a
    no-op (``created`` false); tagging other content with an existing tag raises
    ``Conflict`` naming the digest it points to.

    The manifest is stored before the version and its tag are recorded, so a manifest
    that cannot be stored (a full disk) records nothing: ``StorageError`` says what could
    not be written. The stat cache failing is only a warning (``warnings``)."""
    check_label("dataset name", name)
    check_label("tag", tag)
    if book.blobs is None:
        raise InvalidInput(f"{book.uri} keeps no files: set TRIALBOOK_ARTIFACTS to a folder")
    notes: list[str] = []
    manifest = _fingerprint(book, source, progress, notes)
    try:
        bound = book.store.get_tag(name, tag)
    except NotFound:
        bound = None
    if bound is not None:
        if bound.digest != manifest.digest:
            raise Conflict(
                f"tag {name}:{tag} already points to version {bound.digest[:12]} (full digest "
                f"{bound.digest}); the files of {source} are version {manifest.short}. Tags never "
                f"move: tag them with a new tag"
            )
        version, created = book.store.get_dataset_version(name, bound.digest), False
    else:
        try:
            blob = book.blobs.put_bytes(manifest.to_bytes())
        except OSError as exc:  # a StorageError is an OSError too
            why = str(exc) if isinstance(exc, StorageError) else f"{book.blobs.root}: {exc.strerror or exc}"
            raise StorageError(
                f"{name}:{tag} was not tagged (nothing was recorded): cannot store its manifest: {why}"
            ) from None
        stored = _version_of(name, manifest, str(Path(source).resolve()), blob)
        bound_now, created = book.store.tag_version(stored, tag)  # False: another process just did
        version = book.store.get_dataset_version(name, bound_now.digest)
    return {
        **version_view(book, version),
        "tag": tag,
        "created": created,
        "warnings": [*notes, *source_warnings(source)],
    }


def status(
    book: Book, ref: str, source: str | os.PathLike[str] | None = None, *, progress: bool | None = None
) -> DataStatus:
    """The working files (``source``, else where the version was tagged from) against a
    version (``NAME:TAG``, or ``NAME`` for its newest tag)."""
    from trialbook.datasets import diff_manifests

    name, tag_name = parse_dataset_ref(ref, tag_required=False)
    if tag_name is None:
        tags = book.store.list_tags(name)
        if not tags:
            raise NotFound(f"dataset {name!r} has no tagged version")
        tag_name = tags[-1].tag
    version = book.dataset_version(f"{name}:{tag_name}")
    where = source if source is not None else version.source
    if where is None:
        raise InvalidInput(f"{name}:{tag_name} records no source folder: give SOURCE")
    working = book.fingerprint(where, progress=progress)
    d = diff_manifests(book.manifest(version), working)
    return {
        "dataset": name,
        "tag": tag_name,
        "digest": version.digest,
        "source": str(where),
        "working_digest": working.digest,
        "warnings": source_warnings(where),
        **_diff_fields(d),
    }


def diff(book: Book, ref_a: str, ref_b: str, *, files: int | None = None) -> DatasetDiff:
    """What changed from version ``ref_a`` to ``ref_b``; ``files`` cuts each list of file
    names to that many (the counts stay whole, as ``<kind>_count`` per split)."""
    from trialbook.datasets import diff_manifests

    a, b = book.dataset_version(ref_a), book.dataset_version(ref_b)
    d = diff_manifests(book.manifest(a), book.manifest(b))
    ends: _Ends = {"from": ref_a, "to": ref_b, "from_digest": a.digest, "to_digest": b.digest}
    return {**ends, **_diff_fields(d, files)}


def show(book: Book, ref: str) -> VersionView:
    """One version (``NAME:TAG`` or ``NAME:DIGEST_PREFIX``) with its per-split counts."""
    return version_view(book, book.dataset_version(ref))


def list_versions(book: Book, name: str | None = None) -> VersionList:
    """Every version (of ``name``), oldest first, with its tags."""
    return {"versions": [version_view(book, v) for v in book.store.list_dataset_versions(name)]}


def datasets_overview(book: Book) -> DatasetsOverview:
    """Dataset versions grouped by dataset, newest last, with per-split and per-class counts."""
    grouped: dict[str, list[VersionView]] = {}
    for v in list_versions(book)["versions"]:
        grouped.setdefault(v["name"], []).append(v)
    return {"datasets": [{"name": n, "versions": vs} for n, vs in sorted(grouped.items())]}
