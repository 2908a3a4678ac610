"""The store side of the discipline on SQLite and PostgreSQL: notes full-text search,
comparisons, ships, and migration 0002 on a book that already has notes."""

from __future__ import annotations

import time
import uuid

import pytest
import sqlalchemy as sa

from trialbook.core.entities import RunRecord
from trialbook.errors import InvalidInput, NotFound
from trialbook.store import open_store
from trialbook.store.sql.search import fts5_query


def make_run(store, name, project="pallets"):
    store.ensure_project(project)
    return store.create_run(
        RunRecord(id=uuid.uuid4().hex, project=project, name=name, status="finished", created_at=time.time())
    )


def test_notes_search_uses_the_database_text_search(store):
    a, b = make_run(store, "v1_base"), make_run(store, "v2_more_pallets")
    c = make_run(store, "v1_other", project="forklifts")
    store.set_note(a.id, {"hypothesis": "A stock model is a fair baseline"}, who="x")
    store.set_note(b.id, {"hypothesis": "Small pallets are missed", "change": "added pallet images"}, who="x")
    store.set_note(c.id, {"result": "forklift AP up; pallets unchanged"}, who="x")
    # stemming: "pallet" finds "pallets"; every word must occur
    assert {n.run_id for n in store.search_notes("pallet")} == {b.id, c.id}
    assert [n.run_id for n in store.search_notes("pallet images")] == [b.id]
    assert [n.run_id for n in store.search_notes("pallets", project="forklifts")] == [c.id]
    assert store.search_notes("nothing-like-this") == []
    # operators and punctuation are plain words, never a syntax error
    assert store.search_notes('pallet AND "images" OR (NEAR* -') == []
    assert [n.run_id for n in store.search_notes("pallet: images!")] == [b.id]
    # an edited note is found by its new words only (the index follows the notes table)
    store.set_note(b.id, {"hypothesis": "Resolution is the bottleneck", "change": "imgsz 1024"}, who="x")
    assert store.search_notes("images") == []
    assert [n.run_id for n in store.search_notes("bottleneck")] == [b.id]
    assert store.search_notes("bottleneck")[0].version == 2
    with pytest.raises(InvalidInput, match="no words"):
        store.search_notes(" -- ")
    with pytest.raises(NotFound, match="no project named 'nope'"):
        store.search_notes("pallet", project="nope")


def test_fts5_query_quotes_every_word():
    assert fts5_query('pallet AND "x" (y*') == '"pallet" "AND" "x" "y"'


def test_comparisons_are_recorded(store):
    a, b = make_run(store, "v1_a"), make_run(store, "v2_b")
    assert store.first_comparison_at("pallets") is None
    store.record_comparison("pallets", [a.id, b.id], "val/box_loss", exploratory=True, who="x")
    assert store.first_comparison_at("pallets") is None  # exploratory compares do not count
    before = time.time()
    store.record_comparison("pallets", [a.id, b.id], "metrics/mAP50-95(B)", exploratory=False, who="x")
    assert store.first_comparison_at("pallets") >= before - 1
    with pytest.raises(NotFound):
        store.record_comparison("nope", [], "m", exploratory=False, who="x")


def test_ships_keep_history_and_one_shipped_run(store):
    a, b = make_run(store, "v1_a"), make_run(store, "v2_b")
    other = make_run(store, "v1_z", project="other")
    assert store.list_ships("pallets") == []
    first = store.ship_run("pallets", a.id, decision_id="d1", forced=False, reason=None, who="ana")
    assert first.run_id == a.id and first.decision_id == "d1" and not first.forced
    assert store.get_project("pallets").shipped_run_id == a.id
    store.ship_run("pallets", b.id, decision_id=None, forced=True, reason="hotfix", who="bo")
    assert store.get_project("pallets").shipped_run_id == b.id
    history = store.list_ships("pallets")
    assert [(s.run_id, s.forced, s.reason, s.who) for s in history] == [
        (a.id, False, None, "ana"),
        (b.id, True, "hotfix", "bo"),
    ]
    with pytest.raises(NotFound, match="in project 'pallets'"):
        store.ship_run("pallets", other.id, decision_id=None, forced=True, reason="r", who="x")


# --------------------------------------------------------------------------- migration 0002
def _at_0001(conn) -> None:
    from alembic import command
    from alembic.config import Config

    from trialbook.store.sql.engine import MIGRATIONS_DIR

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, "0001")


def _old_book_rows(conn) -> None:
    conn.exec_driver_sql(
        "INSERT INTO projects (id, name, protocol, created_at) VALUES ('p1', 'pallets', '{}', 0)"
    )
    conn.exec_driver_sql(
        "INSERT INTO runs (id, project_id, name, status, created_at, pinned, split_digests, "
        "config, env, tags, legacy_name) VALUES ('r1', 'p1', 'v1_old', 'finished', 0, FALSE, "
        "'{}', '{}', '{}', '{}', FALSE)"
    )
    conn.exec_driver_sql(
        "INSERT INTO notes (run_id, hypothesis, change, result, next, text, version, who, "
        "updated_at) VALUES ('r1', 'Forklifts hide pallets', '', '', '', '', 1, 'x', 0)"
    )


def test_an_old_sqlite_book_with_notes_is_upgraded_and_searchable(tmp_path):
    from trialbook.store.uri import sql_url

    uri = str(tmp_path / "book")
    (tmp_path / "book").mkdir()
    engine = sa.create_engine(sql_url(uri))
    with engine.connect() as conn:
        _at_0001(conn)
        _old_book_rows(conn)
        conn.commit()
    engine.dispose()
    store = open_store(uri)  # an embedded book upgrades itself
    try:
        from trialbook.store.sql.schema import SCHEMA_HEAD

        assert store.db.current_revision() == SCHEMA_HEAD
        assert [n.run_id for n in store.search_notes("forklift")] == ["r1"]
    finally:
        store.close()


@pytest.mark.postgres
def test_an_old_postgres_book_is_upgraded_by_db_upgrade_and_searchable(pg_database):
    from click.testing import CliRunner

    from trialbook.cli.main import cli
    from trialbook.errors import SchemaOutOfDate

    base, _ = pg_database.rsplit("/", 1)
    name = f"trialbook_old_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(
        "postgresql+psycopg://" + pg_database.split("://", 1)[1], isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    uri = f"{base}/{name}"
    engine = sa.create_engine("postgresql+psycopg://" + uri.split("://", 1)[1])
    try:
        with engine.connect() as conn:
            _at_0001(conn)
            _old_book_rows(conn)
            conn.commit()
        with pytest.raises(SchemaOutOfDate, match="trialbook db upgrade"):
            open_store(uri)
        result = CliRunner().invoke(cli, ["db", "upgrade", "--uri", uri])
        assert result.exit_code == 0, result.output
        store = open_store(uri)
        try:
            assert [n.run_id for n in store.search_notes("forklift")] == ["r1"]
        finally:
            store.close()
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
