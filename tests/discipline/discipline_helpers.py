"""Helpers of the discipline's tests: books filled with hand-made runs, the CLI.

Runs are created through the store (so that they can carry split digests, statuses and
legacy names directly), with per-epoch values, a val evaluation and a sealed test one.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from click.testing import CliRunner, Result

from trialbook.api import Book
from trialbook.core.entities import Evaluation, RunRecord

MAP = "metrics/mAP50-95(B)"
DEVICE = "jetson-orin-nx"
VAL_A = "a" * 64
VAL_B = "b" * 64
TEST_A = "c" * 64
TEST_B = "d" * 64
DIGESTS = {"dataset": "e" * 64, "train": "f" * 64, "val": VAL_A, "test": TEST_A}


def add_run(
    book: Book,
    name: str,
    *,
    project: str = "pallets",
    curve: Sequence[float] | None = None,
    val: float | None = None,
    per_class: Mapping[str, float] | None = None,
    latency: float | None = None,
    device: str | None = DEVICE,
    test: float | None = None,
    test_per_class: Mapping[str, float] | None = None,
    test_latency: float | None = None,
    digests: Mapping[str, str] | None = None,
    pinned: bool = True,
    parent: str | None = None,
    config: Mapping[str, Any] | None = None,
    status: str = "finished",
    legacy: bool = False,
    note: Mapping[str, str] | None = None,
    dataset: str = "pallets:v1",
) -> RunRecord:
    store = book.store
    store.ensure_project(project)
    digests = dict(DIGESTS if digests is None else digests)
    now = time.time()
    record = store.create_run(
        RunRecord(
            id=uuid.uuid4().hex,
            project=project,
            name=name,
            status=status,
            created_at=now,
            heartbeat_at=now,
            ended_at=now if status != "running" else None,
            parent_id=book.run(parent, project).id if parent else None,
            dataset=dataset if pinned else None,
            pinned=pinned,
            split_digests=digests,
            config=dict(config or {}),
            legacy_name=legacy,
        )
    )
    if curve:
        store.log_batch(record.id, {MAP: dict(enumerate(curve))})
    if val is not None or per_class or latency is not None:
        store.add_evaluation(
            Evaluation(
                id=uuid.uuid4().hex,
                run_id=record.id,
                split="val",
                sealed=False,
                created_at=time.time(),
                metrics={MAP: val} if val is not None else {},
                per_class_ap=dict(per_class or {}),
                latency_ms=latency,
                device=device,
                split_digest=digests.get("val"),
            )
        )
    if test is not None or test_per_class or test_latency is not None:
        store.add_evaluation(
            Evaluation(
                id=uuid.uuid4().hex,
                run_id=record.id,
                split="test",
                sealed=True,
                created_at=time.time(),
                metrics={MAP: test} if test is not None else {},
                per_class_ap=dict(test_per_class or {}),
                latency_ms=test_latency,
                device=device,
                split_digest=digests.get("test"),
            )
        )
    if note:
        store.set_note(record.id, dict(note), who="tester")
    return record


def set_protocol(book: Book, project: str = "pallets", **changes: Any) -> None:
    book.store.ensure_project(project)
    book.store.update_protocol(project, changes, reason="test setup", who="tester")


CLI = Callable[..., Result]


def make_cli(uri: str) -> CLI:
    from trialbook.cli.main import cli

    runner = CliRunner()

    def run(*args: str, code: int | None = 0) -> Result:
        result = runner.invoke(cli, [*args, "--uri", uri], catch_exceptions=False)
        if code is not None:
            assert result.exit_code == code, (args, result.output)
        return result

    return run


def as_json(result: Result) -> Any:
    return json.loads(result.stdout)
