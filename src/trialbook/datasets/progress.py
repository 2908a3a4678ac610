"""Progress of long dataset work: a rich bar on stderr, only on a terminal, only when slow.

The bar appears once the work has run for ``DELAY`` seconds, so quick checks print nothing;
rich is imported only then.
"""

from __future__ import annotations

import sys
import time
from typing import Any

DELAY = 1.0


def stderr_is_terminal() -> bool:
    stream = sys.stderr
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError):  # replaced or closed stream
        return False


class Reporter:
    """Reports phases of work. ``enabled``: True always shows (after the delay), False never,
    None shows when stderr is a terminal."""

    def __init__(self, enabled: bool | None = None, *, delay: float | None = None) -> None:
        self.enabled = stderr_is_terminal() if enabled is None else bool(enabled)
        self.delay = DELAY if delay is None else delay
        self._start = time.monotonic()
        self._progress: Any = None
        self._task: Any = None
        self._phase: tuple[str, int | None, bool] = ("", None, False)
        self._done = 0

    def phase(self, description: str, total: int | None, *, as_bytes: bool = False) -> None:
        """Start a phase of ``total`` units (bytes when ``as_bytes``; None when unknown)."""
        unit_changed = as_bytes != self._phase[2]
        self._phase = (description, total, as_bytes)
        self._done = 0
        if self._progress is not None and unit_changed:
            self.close()
        if self._progress is not None:
            self._new_task()
        else:
            self._maybe_show()

    def advance(self, amount: int) -> None:
        self._done += amount
        if self._progress is None:
            self._maybe_show()
        if self._progress is not None:
            self._progress.update(self._task, completed=self._done)

    def _maybe_show(self) -> None:
        if not self.enabled or time.monotonic() - self._start < self.delay:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        _, _, as_bytes = self._phase
        columns: list[Any] = [TextColumn("{task.description}"), BarColumn()]
        if as_bytes:
            columns += [DownloadColumn(), TransferSpeedColumn()]
        else:
            columns += [MofNCompleteColumn()]
        columns.append(TimeRemainingColumn())
        self._progress = Progress(*columns, console=Console(stderr=True), transient=True)
        self._progress.start()
        self._new_task()

    def _new_task(self) -> None:
        description, total, _ = self._phase
        if self._task is not None:
            self._progress.remove_task(self._task)
        self._task = self._progress.add_task(description, total=total, completed=self._done)

    @property
    def shown(self) -> bool:
        return self._progress is not None

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            self._task = None
