"""Projects, their protocol and its audit history."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from trialbook.core.entities import Project, Protocol, ProtocolChange
from trialbook.core.text import check_name
from trialbook.errors import Conflict, InvalidInput, NotFound
from trialbook.store.sql.base import SqlBase, new_id, now
from trialbook.store.sql.schema import projects, protocol_changes


def _project(row: Any) -> Project:
    return Project(
        id=row.id,
        name=row.name,
        protocol=Protocol.from_dict(row.protocol),
        created_at=row.created_at,
        shipped_run_id=row.shipped_run_id,
    )


def _check_project_name(name: str) -> None:
    try:
        check_name("project name", name)
    except InvalidInput as exc:
        raise InvalidInput(f"{exc}: a project name is 1 to 200 characters, without '/'") from None


class ProjectsMixin(SqlBase):
    def create_project(self, name: str) -> Project:
        _check_project_name(name)
        with self.db.write() as conn:
            # RETURNING says whether this insert made the row (a driver's rowcount of an
            # INSERT ... ON CONFLICT is not always kept)
            inserted = conn.execute(
                self._insert(projects)
                .values(id=new_id(), name=name, protocol=Protocol().to_dict(), created_at=now())
                .on_conflict_do_nothing()
                .returning(projects.c.id)
            ).first()
            if inserted is None:  # there already, or created by another process meanwhile
                raise Conflict(f"project {name!r} already exists")
        return self.get_project(name)

    def ensure_project(self, name: str) -> Project:
        _check_project_name(name)
        with contextlib.suppress(NotFound):
            return self.get_project(name)
        with self.db.write() as conn:
            # one statement that creates the project or finds it there (made by another
            # process meanwhile: PostgreSQL waits for that one's commit, SQLite's writers
            # are serialised); then the row, seen by this transaction
            conn.execute(
                self._insert(projects)
                .values(id=new_id(), name=name, protocol=Protocol().to_dict(), created_at=now())
                .on_conflict_do_nothing()
            )
            row = conn.execute(sa.select(projects).where(projects.c.name == name)).one()
        return _project(row)

    def get_project(self, name: str) -> Project:
        with self.db.read() as conn:
            row = conn.execute(sa.select(projects).where(projects.c.name == name)).first()
        if row is None:
            raise NotFound(f"no project named {name!r}")
        return _project(row)

    def list_projects(self) -> list[Project]:
        with self.db.read() as conn:
            rows = conn.execute(sa.select(projects).order_by(projects.c.name)).all()
        return [_project(r) for r in rows]

    def update_protocol(
        self, name: str, changes: Mapping[str, Any], *, reason: str | None, who: str
    ) -> Project:
        with self.db.write() as conn:
            # the row is locked until commit: two changes at once are applied one after
            # the other, neither lost
            row = conn.execute(self.db.lock_row(sa.select(projects).where(projects.c.name == name))).first()
            if row is None:
                raise NotFound(f"no project named {name!r}")
            current = dict(row.protocol)
            unknown = [k for k in changes if k not in Protocol.__dataclass_fields__]
            if unknown:
                raise InvalidInput(f"unknown protocol field(s) {', '.join(unknown)}")
            at = now()
            for field, value in changes.items():
                if current.get(field) == value:
                    continue
                conn.execute(
                    protocol_changes.insert().values(
                        project_id=row.id,
                        field=field,
                        old=current.get(field),
                        new=value,
                        reason=reason,
                        who=who,
                        at=at,
                    )
                )
                current[field] = value
            conn.execute(projects.update().where(projects.c.id == row.id).values(protocol=current))
        return self.get_project(name)

    def protocol_history(self, name: str) -> list[ProtocolChange]:
        with self.db.read() as conn:
            pid = self._project_id(conn, name)
            rows = conn.execute(
                sa.select(protocol_changes)
                .where(protocol_changes.c.project_id == pid)
                .order_by(protocol_changes.c.id)
            ).all()
        return [
            ProtocolChange(
                project=name, field=r.field, old=r.old, new=r.new, reason=r.reason, who=r.who, at=r.at
            )
            for r in rows
        ]
