"""The discipline's records: notes full-text search, comparisons and ships.

Notes search uses the database's own engine (created by migration 0002): SQLite FTS5
(``notes_fts``, porter-stemmed) ranked by bm25, PostgreSQL text search (``english``
tsvector, GIN index ``ix_notes_fts``) ranked by ``ts_rank``. Both read the search text as
plain words that must all occur (in any note field); punctuation and search operators
in it are not interpreted.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from trialbook.core.entities import Note
from trialbook.errors import InvalidInput, NotFound
from trialbook.store.base import Ship
from trialbook.store.sql.base import SqlBase, now
from trialbook.store.sql.records import NOTE_COLUMNS, _note
from trialbook.store.sql.schema import comparisons, projects, runs, ships

# identical to the expression of the index in migration 0002
PG_VECTOR = (
    "to_tsvector('english'::regconfig, hypothesis || ' ' || \"change\" || ' ' || "
    "result || ' ' || \"next\" || ' ' || \"text\")"
)
_WORD = re.compile(r"\w+", re.UNICODE)


def fts5_query(text: str) -> str:
    """Plain words as an FTS5 query: each word quoted (no operators), all required."""
    return " ".join(f'"{w}"' for w in _WORD.findall(text))


def _ship(row: Any, project: str) -> Ship:
    return Ship(
        id=row.id,
        project=project,
        run_id=row.run_id,
        decision_id=row.decision_id,
        forced=bool(row.forced),
        reason=row.reason,
        who=row.who,
        at=row.at,
    )


class DisciplineMixin(SqlBase):
    # notes search ---------------------------------------------------------------------
    def search_notes(self, text: str, *, project: str | None = None, limit: int = 50) -> list[Note]:
        """Notes whose fields hold every word of ``text``, best match first."""
        if not isinstance(text, str) or not _WORD.search(text):
            raise InvalidInput(f"notes search: {text!r} has no words to look for")
        limit = max(1, min(int(limit), 1000))
        params: dict[str, Any] = {"limit": limit}
        where = ""
        if project is not None:
            with self.db.read() as conn:
                params["pid"] = self._project_id(conn, project)
            where = " AND r.project_id = :pid"
        cols = ", ".join(f'n."{c}"' for c in NOTE_COLUMNS)
        if self.db.dialect == "sqlite":
            params["q"] = fts5_query(text)
            sql = (
                f"SELECT n.run_id, {cols}, n.version, n.updated_at FROM notes_fts f "
                f"JOIN notes n ON n.run_id = f.run_id JOIN runs r ON r.id = n.run_id "
                f"WHERE notes_fts MATCH :q{where} ORDER BY bm25(notes_fts), n.updated_at DESC "
                f"LIMIT :limit"
            )
        else:
            params["q"] = text
            # unqualified note columns (runs has none of these names): the expression is
            # then the index's own, so PostgreSQL can use ix_notes_fts
            sql = (
                f"SELECT n.run_id, {cols}, n.version, n.updated_at FROM notes n "
                f"JOIN runs r ON r.id = n.run_id, "
                f"plainto_tsquery('english'::regconfig, :q) query "
                f"WHERE {PG_VECTOR} @@ query{where} "
                f"ORDER BY ts_rank({PG_VECTOR}, query) DESC, n.updated_at DESC LIMIT :limit"
            )
        with self.db.read() as conn:
            rows = conn.execute(sa.text(sql), params).all()
        return [_note(r.run_id, r, "updated_at") for r in rows]

    # comparisons ----------------------------------------------------------------------
    def record_comparison(
        self, project: str, run_ids: Sequence[str], metric: str, *, exploratory: bool, who: str
    ) -> None:
        """Remember that runs of ``project`` were compared on ``metric``."""
        with self.db.write() as conn:
            pid = self._project_id(conn, project)
            conn.execute(
                comparisons.insert().values(
                    project_id=pid,
                    metric=metric,
                    exploratory=exploratory,
                    run_ids=list(run_ids),
                    who=who,
                    at=now(),
                )
            )

    def first_comparison_at(self, project: str) -> float | None:
        """When runs of ``project`` were first compared on the protocol metric (a compare
        that was not exploratory); ``None`` if never."""
        with self.db.read() as conn:
            pid = self._project_id(conn, project)
            at = conn.execute(
                sa.select(sa.func.min(comparisons.c.at)).where(
                    comparisons.c.project_id == pid, comparisons.c.exploratory.is_(False)
                )
            ).scalar()
        return None if at is None else float(at)

    # ships ------------------------------------------------------------------------------
    def ship_run(
        self,
        project: str,
        run_id: str,
        *,
        decision_id: str | None,
        forced: bool,
        reason: str | None,
        who: str,
    ) -> Ship:
        """Mark ``run_id`` the project's shipped run; earlier ships stay in the history."""
        with self.db.write() as conn:
            pid = self._project_id(conn, project)
            found = conn.execute(
                sa.select(runs.c.id).where(runs.c.id == run_id, runs.c.project_id == pid)
            ).first()
            if found is None:
                raise NotFound(f"no run with id {run_id!r} in project {project!r}")
            result = conn.execute(
                ships.insert().values(
                    project_id=pid,
                    run_id=run_id,
                    decision_id=decision_id,
                    forced=forced,
                    reason=reason,
                    who=who,
                    at=now(),
                )
            )
            conn.execute(projects.update().where(projects.c.id == pid).values(shipped_run_id=run_id))
            key = result.inserted_primary_key
            assert key is not None
            row = conn.execute(sa.select(ships).where(ships.c.id == key[0])).one()
        return _ship(row, project)

    def list_ships(self, project: str) -> list[Ship]:
        """Every ship of ``project``, oldest first (the last one is the shipped run)."""
        with self.db.read() as conn:
            pid = self._project_id(conn, project)
            rows = conn.execute(
                sa.select(ships).where(ships.c.project_id == pid).order_by(ships.c.at, ships.c.id)
            ).all()
        return [_ship(r, project) for r in rows]
