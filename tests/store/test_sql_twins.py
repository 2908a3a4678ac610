"""SQL twins: every rule the store also computes in SQL agrees with its Python rule in
``core``, on the same data, on SQLite and on PostgreSQL.

Hypothesis draws the data (a bounded, derandomized number of examples, so the file runs
in seconds and a failure reproduces); each example writes to a project of its own in the
test's store.

(a) the note has text: ``run_rows().has_note`` and ``project_counts().note_debt`` against
    ``core.notes.has_text`` / ``note_debt`` (blanks are ASCII whitespace only);
(b) the effective status: ``runs_page(statuses=..., stale_before=...)`` and
    ``project_counts(stale_before).running`` against ``core.runs.effective_status``;
(c) the ranking: ``runs_page(sort="rank")`` page after page against ``core.ranking.rank``
    with ``tiebreak=core.runs.run_order``, on the same summaries;
(d) the summary kept on write (appends, back-fills, rewrites, NaN) against
    ``core.metrics.summarize`` of the points.
"""

from __future__ import annotations

import math
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trialbook.core.entities import NOTE_BLANKS, NOTE_TEXT_FIELDS, RUN_STATUSES, Note, RunRecord
from trialbook.core.metrics import direction_of, summarize
from trialbook.core.notes import has_text, note_debt
from trialbook.core.ranking import rank
from trialbook.core.runs import effective_status, run_order, stale_before
from trialbook.store import Store

MAP = "metrics/mAP50-95(B)"
LOSS = "val/box_loss"
LR = "lr/pg0"

