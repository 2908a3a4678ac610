"""``trialbook runs`` on a book of 120 runs: a page of 50 and how many more by default,
``--limit`` / ``--offset`` / ``--all``, the UI's filters and sorts, ``--json`` complete
unless limited, and clear errors for bad values."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from support.cli import cli_json, invoke
from trialbook.api import Book
from trialbook.core.entities import RunRecord

MAP = "metrics/mAP50-95(B)"
N = 120


@dataclass(frozen=True)
class Made:
    """One run of the book as written: what each filter and sort should find."""

    i: int
    name: str
    best: float
    epochs: int
    status: str
    dataset: str | None
    tags: dict[str, str] = field(default_factory=dict)


def made(i: int) -> Made:
    """Run ``i``: a distinct best value (47 and 120 are coprime), 1 to 4 epochs, some
    failed / crashed / running, a quarter unpinned, every other one tagged."""
    status = {3: "failed", 7: "crashed"}.get(i % 10, "running" if i == 5 else "finished")
    dataset = None if i % 4 == 0 else "pallets:v2" if i % 4 == 1 else "pallets:v1"
    return Made(
        i=i,
        name=f"v{i + 1:03d}_lr" + ("_big" if i % 5 == 0 else ""),
        best=round(0.05 + 0.8 * ((i * 47) % N) / N, 6),
        epochs=1 + i % 4,
        status=status,
        dataset=dataset,
        tags={"sweep": f"s{i % 3}"} if i % 2 == 0 else {},
    )


RUNS = [made(i) for i in range(N)]
RANKED = [r.name for r in sorted(RUNS, key=lambda r: -r.best)]


def fill(book: Book) -> None:
    """The 120 runs, written straight through the store in one transaction."""
    from trialbook.store.sql.store import SqlStore

    store = book.store
    assert isinstance(store, SqlStore)
    store.ensure_project("pallets")
    base = time.time() - 3600
    with store.db.write():
        for r in RUNS:
            rid = uuid.uuid4().hex
            at = time.time() if r.status == "running" else base + r.i
            store.create_run(
                RunRecord(
                    id=rid,
                    project="pallets",
                    name=r.name,
                    status=r.status,
                    created_at=base + r.i,
                    heartbeat_at=at,
                    ended_at=None if r.status == "running" else at,
                    dataset=r.dataset,
                    pinned=r.dataset is not None,
                    tags=r.tags,
                )
            )
            curve = {e: r.best * (e + 1) / r.epochs for e in range(r.epochs)}
            store.log_batch(rid, {MAP: curve, "train/box_loss": {e: 2.0 - v for e, v in curve.items()}})


@pytest.fixture(scope="module")
def uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The book of 120 runs (built once: every test here only reads it)."""
    book = Book.open(str(tmp_path_factory.mktemp("paging") / "book"), create=True)
    fill(book)
    book.close()
    yield str(book.uri)


def runs(uri: str, *args: str, code: int = 0) -> str:
    """``trialbook runs ARGS --uri URI``: its stdout (or stderr when it failed)."""
    result = invoke("runs", *args, "--uri", uri)
    assert result.exit_code == code, result.output
    return result.stdout if code == 0 else result.stderr


def rows(text: str) -> list[list[str]]:
    """The cells of the table's rows (lines between the table's side borders)."""
    return [
        [c.strip() for c in line.strip("│").split("│")] for line in text.splitlines() if line.startswith("│")
    ]


def names(data: dict[str, Any]) -> list[str]:
    return [r["name"] for r in data["runs"]]


def where(test: Callable[[Made], bool]) -> list[str]:
    """The names of the runs that pass ``test``, ranked."""
    passing = {r.name for r in RUNS if test(r)}
    return [n for n in RANKED if n in passing]


# --------------------------------------------------------------------------- the default view
def test_the_default_view_is_the_top_50_and_says_how_many_more(uri: str) -> None:
    text = runs(uri)
    table = rows(text)
    assert [r[1] for r in table] == RANKED[:50]
    assert [r[0] for r in table] == [str(i) for i in range(1, 51)]
    assert RANKED[50] not in text
    more = text.rstrip().splitlines()[-1]
    assert more.startswith("70 more runs (showing 1-50 of 120): --offset 50 for the next")
    for option in ("--limit N", "--all", "--status", "--dataset", "--tag", "--name", "--sort", "--order"):
        assert option in more


