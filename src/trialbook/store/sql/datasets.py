"""Dataset versions (content-addressed) and their immutable tags."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from trialbook.core.entities import DatasetTag, DatasetVersion
from trialbook.errors import Conflict, NotFound
from trialbook.store.sql.base import SqlBase, now
from trialbook.store.sql.schema import dataset_tags, dataset_versions


def _version(r: Any) -> DatasetVersion:
    return DatasetVersion(
        digest=r.digest,
        name=r.name,
        created_at=r.created_at,
        class_names=list(r.class_names),
        splits=dict(r.splits),
        source=r.source,
        manifest_digest=r.manifest_digest,
    )


def _tag(r: Any) -> DatasetTag:
    return DatasetTag(name=r.name, tag=r.tag, digest=r.digest, created_at=r.created_at)


class DatasetsMixin(SqlBase):
    def add_dataset_version(self, version: DatasetVersion) -> DatasetVersion:
        """Record a version; recording the same (name, digest) again is a no-op."""
        with self.db.write() as conn:
            stmt = (
                self._insert(dataset_versions)
                .values(
                    name=version.name,
                    digest=version.digest,
                    created_at=version.created_at,
                    class_names=version.class_names,
                    splits=version.splits,
                    source=version.source,
                    manifest_digest=version.manifest_digest,
                )
                .on_conflict_do_nothing()
            )
            conn.execute(stmt)
        return self.get_dataset_version(version.name, version.digest)

    def get_dataset_version(self, name: str, digest: str) -> DatasetVersion:
        """The version of ``name`` whose digest is ``digest`` or starts with it."""
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(dataset_versions).where(
                    dataset_versions.c.name == name,
                    dataset_versions.c.digest.startswith(digest, autoescape=True),
                )
            ).all()
        if not rows:
            raise NotFound(f"no version {digest[:12]} of dataset {name!r}")
        if len(rows) > 1:
            raise NotFound(f"digest prefix {digest!r} of dataset {name!r} is ambiguous")
        return _version(rows[0])

    def list_dataset_versions(self, name: str | None = None) -> list[DatasetVersion]:
        q = sa.select(dataset_versions).order_by(dataset_versions.c.name, dataset_versions.c.created_at)
        if name is not None:
            q = q.where(dataset_versions.c.name == name)
        with self.db.read() as conn:
            return [_version(r) for r in conn.execute(q)]

    def add_tagged_version(self, version: DatasetVersion, tag: str) -> DatasetTag:
        """Record a version and bind ``name:tag`` to it in one transaction: a refused tag
        leaves no version behind."""
        return self.tag_version(version, tag)[0]

    def tag_version(self, version: DatasetVersion, tag: str) -> tuple[DatasetTag, bool]:
        """``add_tagged_version``, and whether this call bound the tag (``False``: it was
        bound to this version already, by an earlier call or another process meanwhile)."""
        with self.db.write() as conn:
            self.add_dataset_version(version)
            return self._bind(conn, version.name, tag, version.digest)

    def set_tag(self, name: str, tag: str, digest: str) -> DatasetTag:
        """Bind ``name:tag`` to ``digest``. Tags never move: binding the same digest again
        is a no-op; binding another digest raises ``Conflict`` naming the bound one."""
        with self.db.write() as conn:
            return self._bind(conn, name, tag, digest)[0]

    def _bind(self, conn: Connection, name: str, tag: str, digest: str) -> tuple[DatasetTag, bool]:
        # a tag bound by another process between a read and an insert: the insert does
        # nothing (PostgreSQL waits for that one's commit), and the tag is judged by what
        # it points to
        inserted = conn.execute(
            self._insert(dataset_tags)
            .values(name=name, tag=tag, digest=digest, created_at=now())
            .on_conflict_do_nothing()
            .returning(dataset_tags.c.name)
        ).first()
        row = conn.execute(
            sa.select(dataset_tags).where(dataset_tags.c.name == name, dataset_tags.c.tag == tag)
        ).one()
        if row.digest != digest:
            raise Conflict(
                f"tag {name}:{tag} already points to version {row.digest[:12]} "
                f"(full digest {row.digest}); tags never move: choose a new tag"
            )
        return _tag(row), inserted is not None

    def get_tag(self, name: str, tag: str) -> DatasetTag:
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(dataset_tags).where(dataset_tags.c.name == name, dataset_tags.c.tag == tag)
            ).first()
        if row is None:
            raise NotFound(f"no dataset version tagged {name}:{tag}")
        return _tag(row)

    def list_tags(self, name: str | None = None) -> list[DatasetTag]:
        q = sa.select(dataset_tags).order_by(dataset_tags.c.name, dataset_tags.c.created_at)
        if name is not None:
            q = q.where(dataset_tags.c.name == name)
        with self.db.read() as conn:
            return [_tag(r) for r in conn.execute(q)]
