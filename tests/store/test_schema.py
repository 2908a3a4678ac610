"""Migrations: they build exactly the schema the queries use, on both dialects; an
out-of-date server database is refused with the command to run; parallel first opens
of one SQLite book migrate once; a book made before migration 0002 (notes search) is
upgraded with its notes searchable; books at 0004 and 0005 keep their decisions and
points through the later migrations; a book at 0006 gets the accounts' tables (0007) and
grants roles on the projects it held."""

from __future__ import annotations

import contextlib
import dataclasses
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from trialbook.errors import SchemaOutOfDate
from trialbook.store import Store, open_store
from trialbook.store.registry import sql_url
from trialbook.store.sql.engine import Database
from trialbook.store.sql.schema import SCHEMA_HEAD, SEARCH_OBJECTS, metadata
from trialbook.store.sql.store import SqlStore


def sql(store: Store) -> SqlStore:
    """The SQL store ``store`` is: migrations are the SQL stores' business."""
    assert isinstance(store, SqlStore)
    return store


def test_migrations_match_the_table_definitions(store: Store) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        # full-text search objects (FTS5 table and its shadow tables, the PG GIN index)
        # are made by migration 0002 in raw SQL and are not in the metadata
        return not (name or "").startswith(SEARCH_OBJECTS)

    with sql(store).db.writer.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"include_object": include_object})
        diff = compare_metadata(ctx, metadata)
    assert diff == []
    assert sql(store).db.current_revision() == SCHEMA_HEAD


def test_head_constant_matches_the_migration_scripts() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from trialbook.store.sql.engine import MIGRATIONS_DIR

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    assert ScriptDirectory.from_config(cfg).get_current_head() == SCHEMA_HEAD


@pytest.mark.postgres
def test_out_of_date_server_database_is_refused(pg_database: str) -> None:
    book_uri = pg_database
    open_store(book_uri).close()
    engine = sa.create_engine(sql_url(book_uri))
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0000'")
    try:
        with pytest.raises(SchemaOutOfDate, match="trialbook db upgrade --uri"):
            open_store(book_uri)
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"UPDATE alembic_version SET version_num = '{SCHEMA_HEAD}'")
        engine.dispose()


def test_parallel_first_opens_migrate_once(tmp_path: Path) -> None:
    uri = str(tmp_path / "book")
    code = (
        "import sys; from trialbook.store import open_store; "
        "s = open_store(sys.argv[1]); s.ensure_project('pallets'); print('ok')"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, uri], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(6)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    assert all(out.strip() == "ok" for out, _ in results), results
    db = Database(sql_url(uri))
    assert db.current_revision() == SCHEMA_HEAD
    with db.read() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM projects").scalar() == 1