def test_the_default_view_reads_one_page_not_the_whole_table(
    uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trialbook.store.sql.store import SqlStore

    asked: list[int] = []
    page = SqlStore.runs_page

    def spy(self: SqlStore, *args: Any, **kw: Any) -> Any:
        asked.append(kw["limit"])
        return page(self, *args, **kw)

    def whole(*args: Any, **kw: Any) -> Any:
        raise AssertionError("the default view read every run")

    monkeypatch.setattr(SqlStore, "runs_page", spy)
    monkeypatch.setattr(SqlStore, "run_rows", whole)
    assert len(rows(runs(uri))) == 50
    assert asked == [50]
    assert len(rows(runs(uri, "--status", "finished"))) == 50 and asked[-1] == 50


# --------------------------------------------------------------------------- paging
def test_limit_and_offset_page_through_the_ranking(uri: str) -> None:
    text = runs(uri, "--limit", "10", "--offset", "20")
    assert [(r[0], r[1]) for r in rows(text)] == [(str(21 + i), n) for i, n in enumerate(RANKED[20:30])]
    assert text.rstrip().splitlines()[-1].startswith("90 more runs (showing 21-30 of 120): --offset 30")
    last = runs(uri, "--offset", "110")
    assert [r[1] for r in rows(last)] == RANKED[110:]
    assert last.rstrip().splitlines()[-1] == "runs 111-120 of 120"
    assert runs(uri, "--offset", "119").rstrip().splitlines()[-1] == "run 120 of 120"
    assert len(rows(runs(uri, "--limit", "500"))) == N
    beyond = runs(uri, "--offset", "500")
    assert rows(beyond) == [] and "no runs at offset 500: the project has 120 runs" in beyond


def test_all_shows_every_run_and_no_more_line(uri: str) -> None:
    text = runs(uri, "--all")
    assert [r[1] for r in rows(text)] == RANKED
    assert "more run" not in text


def test_project_and_metric_keep_working_with_a_page(uri: str) -> None:
    text = runs(uri, "-p", "pallets", "--metric", "train/box_loss", "--limit", "3")
    assert "runs ranked by train/box_loss (exploratory)" in text
    assert [r[1] for r in rows(text)] == RANKED[:3]  # the lowest loss is the best mAP
    assert "no project named 'nope'" in runs(uri, "-p", "nope", code=1)


# --------------------------------------------------------------------------- filters
@pytest.mark.parametrize(
    ("args", "test"),
    [
        (("--status", "failed"), lambda r: r.status == "failed"),
        (("--status", "failed", "--status", "running"), lambda r: r.status in ("failed", "running")),
        (("--status", "crashed"), lambda r: r.status == "crashed"),
        (("--dataset", "pallets:v2"), lambda r: r.dataset == "pallets:v2"),
        (("--dataset", ""), lambda r: r.dataset is None),
        (("--tag", "sweep"), lambda r: "sweep" in r.tags),
        (("--tag", "sweep=s1"), lambda r: r.tags.get("sweep") == "s1"),
        (("--name", "BIG"), lambda r: "big" in r.name),
        (("--name", "v01"), lambda r: "v01" in r.name),
        (
            ("--status", "finished", "--dataset", "pallets:v1", "--tag", "sweep=s0"),
            lambda r: r.status == "finished" and r.dataset == "pallets:v1" and r.tags.get("sweep") == "s0",
        ),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, tuple) else "",
)
def test_each_filter_keeps_the_runs_that_pass_it(
    uri: str, args: Sequence[str], test: Callable[[Made], bool]
) -> None:
    want = where(test)
    assert want, "a filter that keeps nothing tests little"
    data = cli_json(uri, "runs", *args)
    assert names(data) == want and data["total"] == len(want)
    shown = [r[1] for r in rows(runs(uri, *args))]
    assert shown == want[:50]


def test_a_filtered_page_says_what_it_filtered(uri: str) -> None:
    text = runs(uri, "--tag", "sweep", "--limit", "5")
    assert "runs ranked by metrics/mAP50-95(B), tag sweep" in text
    assert text.rstrip().splitlines()[-1].startswith("55 more runs matching tag sweep (showing 1-5 of 60)")
    none = runs(uri, "--name", "nothing", "--status", "failed")
    assert none.strip() == "no runs of project pallets match status failed, name containing 'nothing'"


# --------------------------------------------------------------------------- sorts
def test_sort_and_order(uri: str) -> None:
    by_name = cli_json(uri, "runs", "--sort", "name", "--order", "desc", "--limit", "5")
    assert names(by_name) == sorted((r.name for r in RUNS), reverse=True)[:5]
    assert names(cli_json(uri, "runs", "--sort", "name", "--limit", "3")) == sorted(r.name for r in RUNS)[:3]
    worst = cli_json(uri, "runs", "--sort", "best", "--order", "asc", "--limit", "4")
    assert names(worst) == RANKED[::-1][:4]
    newest = cli_json(uri, "runs", "--sort", "created", "--order", "desc", "--limit", "3")
    assert names(newest) == [RUNS[i].name for i in (119, 118, 117)]
    most = cli_json(uri, "runs", "--sort", "epochs")["runs"]
    assert [r["epochs"] for r in most] == sorted((r.epochs for r in RUNS), reverse=True)
    text = runs(uri, "--sort", "epochs", "--order", "asc", "--limit", "2")
    assert "runs sorted by epochs asc (metrics/mAP50-95(B))" in text
    assert [r[8] for r in rows(text)] == ["1", "1"]


# --------------------------------------------------------------------------- --json
def test_json_is_every_run_unless_limited(uri: str) -> None:
    data = cli_json(uri, "runs")
    assert names(data) == RANKED and data["total"] == N and data["limit"] is None
    for key in ("project", "metric", "runs"):
        assert key in data
    for key in ("name", "status", "dataset", "pinned", "parent", "best", "final", "epoch_of_best", "epochs"):
        assert key in data["runs"][0]
    assert data["runs"][0]["best"] == pytest.approx(max(r.best for r in RUNS))
    limited = cli_json(uri, "runs", "--limit", "5", "--offset", "10")
    assert names(limited) == RANKED[10:15] and (limited["total"], limited["offset"]) == (N, 10)
    assert names(cli_json(uri, "runs", "--offset", "100")) == RANKED[100:]
    assert names(cli_json(uri, "runs", "--all")) == RANKED


# --------------------------------------------------------------------------- bad values
@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--limit", "0"), "'--limit': 0 is not in the range 1<=x<=500"),
        (("--limit", "501"), "'--limit'"),
        (("--limit", "ten"), "'--limit'"),
        (("--offset", "-1"), "'--offset'"),
        (("--all", "--limit", "10"), "--all shows every run: it cannot be combined with --limit"),
        (("--all", "--offset", "5"), "cannot be combined with --offset"),
        (("--status", "done"), "'--status': 'done' is not one of 'running', 'finished', 'failed', 'crashed'"),
        (("--sort", "size"), "'--sort': 'size' is not one of"),
        (("--order", "up", "--sort", "name"), "'--order': 'up' is not one of 'asc', 'desc'"),
        (("--order", "asc"), "--order needs a --sort other than rank"),
        (("--dataset", "pallets"), "'--dataset': 'pallets' is not NAME:TAG"),
        (("--dataset", "pallets:"), "is not NAME:TAG"),
        (("--tag", "=s1"), "'--tag': '=s1' is not KEY or KEY=VALUE"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, tuple) else "",
)
def test_bad_values_get_one_clear_error_naming_the_option(uri: str, args: Sequence[str], says: str) -> None:
    error = runs(uri, *args, "--json", code=2)
    assert says in error and "Traceback" not in error


# --------------------------------------------------------------------------- the constants
def test_the_commands_choices_are_the_services() -> None:
    from trialbook.cli import runs as cli_runs
    from trialbook.core.entities import RUN_STATUSES
    from trialbook.services.runs import MAX_PAGE
    from trialbook.store.sql.queries import PAGE_SORTS

    assert cli_runs.STATUSES == RUN_STATUSES
    assert cli_runs.SORTS == PAGE_SORTS
    assert cli_runs.MAX_LIMIT == MAX_PAGE
