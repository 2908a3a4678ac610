"""core.runs: the effective status of a run, the stale bound, the order of runs."""

from __future__ import annotations

import math

import pytest

from trialbook.core.entities import RUN_STATUSES, RunRecord
from trialbook.core.runs import (
    HEARTBEAT_INTERVAL_S,
    HEARTBEAT_TIMEOUT_S,
    effective_status,
    last_seen,
    run_order,
    stale_before,
)


def run(
    status: str = "running", created: float = 100.0, heartbeat: float | None = None, run_id: str = "r"
) -> RunRecord:
    return RunRecord(
        id=run_id, project="p", name="v1_x", status=status, created_at=created, heartbeat_at=heartbeat
    )


def test_a_fresh_running_run_is_running() -> None:
    assert effective_status(run(heartbeat=1000.0), now=1000.0 + HEARTBEAT_TIMEOUT_S - 1) == "running"


def test_a_running_run_without_recent_heartbeat_is_crashed() -> None:
    assert effective_status(run(heartbeat=1000.0), now=1000.0 + HEARTBEAT_TIMEOUT_S + 1) == "crashed"


def test_the_boundary_is_the_stale_bound_itself() -> None:
    now = 1234.5
    bound = stale_before(now)
    assert bound == now - HEARTBEAT_TIMEOUT_S
    assert effective_status(run(heartbeat=bound), now) == "running"  # last seen at the bound
    assert effective_status(run(heartbeat=math.nextafter(bound, -math.inf)), now) == "crashed"


def test_without_a_heartbeat_the_creation_counts() -> None:
    assert last_seen(run(created=50.0)) == 50.0 and last_seen(run(created=50.0, heartbeat=70.0)) == 70.0
    assert effective_status(run(created=50.0), now=50.0 + HEARTBEAT_TIMEOUT_S + 1) == "crashed"
    assert effective_status(run(created=50.0), now=60.0) == "running"


@pytest.mark.parametrize("status", [s for s in RUN_STATUSES if s != "running"])
def test_other_statuses_are_as_stored(status: str) -> None:
    assert effective_status(run(status, heartbeat=0.0), now=1e9) == status


def test_a_timeout_can_be_given_and_infinity_means_never_stale() -> None:
    r = run(heartbeat=0.0)
    assert effective_status(r, now=10.0, timeout=5.0) == "crashed"
    assert effective_status(r, now=10.0, timeout=20.0) == "running"
    assert effective_status(r, now=1e12, timeout=math.inf) == "running"
    assert stale_before(10.0, 5.0) == 5.0


def test_the_writer_beats_well_within_the_timeout() -> None:
    assert HEARTBEAT_INTERVAL_S * 3 <= HEARTBEAT_TIMEOUT_S


def test_oldest_first_then_by_id() -> None:
    runs = [run(created=2.0, run_id="b"), run(created=1.0, run_id="z"), run(created=2.0, run_id="a")]
    assert [r.id for r in sorted(runs, key=run_order)] == ["z", "a", "b"]
