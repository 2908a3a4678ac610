"""Datasets: YOLO sources (data.yaml or folder), content-addressed manifests, diffs.

Pure filesystem work, no database: ``build_manifest`` reads a dataset (with an optional
stat cache) and returns a ``Manifest`` whose ``digest`` identifies the version;
``diff_manifests`` says what changed between two versions.
"""

from trialbook.datasets.build import build_manifest
from trialbook.datasets.diff import ClassDelta, ManifestDiff, SplitDiff, diff_manifests
from trialbook.datasets.manifest import FileEntry, Manifest, SplitManifest
from trialbook.datasets.source import (
    IMAGE_EXTENSIONS,
    SPLITS,
    DatasetSource,
    SplitSource,
    label_path_for,
    resolve_source,
)

__all__ = [
    "IMAGE_EXTENSIONS",
    "SPLITS",
    "ClassDelta",
    "DatasetSource",
    "FileEntry",
    "Manifest",
    "ManifestDiff",
    "SplitDiff",
    "SplitManifest",
    "SplitSource",
    "build_manifest",
    "diff_manifests",
    "label_path_for",
    "resolve_source",
]
