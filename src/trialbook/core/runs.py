"""Rules about runs that need no storage: status as seen by a reader."""

from __future__ import annotations

from trialbook.core.entities import RunRecord

# A running run whose writer has not beaten for this long is shown as crashed.
HEARTBEAT_TIMEOUT_S = 60.0
HEARTBEAT_INTERVAL_S = 5.0


def effective_status(run: RunRecord, now: float, timeout: float = HEARTBEAT_TIMEOUT_S) -> str:
    """``run.status``, except that a run still marked running without a recent heartbeat
    is ``crashed`` (its process vanished: SIGKILL, power loss, OOM killer)."""
    if run.status != "running":
        return run.status
    last = run.heartbeat_at if run.heartbeat_at is not None else run.created_at
    return "crashed" if now - last > timeout else "running"
