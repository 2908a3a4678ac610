"""Artifact bytes, stored once by content hash (blake3) and verified on read."""

from trialbook.artifacts.local import BlobStore, hash_file

__all__ = ["BlobStore", "hash_file"]