def test_opening_an_up_to_date_book_does_not_import_alembic(tmp_path: Path) -> None:
    uri = str(tmp_path / "book")
    open_store(uri).close()
    code = (
        "import sys; from trialbook.store import open_store; open_store(sys.argv[1]); "
        "print('alembic' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code, uri], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --------------------------------------------------------------------------- migration 0002
def _at(conn: sa.Connection, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    from trialbook.store.sql.engine import MIGRATIONS_DIR

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, revision)


def _old_book_rows(conn: sa.Connection) -> None:
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


@contextlib.contextmanager
def _pg_upgraded(uri: str, prepare: Callable[[sa.Connection], None]) -> Iterator[Store]:
    """The PostgreSQL book at ``uri`` once ``prepare(conn)`` has written an old book there,
    opening it was refused as out of date, and ``trialbook db upgrade`` brought it to head."""
    from click.testing import CliRunner

    from trialbook.cli.main import cli

    engine = sa.create_engine(sql_url(uri))
    try:
        with engine.connect() as conn:
            prepare(conn)
            conn.commit()
        with pytest.raises(SchemaOutOfDate, match="trialbook db upgrade"):
            open_store(uri)
        result = CliRunner().invoke(cli, ["db", "upgrade", "--uri", uri])
        assert result.exit_code == 0, result.output
        store = open_store(uri)
        try:
            assert sql(store).db.current_revision() == SCHEMA_HEAD
            yield store
        finally:
            store.close()
    finally:
        engine.dispose()


def test_an_old_sqlite_book_with_notes_is_upgraded_and_searchable(tmp_path: Path) -> None:
    uri = str(tmp_path / "book")
    (tmp_path / "book").mkdir()
    engine = sa.create_engine(sql_url(uri))
    with engine.connect() as conn:
        _at(conn, "0001")
        _old_book_rows(conn)
        conn.commit()
    engine.dispose()
    store = open_store(uri)  # an embedded book upgrades itself
    try:
        assert sql(store).db.current_revision() == SCHEMA_HEAD
        assert [n.run_id for n in store.search_notes("forklift")] == ["r1"]
    finally:
        store.close()


@pytest.mark.postgres
def test_an_old_postgres_book_is_upgraded_by_db_upgrade_and_searchable(fresh_pg_database: str) -> None:
    def at_0001(conn: sa.Connection) -> None:
        _at(conn, "0001")
        _old_book_rows(conn)

    with _pg_upgraded(fresh_pg_database, at_0001) as store:
        assert [n.run_id for n in store.search_notes("forklift")] == ["r1"]


# --------------------------------------------------------------------------- migration 0005
def test_a_book_at_0004_keeps_its_decisions_and_decides_on_evidence_after_0005(tmp_path: Path) -> None:
    from trialbook.core.entities import Decision

    uri = str(tmp_path / "book")
    (tmp_path / "book").mkdir()
    engine = sa.create_engine(sql_url(uri))
    with engine.connect() as conn:
        _at(conn, "0004")
        _old_book_rows(conn)
        conn.exec_driver_sql(
            "INSERT INTO decisions (id, project_id, candidate_id, baseline_id, verdict, gates, protocol, "
            "test_split_digest, revealed, who, at) VALUES ('d1', 'p1', 'r1', 'r1', 'WIN', '[]', '{}', "
            "NULL, TRUE, 'x', 1)"
        )
        conn.commit()
    engine.dispose()
    store = open_store(uri)  # upgraded to 0005: the old decision has no evidence
    try:
        assert sql(store).db.current_revision() == SCHEMA_HEAD
        assert [d.id for d in store.list_decisions("pallets")] == ["d1"]
        new = Decision("d2", "pallets", "r1", "r1", "WIN", [], {}, None, False, "x", 2.0)
        assert store.add_decision(new, evidence="a" * 64) == new
        assert store.find_decision("pallets", "a" * 64) == new
        with sql(store).db.read() as conn:
            rows = conn.exec_driver_sql("SELECT id, evidence FROM decisions ORDER BY id").all()
        assert [tuple(r) for r in rows] == [("d1", None), ("d2", "a" * 64)]
    finally:
        store.close()


# --------------------------------------------------------------------------- migration 0006
def _points_at_0005(conn: sa.Connection) -> None:
    _at(conn, "0005")
    _old_book_rows(conn)
    conn.exec_driver_sql(
        "INSERT INTO series (id, run_id, key, direction, count, nan_count, best, best_epoch, final, "
        "final_epoch, first_epoch, last_epoch) VALUES (7, 'r1', 'metrics/mAP50-95(B)', 'max', 3, 1, "
        "0.5, 1, 0.5, 1, 0, 2)"
    )
    conn.exec_driver_sql(
        "INSERT INTO points (series_id, epoch, value) VALUES (7, 0, 0.25), (7, 1, 0.5), (7, 2, NULL)"
    )


def _check_points_after_0006(store: Store) -> None:
    assert sql(store).db.current_revision() == SCHEMA_HEAD
    run = store.get_run("pallets", "v1_old")
    history = store.get_all_history(run.id)["metrics/mAP50-95(B)"]
    assert history[:2] == [(0, 0.25), (1, 0.5)] and history[2][0] == 2 and history[2][1] != history[2][1]
    store.log_batch(run.id, [("metrics/mAP50-95(B)", 3, 0.75), ("metrics/mAP50-95(B)", 1, 0.125)])
    history = store.get_all_history(run.id)["metrics/mAP50-95(B)"]
    assert [e for e, _ in history] == [0, 1, 2, 3] and history[1] == (1, 0.125) and history[3] == (3, 0.75)
    summary = store.get_summaries([run.id])[run.id]["metrics/mAP50-95(B)"]
    assert (summary.best, summary.best_epoch, summary.count) == (0.75, 3, 4)


def test_an_sqlite_book_at_0005_keeps_its_points_without_the_foreign_key(tmp_path: Path) -> None:
    uri = str(tmp_path / "book")
    (tmp_path / "book").mkdir()
    engine = sa.create_engine(sql_url(uri))
    with engine.connect() as conn:
        _points_at_0005(conn)
        conn.commit()
    engine.dispose()
    store = open_store(uri)  # upgraded to 0006: the points table is copied
    try:
        _check_points_after_0006(store)
        with sql(store).db.read() as conn:
            ddl = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = 'points'").scalar_one()
            assert conn.exec_driver_sql("PRAGMA foreign_key_list(points)").all() == []
        assert "WITHOUT ROWID" in ddl.upper() and "REFERENCES" not in ddl.upper()
    finally:
        store.close()


@pytest.mark.postgres
def test_a_postgres_book_at_0005_keeps_its_points_without_the_foreign_key(fresh_pg_database: str) -> None:
    with _pg_upgraded(fresh_pg_database, _points_at_0005) as store:
        _check_points_after_0006(store)
        with sql(store).db.read() as conn:
            fks = conn.exec_driver_sql(
                "SELECT count(*) FROM pg_constraint WHERE conrelid = 'points'::regclass AND contype = 'f'"
            ).scalar_one()
        assert fks == 0


# --------------------------------------------------------------------------- migration 0007
def _check_accounts_after_0007(store: Store) -> None:
    assert sql(store).db.current_revision() == SCHEMA_HEAD
    assert store.get_run("pallets", "v1_old").name == "v1_old"
    accounts = sql(store).accounts
    assert accounts.user_count() == 0 and accounts.events() == []
    accounts.add_user("ada", admin=False, who="x")
    accounts.grant("ada", "pallets", "admin", who="x")  # a project made before 0007
    assert accounts.roles("ada") == {"pallets": "admin"}
    assert [e.action for e in accounts.events("pallets")] == ["grant"]


@contextlib.contextmanager
def _sqlite_upgraded(folder: Path, prepare: Callable[[sa.Connection], None]) -> Iterator[Store]:
    """The SQLite book in ``folder`` once ``prepare(conn)`` has written an old book there
    and opening it brought it to head."""
    folder.mkdir()
    engine = sa.create_engine(sql_url(str(folder)))
    with engine.connect() as conn:
        prepare(conn)
        conn.commit()
    engine.dispose()
    store = open_store(str(folder))
    try:
        yield store
    finally:
        store.close()


def _at_0006(conn: sa.Connection) -> None:
    _at(conn, "0006")
    _old_book_rows(conn)


def test_an_sqlite_book_at_0006_gets_the_accounts_tables(tmp_path: Path) -> None:
    with _sqlite_upgraded(tmp_path / "book", _at_0006) as store:
        _check_accounts_after_0007(store)


@pytest.mark.postgres
def test_a_postgres_book_at_0006_gets_the_accounts_tables_by_db_upgrade(fresh_pg_database: str) -> None:
    with _pg_upgraded(fresh_pg_database, _at_0006) as store:
        _check_accounts_after_0007(store)


# --------------------------------------------------------------------------- migration 0008
def _old_artifact_rows(conn: sa.Connection) -> None:
    _at(conn, "0007")
    _old_book_rows(conn)
    conn.exec_driver_sql(
        "INSERT INTO artifacts (id, run_id, name, digest, size, created_at) "
        f"VALUES ('a1', 'r1', 'best.pt', '{'ab' * 32}', 3, 0)"
    )


def _check_artifacts_after_0008(store: Store) -> None:
    from trialbook.core.entities import Artifact, Evaluation

    assert sql(store).db.current_revision() == SCHEMA_HEAD
    (old,) = store.list_artifacts("r1")
    assert (old.name, old.evaluation_id) == ("best.pt", None)  # a run's own file, as before
    store.add_evaluation(Evaluation(id="e1", run_id="r1", split="test", sealed=True, created_at=1))
    plot = Artifact(id="a2", run_id="r1", name="confusion_matrix.png", digest="cd" * 32, size=5, created_at=2)
    store.add_artifact(dataclasses.replace(plot, evaluation_id="e1"))
    assert [a.id for a in store.list_artifacts("r1")] == ["a1"]  # sealed with its test evaluation
    assert [a.evaluation_id for a in store.list_artifacts("r1", reveal=True)] == [None, "e1"]


def test_an_sqlite_book_at_0007_gets_evaluation_artifacts(tmp_path: Path) -> None:
    with _sqlite_upgraded(tmp_path / "book", _old_artifact_rows) as store:
        _check_artifacts_after_0008(store)


@pytest.mark.postgres
def test_a_postgres_book_at_0007_gets_evaluation_artifacts_by_db_upgrade(fresh_pg_database: str) -> None:
    with _pg_upgraded(fresh_pg_database, _old_artifact_rows) as store:
        _check_artifacts_after_0008(store)
