"""`log` latency against a remote book whose server is down, through the outbox.

The "server" is a real SQLite book behind a wrapper that says it is remote and refuses
every call (a server that cannot be reached); `log` must not notice. Prints a table of
p50 / p99 / max of `log` (14 keys an epoch) with the store up, and down, and how much
reached the outbox. Run: `.venv/bin/python bench/spool.py [--epochs 20000]`.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, cast

from trialbook.api import Book
from trialbook.errors import StorageError
from trialbook.store.base import Store

KEYS = [f"metrics/key_{i}" for i in range(14)]


class Flaky:
    remote = True

    def __init__(self, real: Store) -> None:
        self.real, self.uri, self.down = real, real.uri, False

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.real, name)
        if not callable(target) or name in ("close", "transaction"):
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            if self.down:
                raise StorageError("connection refused")
            return target(*args, **kwargs)

        return call


def measure(book: Book, name: str, epochs: int) -> list[float]:
    run = book.start("bench", name, allow_unpinned=True)
    times = []
    for epoch in range(epochs):
        values = {k: epoch * 1e-3 for k in KEYS}
        t = time.perf_counter_ns()
        run.log(values, epoch=epoch)
        times.append((time.perf_counter_ns() - t) / 1000)
    run.finish()
    return sorted(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=20_000)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["TRIALBOOK_OUTBOX"] = str(Path(tmp) / "outbox.db")
        real = Book.open(str(Path(tmp) / "server"), create=True)
        flaky = Flaky(real.store)
        book = Book(cast(Store, flaky))
        rows = []
        for label, down in (("store up", False), ("store down", True)):
            flaky.down = down
            t = measure(book, f"v1_{label.replace(' ', '_')}", args.epochs)
            rows.append((label, t[len(t) // 2], t[int(len(t) * 0.99)], t[-1]))
            if not down:  # what the run's short grace at its end did not send
                book.upload_outbox()
        assert book.outbox is not None
        left = book.outbox.pending(book.uri)
        print(
            f"{'case':<12} {'log p50 µs':>11} {'log p99 µs':>11} {'log max µs':>11}"
            f"   ({args.epochs} epochs x 14 keys)"
        )
        for label, p50, p99, top in rows:
            print(f"{label:<12} {p50:>11.1f} {p99:>11.1f} {top:>11.1f}")
        print(f"writes kept in the outbox after the outage: {left} (expected {args.epochs * 14 + 2})")
        book.close()
        real.close()


if __name__ == "__main__":
    main()
