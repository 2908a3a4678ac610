"""The benchmarks' bulk-filled books read as books written through the store do
(``bench/_books.py``, used by ``bench/scale.py``), on SQLite and on PostgreSQL.

The same runs are written twice into one store: once by ``bulk_fill`` (rows straight into
the schema, many runs a statement) and once through the store's own ``create_run`` and
``log_batch``, each set in a project of its own. Everything a page or a compare reads is
then compared: the run records (ids and project aside), the series summaries, the
histories, the sparklines, and the ranked, paged table with its total.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import uuid
from pathlib import Path
from typing import Any

from trialbook.core.entities import RunRecord
from trialbook.store import Store

BENCH = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import _books  # noqa: E402
import ui  # noqa: E402

RUNS, EPOCHS, BASE = 13, 7, 1_700_000_000.0


def store_path(store: Store, project: str) -> None:
    """The runs of ``bulk_fill``, through the store one call at a time (as
    ``ui.build_trialbook`` writes them): the same fields, ``create_run`` and ``log_batch``."""
    for i in range(RUNS):
        row = _books.run_row(i, uuid.uuid4().hex, "", EPOCHS, BASE)
        fields = {k: v for k, v in row.items() if k not in ("project_id", "dataset_digest")}
        store.create_run(RunRecord(project=project, **fields))
        store.log_batch(row["id"], {ui.RANK_KEY: dict(enumerate(ui.table_curve(i, EPOCHS)))})


def record(run: RunRecord) -> dict[str, Any]:
    return {k: v for k, v in dataclasses.asdict(run).items() if k not in ("id", "project")}


def reads(store: Store, project: str) -> dict[str, Any]:
    """What the UI's project page and compare read of ``project``, by run name."""
    by_name = {r.name: r for r in store.list_runs(project)}
    ids = [by_name[n].id for n in sorted(by_name)]
    names = store.run_names(ids)
    summaries = store.get_summaries(ids, [ui.RANK_KEY])
    history = store.get_history(ids, ui.RANK_KEY)
    lines = store.sparklines(ids, ui.RANK_KEY, 3)
    page = store.runs_page(project, ui.RANK_KEY, "max", offset=2, limit=5)
    return {
        "runs": {n: record(r) for n, r in by_name.items()},
        "summaries": {
            names[i]: {
                k: (v.best, v.best_epoch, v.final, v.final_epoch, v.count, v.nan_count) for k, v in s.items()
            }
            for i, s in summaries.items()
        },
        "history": {names[i]: h for i, h in history.items()},
        "sparklines": {names[i]: s for i, s in lines.items()},
        "page": (page.total, [r.name for r in page.runs]),
    }


def test_a_bulk_filled_book_reads_as_one_written_through_the_store(store: Store) -> None:
    store.create_project("bulk")
    store.create_project("api")
    finals = _books.bulk_fill(store, RUNS, EPOCHS, project="bulk", base=BASE)
    store_path(store, "api")
    bulk, api = reads(store, "bulk"), reads(store, "api")
    assert bulk == api
    first = bulk["runs"][ui.table_name(0)]
    assert (first["config"], first["tags"], first["created_at"]) == (ui.settings(0, EPOCHS), ui.tags(0), BASE)
    assert len(bulk["runs"]) == RUNS and all(len(h) == EPOCHS for h in bulk["history"].values())
    assert finals == [(ui.table_name(i), ui.table_curve(i, EPOCHS)[-1]) for i in range(RUNS)]
    assert not any(math.isnan(v) for h in bulk["history"].values() for _, v in h)
