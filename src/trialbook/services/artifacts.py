"""A run's artifact files: found by digest among the run's artifacts, and checked
against that digest before they are handed out."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from trialbook.api import Book
from trialbook.artifacts.local import hash_file
from trialbook.errors import IntegrityError, NotFound


class ArtifactFile(NamedTuple):
    name: str
    digest: str
    path: Path


def artifact_file(book: Book, ref: str, digest: str, *, project: str | None = None) -> ArtifactFile:
    """The file of the artifact of run ``ref`` whose digest is ``digest``. ``NotFound``
    when the run has no such artifact or its bytes are gone; ``IntegrityError`` when the
    file on disk no longer hashes to its digest."""
    run = book.run(ref, project)
    found = next((a for a in book.store.list_artifacts(run.id) if a.digest == digest), None)
    if found is None:
        raise NotFound(f"run {run.name!r} of project {run.project!r} has no artifact {digest[:12]}")
    if book.blobs is None:
        raise NotFound(f"{book.uri} keeps no artifact files (set TRIALBOOK_ARTIFACTS)")
    path = book.blobs.path_of(found.digest)
    if not path.is_file():
        raise NotFound(f"the file of artifact {found.name} ({digest[:12]}) is missing from {book.blobs.root}")
    got, _ = hash_file(path)
    if got != found.digest:
        raise IntegrityError(f"artifact {found.name}: {path} no longer hashes to {found.digest}")
    return ArtifactFile(found.name, found.digest, path)
