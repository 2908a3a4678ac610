"""Rules about runs that need no storage: status as seen by a reader, and the order of runs.

Effective status
    A run's stored status is what its writer last said. A run still stored as
    ``running`` whose last sign of life (``heartbeat_at``, else ``created_at``) is older
    than ``timeout`` seconds is shown as ``crashed``: its process vanished (SIGKILL, power
    loss, the OOM killer) without saying so. Precisely, with
    ``stale = stale_before(now, timeout)`` (that is ``now - timeout``), the run is crashed
    when ``last < stale``. The store's SQL twin takes the same ``stale_before`` value
    (``QueryStore.runs_page(statuses=..., stale_before=...)``,
    ``QueryStore.project_counts(stale_before)``) and compares the same way, so a page and
    a list of the same runs never disagree, even at the boundary.

Order of runs
    Where runs are listed "oldest first" they are ordered by :func:`run_order`:
    ``created_at``, then ``id`` for runs created at the same instant. Ranking breaks ties
    the same way (``core.ranking``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from trialbook.core.entities import RunRecord

# A running run whose writer has not beaten for this long is shown as crashed.
HEARTBEAT_TIMEOUT_S = 60.0
HEARTBEAT_INTERVAL_S = 5.0


def stale_before(now: float, timeout: float = HEARTBEAT_TIMEOUT_S) -> float:
    """The instant before which a running run's last sign of life makes it crashed."""
    return now - timeout


def last_seen(run: RunRecord) -> float:
    """The run's last sign of life: its last heartbeat, else its creation."""
    return run.heartbeat_at if run.heartbeat_at is not None else run.created_at


def effective_status(run: RunRecord, now: float, timeout: float = HEARTBEAT_TIMEOUT_S) -> str:
    """``run.status``, except that a run still marked running whose last sign of life is
    before ``stale_before(now, timeout)`` is ``crashed`` (see the module docstring)."""
    if run.status != "running":
        return run.status
    return "crashed" if last_seen(run) < stale_before(now, timeout) else "running"


def run_order(run: RunRecord) -> tuple[float, str]:
    """The sort key of "oldest first": ``(created_at, id)``."""
    return (run.created_at, run.id)
