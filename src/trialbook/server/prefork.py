"""The team server's processes: a gunicorn master that forks ``workers`` uvicorn workers
(``uvicorn_worker.UvicornWorker``) on one listening socket.

Why gunicorn rather than ``uvicorn --workers``:

* start-up: uvicorn *spawns* its workers, and each imports trialbook, FastAPI and
  SQLAlchemy again (about 0.7 s of CPU a worker, paid N times on a shared machine); here
  the master imports them once (``trialbook.server.team``, before ``run``) and forks, so
  a worker only builds its app (its own database engine, after the fork);
* latency: gunicorn sets ``TCP_NODELAY`` on the listening socket, which accepted
  connections inherit; uvicorn's workers got their sockets in a way asyncio does not
  recognise as TCP, so every answer after a connection's first waited for the client's
  delayed ACK (about 45 ms a call instead of 3 ms).

A worker whose master dies (SIGKILL) gets SIGTERM from the kernel (``PR_SET_PDEATHSIG``,
Linux) and exits instead of serving on alone; the master restarts a worker that dies.
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
from typing import Any

from gunicorn.app.base import BaseApplication

from trialbook.server.team import create_team_app

__all__ = ["serve"]

_PR_SET_PDEATHSIG = 1
GRACEFUL_TIMEOUT_S = 10
WORKER_TIMEOUT_S = 120  # a worker silent for this long (a stuck event loop) is restarted


def _die_with_master(_arbiter: Any, _worker: Any) -> None:
    """gunicorn's ``post_fork`` hook: SIGTERM this worker when its master dies."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class _TeamServer(BaseApplication):
    def __init__(self, options: dict[str, Any]) -> None:
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for name, value in self._options.items():
            self.cfg.set(name, value)

    def load(self) -> Any:
        return create_team_app()  # in the worker, after the fork


def serve(host: str, port: int, workers: int) -> None:
    """Serve ``trialbook.server.team``'s app on ``host:port`` in ``workers`` processes
    until SIGTERM or SIGINT (configured by the environment ``trialbook server`` sets)."""
    shown = f"[{host}]" if ":" in host else host
    _TeamServer(
        {
            "bind": [f"{shown}:{port}"],
            "workers": workers,
            "worker_class": "uvicorn_worker.UvicornWorker",
            "loglevel": "warning",
            "accesslog": None,
            "graceful_timeout": GRACEFUL_TIMEOUT_S,
            "timeout": WORKER_TIMEOUT_S,
            "keepalive": 5,
            "proc_name": "trialbook-server",
            "post_fork": _die_with_master,
        }
    ).run()
