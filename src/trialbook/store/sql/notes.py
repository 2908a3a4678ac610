"""Notes (``RecordStore``, part): a run's note, every version kept, and full-text search.

``notes`` holds the current version of each run's note, ``note_history`` every version.
Notes search uses the database's own engine (created by migration 0002): SQLite FTS5
(``notes_fts``, porter-stemmed) ranked by bm25, PostgreSQL text search (``english``
tsvector, GIN index ``ix_notes_fts``) ranked by ``ts_rank``. Both read the search text as
plain words that must all occur (in any note field); punctuation and search operators
in it are not interpreted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa

from trialbook.core.entities import NOTE_TEXT_FIELDS, Note
from trialbook.errors import InvalidInput
from trialbook.store.sql.base import SqlBase, now
from trialbook.store.sql.schema import note_history, notes

NOTE_COLUMNS = NOTE_TEXT_FIELDS

# identical to the expression of the index in migration 0002
PG_VECTOR = (
    "to_tsvector('english'::regconfig, hypothesis || ' ' || \"change\" || ' ' || "
    "result || ' ' || \"next\" || ' ' || \"text\")"
)
_WORD = re.compile(r"\w+", re.UNICODE)


def fts5_query(text: str) -> str:
    """Plain words as an FTS5 query: each word quoted (no operators), all required."""
    return " ".join(f'"{w}"' for w in _WORD.findall(text))


def _note(run_id: str, row: Any, at_field: str) -> Note:
    return Note(
        run_id=run_id,
        **{c: getattr(row, c) for c in NOTE_COLUMNS},
        version=row.version,
        updated_at=getattr(row, at_field),
    )


class NotesMixin(SqlBase):
    # notes ---------------------------------------------------------------------------
    def set_note(self, run_id: str, fields: Mapping[str, str], *, who: str) -> Note:
        unknown = [k for k in fields if k not in NOTE_COLUMNS]
        if unknown:
            raise InvalidInput(f"unknown note field(s): {', '.join(unknown)}; use {', '.join(NOTE_COLUMNS)}")
        for k, v in fields.items():
            if not isinstance(v, str):
                raise InvalidInput(f"note field {k!r} must be text, got {type(v).__name__}")
        at = now()
        with self.db.write() as conn:
            self._require_run(conn, run_id, lock=True)  # one writer of a run's note at a time
            row = conn.execute(sa.select(notes).where(notes.c.run_id == run_id)).first()
            current = {c: (getattr(row, c) if row else "") for c in NOTE_COLUMNS}
            current.update(fields)
            version = (row.version if row else 0) + 1
            if row is None:
                conn.execute(
                    notes.insert().values(run_id=run_id, version=version, who=who, updated_at=at, **current)
                )
            else:
                conn.execute(
                    notes.update()
                    .where(notes.c.run_id == run_id)
                    .values(version=version, who=who, updated_at=at, **current)
                )
            conn.execute(
                note_history.insert().values(run_id=run_id, version=version, who=who, at=at, **current)
            )
        return Note(run_id=run_id, version=version, updated_at=at, **current)

    def get_notes(self, run_ids: Iterable[str]) -> dict[str, Note]:
        q = sa.select(notes).where(notes.c.run_id.in_(list(run_ids)))
        with self.db.read() as conn:
            return {r.run_id: _note(r.run_id, r, "updated_at") for r in conn.execute(q)}

    def note_history(self, run_id: str) -> list[Note]:
        q = sa.select(note_history).where(note_history.c.run_id == run_id).order_by(note_history.c.version)
        with self.db.read() as conn:
            return [_note(run_id, r, "at") for r in conn.execute(q)]

    # search ---------------------------------------------------------------------
    def search_notes(self, text: str, *, project: str | None = None, limit: int = 50) -> list[Note]:
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
