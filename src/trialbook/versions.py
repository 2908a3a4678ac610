"""Dataset versions in a book: tag, status, diff, show, list, and pinning runs.

A version is a content-addressed manifest (``trialbook.datasets``) of a dataset's files;
its full manifest is kept as a blob in the book, its per-split and per-class counts and
split digests in the store. A tag (``pallets:v3``) names one version and never moves.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trialbook.core.entities import DatasetVersion
from trialbook.errors import Conflict, InvalidInput, NotFound

if TYPE_CHECKING:
    from trialbook.api import Book
    from trialbook.datasets import Manifest

UNPINNED_HINT = (
    "name a tagged version (dataset='pallets:v3'; tag one with `trialbook data tag NAME SOURCE "
    "--tag T`), or pass allow_unpinned=True (--allow-unpinned) to record the run as UNPINNED"
)


def parse_ref(ref: str, *, tag_required: bool = True) -> tuple[str, str | None]:
    """``pallets:v3`` -> ``("pallets", "v3")``."""
    name, sep, tag = ref.partition(":")
    if not name or (sep and not tag) or (tag_required and not sep):
        raise InvalidInput(f"dataset {ref!r} must be NAME:TAG, e.g. pallets:v3")
    return name, (tag or None)


def cache_path(book: Book) -> Path:
    """The stat cache: beside an embedded book, else in the user's cache folder."""
    blob_dir = getattr(book.store, "blob_dir", None)
    if blob_dir is not None:
        return Path(blob_dir).parent / "cache" / "stat.db"
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "trialbook" / "stat.db"


def build(book: Book, source: str | os.PathLike[str], *, progress: bool | None = None) -> Manifest:
    from trialbook.datasets import build_manifest

    path = cache_path(book)
    path.parent.mkdir(parents=True, exist_ok=True)
    return build_manifest(source, cache_path=path, progress=progress)


def _version_of(name: str, manifest: Manifest, source: str, manifest_digest: str) -> DatasetVersion:
    splits = {}
    summary = manifest.summary()
    for split, counts in summary["splits"].items():
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


def source_warnings(source: str | os.PathLike[str]) -> list[str]:
    """Things about a dataset source that will surprise at training time.

    Ultralytics resolves a relative ``path:`` in a data.yaml against the *current
    directory* of the training process; trialbook resolves it against the yaml's folder
    (so a version never depends on where a command ran). The two agree only when training
    starts in the yaml's folder.
    """
    import yaml

    config = Path(source)
    if config.is_dir() or config.suffix.lower() not in (".yaml", ".yml"):
        return []
    try:
        data = yaml.safe_load(config.read_text())
    except (OSError, yaml.YAMLError):
        return []  # build_manifest reports unreadable files with their own message
    root = data.get("path") if isinstance(data, dict) else None
    if isinstance(root, str) and root and not Path(os.path.expanduser(root)).is_absolute():
        return [
            f"{config}: `path: {root}` is relative. trialbook reads it from the yaml's folder, "
            "but Ultralytics reads it from the folder training starts in: remove `path:` "
            "(Ultralytics then uses the yaml's folder) or make it absolute"
        ]
    return []


def tag(
    book: Book, name: str, source: str | os.PathLike[str], tag: str, *, progress: bool | None = None
) -> tuple[DatasetVersion, bool]:
    """Tag the files of ``source`` as ``name:tag``. Returns the version and whether the tag
    is new. Tagging the same content again is a no-op; tagging other content with an
    existing tag raises ``Conflict`` naming the digest it points to."""
    _check_label("dataset name", name)
    _check_label("tag", tag)
    if book.blobs is None:
        raise InvalidInput(f"{book.uri} keeps no files: set TRIALBOOK_ARTIFACTS to a folder")
    manifest = build(book, source, progress=progress)
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
        return book.store.get_dataset_version(name, bound.digest), False
    blob = book.blobs.put_bytes(manifest.to_bytes())
    version = _version_of(name, manifest, str(Path(source).resolve()), blob)
    book.store.add_tagged_version(version, tag)
    return book.store.get_dataset_version(name, version.digest), True


def _check_label(what: str, value: str) -> None:
    if not value or not all(c.isalnum() or c in "._-" for c in value) or len(value) > 200:
        raise InvalidInput(
            f"{what} {value!r} must be letters, digits, '.', '_' or '-' (at most 200 characters)"
        )


def resolve(book: Book, ref: str) -> DatasetVersion:
    """``NAME:TAG`` or ``NAME:DIGEST_PREFIX`` -> the version."""
    name, tag_or_digest = parse_ref(ref)
    assert tag_or_digest is not None
    try:
        bound = book.store.get_tag(name, tag_or_digest)
    except NotFound:
        try:
            return book.store.get_dataset_version(name, tag_or_digest)
        except NotFound:
            raise NotFound(
                f"no dataset version {ref}: tag it with "
                f"`trialbook data tag {name} SOURCE --tag {tag_or_digest}`"
            ) from None
    return book.store.get_dataset_version(name, bound.digest)