# The store fixture is shared by the examples of one test on purpose: each example makes
# a project of its own, and opening a book per example would cost more than the checks.
TWIN = settings(
    max_examples=30,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def new_project(store: Store) -> str:
    name = f"p_{uuid.uuid4().hex[:12]}"
    store.create_project(name)
    return name


def add_run(
    store: Store,
    project: str,
    i: int,
    *,
    status: str = "finished",
    created_at: float = 0.0,
    heartbeat_at: float | None = None,
    run_id: str | None = None,
) -> RunRecord:
    return store.create_run(
        RunRecord(
            id=run_id or uuid.uuid4().hex,
            project=project,
            name=f"v{i}_run",
            status=status,
            created_at=created_at,
            heartbeat_at=heartbeat_at,
        )
    )


def same(a: Any, b: Any) -> bool:
    """Equal, NaN equal to NaN."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


# ------------------------------------------------------------------- (a) the note has text
# blanks, Unicode spaces that are *not* blanks, and letters
NOTE_CHARS = st.sampled_from([*NOTE_BLANKS, "\u00a0", "\u2003", "\u3000", "\x1c", "\x85", "a", "é", "."])
NOTE_FIELDS_TEXT = st.dictionaries(
    st.sampled_from(NOTE_TEXT_FIELDS), st.text(alphabet=NOTE_CHARS, max_size=4), max_size=5
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", False),
        (" ", False),
        ("\n\t", False),
        ("\r\f\v \t", False),
        ("\u00a0", True),
        ("\x1c", True),
        (" x ", True),
    ],
)
def test_blanks_are_ascii_whitespace(text: str, expected: bool) -> None:
    note = Note(run_id="r", result=text)
    assert has_text(note) is has_text({"result": text}) is note.has_text is (not note.is_empty) is expected
    assert note_debt(note, "finished") is (not expected)


@TWIN
@given(fields=NOTE_FIELDS_TEXT)
def test_note_has_text_one_rule_for_entities_and_mappings(fields: dict[str, Any]) -> None:
    note = Note(run_id="r", **fields)
    assert note.has_text is has_text(fields) is has_text(note) is (not note.is_empty)
    assert note.has_text == any(ch not in NOTE_BLANKS for v in fields.values() for ch in v)


@TWIN
@given(
    runs=st.lists(
        st.tuples(st.sampled_from(RUN_STATUSES), st.none() | NOTE_FIELDS_TEXT), min_size=1, max_size=5
    )
)
def test_note_written_in_sql_is_has_text(store: Store, runs: list[tuple[str, dict[str, str] | None]]) -> None:
    project = new_project(store)
    made = []
    for i, (status, fields) in enumerate(runs):
        run = add_run(store, project, i, status=status, created_at=float(i), heartbeat_at=1e12)
        if fields is not None:
            store.set_note(run.id, fields, who="t")
        made.append((run, fields))
    rows = {row.id: row for row in store.run_rows(project, MAP)}
    stored = store.get_notes([r.id for r, _ in made])
    for run, fields in made:
        assert rows[run.id].has_note is has_text(fields), (fields, rows[run.id])
        assert has_text(stored.get(run.id)) is has_text(fields)
    debt = sum(note_debt(fields, effective_status(run, 0.0)) for run, fields in made)
    assert store.project_counts()[project].note_debt == debt
    assert store.project_counts(0.0)[project].note_debt == debt


# ---------------------------------------------------------------- (b) the effective status
TIMES = st.floats(min_value=0.0, max_value=1e6, allow_nan=False, allow_subnormal=False)
# where a run's last sign of life is: an absolute time, or at / just before / just after
# the stale bound (the boundary is where a Python and a SQL comparison could differ)
SEEN = st.one_of(
    TIMES.map(lambda t: ("at", t)),
    st.sampled_from([("bound", 0), ("bound", -1), ("bound", 1)]),
)


def _seen(spec: tuple[str, float], bound: float) -> float:
    kind, x = spec
    if kind == "at":
        return float(x)
    return {0: bound, -1: math.nextafter(bound, -math.inf), 1: math.nextafter(bound, math.inf)}[int(x)]


@TWIN
@given(
    now=st.floats(min_value=1e3, max_value=2e6, allow_nan=False, allow_subnormal=False),
    timeout=st.sampled_from([60.0, 0.25]) | st.floats(min_value=0.0, max_value=1e4, allow_nan=False),
    bounded=st.booleans(),
    statuses=st.lists(st.sampled_from(RUN_STATUSES), unique=True, max_size=4),
    runs=st.lists(st.tuples(st.sampled_from(RUN_STATUSES), SEEN, st.none() | SEEN), min_size=1, max_size=6),
)
def test_the_sql_status_filter_is_effective_status(
    store: Store,
    now: float,
    timeout: float,
    bounded: bool,
    statuses: list[str],
    runs: list[tuple[str, tuple[str, float], tuple[str, float] | None]],
) -> None:
    project = new_project(store)
    bound = stale_before(now, timeout)
    made = [
        add_run(
            store,
            project,
            i,
            status=status,
            created_at=_seen(created, bound),
            heartbeat_at=None if beat is None else _seen(beat, bound),
        )
        for i, (status, created, beat) in enumerate(runs)
    ]
    # without a bound nothing is stale: the timeout is infinite
    effective = {r.id: effective_status(r, now, timeout if bounded else math.inf) for r in made}
    stale = bound if bounded else None
    page = store.runs_page(project, MAP, "max", statuses=statuses, stale_before=stale, limit=500)
    want = {rid for rid, status in effective.items() if not statuses or status in statuses}
    assert {r.id for r in page.runs} == want and page.total == len(want)
    counts = store.project_counts(stale)[project]
    assert counts.running == sum(status == "running" for status in effective.values())
    assert counts.runs == len(made)
    for row in store.run_rows(project, MAP):
        assert effective_status(row.as_record, now, timeout if bounded else math.inf) == effective[row.id]


# --------------------------------------------------------------------------- (c) ranking
VALUES = st.sampled_from([0.1, 0.5, 0.9]) | st.floats(
    min_value=-5, max_value=5, allow_nan=False, allow_subnormal=False
)


@st.composite
def ranked_runs(draw: Any) -> list[tuple[int, float, str, list[float] | None]]:
    """Runs as (id suffix, created_at, status, the values of their points or None):
    few distinct creation times and values, so that ties are common."""
    n = draw(st.integers(min_value=1, max_value=7))
    suffixes = draw(st.lists(st.integers(0, 0xFFFFFFFF), min_size=n, max_size=n, unique=True))
    return [
        (
            suffix,
            draw(st.sampled_from([1.0, 2.0, 3.0])),
            draw(st.sampled_from(["finished", "failed"])),
            draw(st.none() | st.lists(VALUES | st.just(math.nan), min_size=1, max_size=3)),
        )
        for suffix in suffixes
    ]


@TWIN
@given(
    runs=ranked_runs(),
    key=st.sampled_from([MAP, LOSS, LR]),
    direction=st.sampled_from(["max", "min", "none"]),
    sort=st.sampled_from(["rank", "best"]),
    filtered=st.booleans(),
    limit=st.integers(min_value=1, max_value=4),
    offset=st.integers(min_value=0, max_value=8),
)
def test_ranked_pages_are_core_ranking(
    store: Store,
    runs: list[tuple[int, float, str, list[float] | None]],
    key: str,
    direction: str,
    sort: str,
    filtered: bool,
    limit: int,
    offset: int,
) -> None:
    project = new_project(store)
    prefix = uuid.uuid4().hex[:24]
    made = []
    for i, (suffix, created, status, values) in enumerate(runs):
        run = add_run(store, project, i, status=status, created_at=created, run_id=f"{prefix}{suffix:08x}")
        if values:
            store.log_batch(run.id, {key: dict(enumerate(values))})
        made.append(run)
    summaries = store.get_summaries([r.id for r in made], [key])
    best = {rid: s[key].best if key in s else None for rid, s in summaries.items()}
    statuses = ["finished"] if filtered else []
    pool = [r for r in made if not statuses or r.status in statuses]
    expected = [r.id for r in rank(pool, lambda r: best[r.id], direction, tiebreak=run_order)]

    got: list[str] = []
    start = 0
    while True:  # page after page, as a UI would
        page = store.runs_page(
            project, key, direction, statuses=statuses, sort=sort, offset=start, limit=limit
        )
        assert page.total == len(expected)
        for run in page.runs:
            assert (run.id in page.summaries) == (key in summaries[run.id])
            if run.id in page.summaries:
                assert same(page.summaries[run.id].best, best[run.id])
        got += [r.id for r in page.runs]
        if len(page.runs) < limit:
            break
        start += limit
    assert got == expected
    one = store.runs_page(project, key, direction, statuses=statuses, sort=sort, offset=offset, limit=limit)
    assert [r.id for r in one.runs] == expected[offset : offset + limit]
    # the lists that rank rows in Python (run_rows is oldest first) rank the same way
    rows = [row for row in store.run_rows(project, key) if not statuses or row.status in statuses]
    assert [row.id for row in rank(rows, lambda row: row.best, direction)] == expected


# ------------------------------------------------------------- (d) the summary on write
EPOCHS = st.integers(min_value=0, max_value=12)
POINT_VALUES = st.sampled_from([0.25, 0.5, math.nan]) | st.floats(
    min_value=-10, max_value=10, allow_nan=False, allow_subnormal=False
)
BATCHES = st.lists(
    st.one_of(
        st.dictionaries(EPOCHS, POINT_VALUES, max_size=5).map(lambda d: ("mapping", d)),
        st.lists(st.tuples(EPOCHS, POINT_VALUES), max_size=5).map(lambda pts: ("tuples", pts)),
        st.lists(POINT_VALUES, min_size=1, max_size=4).map(lambda vs: ("append", vs)),
    ),
    min_size=1,
    max_size=6,
)
SUMMARY_FIELDS = ("count", "nan_count", "best", "best_epoch", "final", "final_epoch", "first_epoch")


@TWIN
@given(key=st.sampled_from([MAP, LOSS, LR]), batches=BATCHES)
def test_the_summary_kept_on_write_is_summarize_of_the_points(
    store: Store, key: str, batches: list[tuple[str, Any]]
) -> None:
    project = new_project(store)
    run = add_run(store, project, 0)
    model: dict[int, float] = {}  # the points, as a Python dict: the last value wins
    for kind, data in batches:
        if kind == "mapping":
            store.log_batch(run.id, {key: data})
            model.update(data)
        elif kind == "tuples":
            store.log_batch(run.id, [(key, epoch, value) for epoch, value in data])
            model.update(data)
        else:  # epochs after the last one: the summary is merged, not recomputed
            first = max(model) + 1 if model else 0
            points = {first + i: v for i, v in enumerate(data)}
            store.log_batch(run.id, {key: points})
            model.update(points)
        got = store.get_summaries([run.id], [key])[run.id].get(key)
        if not model:
            assert got is None
            continue
        want = summarize(model.items(), direction_of(key))
        assert got is not None and got.direction == direction_of(key)
        for field in SUMMARY_FIELDS:
            assert same(getattr(got, field), want[field]), (field, getattr(got, field), want[field], model)
        history = store.get_history([run.id], key)[run.id]
        assert len(history) == len(model)
        for (epoch, value), (want_epoch, want_value) in zip(history, sorted(model.items()), strict=True):
            assert epoch == want_epoch and same(value, want_value)