def manifest_of(book: Book, version: DatasetVersion) -> Manifest:
    from trialbook.datasets import Manifest

    if book.blobs is None or version.manifest_digest is None:
        raise NotFound(f"the manifest of {version.name} {version.digest[:12]} is not stored here")
    return Manifest.from_bytes(book.blobs.get_bytes(version.manifest_digest))


def _diff_dict(d: Any) -> dict[str, Any]:
    """A diff as JSON, with the files added / removed / changed per split at the top."""
    out = d.to_dict()
    for kind in ("added", "removed", "changed"):
        out[kind] = {name: s[kind] for name, s in out["splits"].items() if s[kind]}
    return out


def status(
    book: Book, ref: str, source: str | os.PathLike[str] | None = None, *, progress: bool | None = None
) -> dict[str, Any]:
    """The working files (``source``, else where the version was tagged from) against a
    version: ``{"dataset", "tag", "digest", "clean", "added", "removed", "changed", ...}``."""
    from trialbook.datasets import diff_manifests

    name, tag_name = parse_ref(ref, tag_required=False)
    if tag_name is None:
        tags = [t for t in book.store.list_tags(name)]
        if not tags:
            raise NotFound(f"dataset {name!r} has no tagged version")
        tag_name = tags[-1].tag
    version = resolve(book, f"{name}:{tag_name}")
    where = source if source is not None else version.source
    if where is None:
        raise InvalidInput(f"{name}:{tag_name} records no source folder: give SOURCE")
    working = build(book, where, progress=progress)
    diff = diff_manifests(manifest_of(book, version), working)
    return {
        "dataset": name,
        "tag": tag_name,
        "digest": version.digest,
        "source": str(where),
        "working_digest": working.digest,
        **_diff_dict(diff),
    }


def diff(book: Book, ref_a: str, ref_b: str) -> dict[str, Any]:
    from trialbook.datasets import diff_manifests

    a, b = resolve(book, ref_a), resolve(book, ref_b)
    d = diff_manifests(manifest_of(book, a), manifest_of(book, b))
    return {"from": ref_a, "to": ref_b, "from_digest": a.digest, "to_digest": b.digest, **_diff_dict(d)}


def version_dict(book: Book, version: DatasetVersion) -> dict[str, Any]:
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


def list_versions(book: Book, name: str | None = None) -> list[dict[str, Any]]:
    return [version_dict(book, v) for v in book.store.list_dataset_versions(name)]


def find_tag_for(book: Book, source: str | os.PathLike[str]) -> str | None:
    """``NAME:TAG`` of a tagged version whose content is the files of ``source`` (the
    newest tag if several), or None."""
    digest = build(book, source).digest
    tags = [t for t in book.store.list_tags() if t.digest == digest]
    if not tags:
        return None
    newest = max(tags, key=lambda t: t.created_at)
    return f"{newest.name}:{newest.tag}"


# --------------------------------------------------------------------------- pinning
def pin_run(
    book: Book, dataset: str | None, source: str | os.PathLike[str] | None, allow_unpinned: bool
) -> dict[str, Any]:
    """The dataset fields of a new run (DESIGN.md, 'Pinning').

    The working files are checked against the tag first; a mismatch is refused with a
    short diff and the two ways out, unless ``allow_unpinned`` records the run UNPINNED
    (it still notes which version it claimed and what the files were)."""
    if dataset is None:
        if not allow_unpinned:
            raise InvalidInput(f"this run names no dataset version: {UNPINNED_HINT}")
        return {"dataset": None, "pinned": False, "split_digests": {}}
    from trialbook.datasets import diff_manifests

    version = resolve(book, dataset)
    where = source if source is not None else version.source
    if where is None or not Path(where).exists():
        problem = f"the dataset files of {dataset} are not at {where}"
        if allow_unpinned:
            return {"dataset": dataset, "pinned": False, "split_digests": {}}
        raise InvalidInput(
            f"{problem}: pass dataset_source= (--data) with their location, or {UNPINNED_HINT}"
        )
    working = build(book, where)
    splits = {s: info["digest"] for s, info in version.splits.items() if info.get("digest")}
    if working.digest == version.digest:
        return {"dataset": dataset, "pinned": True, "split_digests": {"dataset": version.digest, **splits}}
    d = diff_manifests(manifest_of(book, version), working)
    if allow_unpinned:
        return {
            "dataset": dataset,
            "pinned": False,
            "split_digests": {"working": working.digest, **working.split_digests},
        }
    raise InvalidInput(
        f"the files at {where} no longer match {dataset} (version {version.digest[:12]}; the "
        f"working files are {working.short}):\n{d.short_text()}\nEither tag them as a new "
        f"version (`trialbook data tag {version.name} {where} --tag NEW`) and start the run on "
        f"it, or pass allow_unpinned=True (--allow-unpinned) to record the run as UNPINNED"
    )
