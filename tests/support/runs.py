"""Books filled with hand-made runs.

``add_run`` writes a run through the store of a ``Book`` (so that it can carry split
digests, statuses, legacy names and sealed evaluations directly): per-epoch values, a val
evaluation and a sealed test one. ``make_run`` is the bare run of the store contract suite.
``make_sealed_book`` is a book whose sealed test numbers are distinctive enough to be
looked for in any text.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from trialbook.api import Book
from trialbook.core.entities import Evaluation, RunRecord
from trialbook.store import Store

MAP = "metrics/mAP50-95(B)"
LOSS = "val/box_loss"
DEVICE = "jetson-orin-nx"
VAL_A = "a" * 64
VAL_B = "b" * 64
TEST_A = "c" * 64
TEST_B = "d" * 64
DIGESTS = {"dataset": "e" * 64, "train": "f" * 64, "val": VAL_A, "test": TEST_A}

# Sealed test numbers of ``make_sealed_book`` that appear nowhere else in it: a page or a
# response holding one of them leaked it.
CAND_TEST = 0.5813
CAND_TEST_CLASS = 0.6137
BASE_TEST = 0.5471
SEALED_TEXTS = ("0.5813", "0.6137", "0.5471", "58.13")


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
    matrix: list[list[float]] | None = None,
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
    """A run of ``project`` (made if missing), written through the store.

    ``curve`` is the protocol metric per epoch, written with a train loss and a learning
    rate beside it (as a training writes them). ``val``, ``per_class``, ``latency``
    (on ``device``) and ``matrix`` (a confusion matrix of pallet and box) make the val
    evaluation; ``test``, ``test_per_class`` and ``test_latency`` the sealed test one.
    ``digests`` are the split digests (``DIGESTS`` when pinned, none when not).
    """
    store = book.store
    store.ensure_project(project)
    digests = dict((DIGESTS if pinned else {}) if digests is None else digests)
    now = time.time()
    record = store.create_run(
        RunRecord(
            id=uuid.uuid4().hex,
            project=project,
            name=name,
            status=status,
            created_at=now,
            heartbeat_at=now,
            ended_at=None if status == "running" else now,
            parent_id=book.run(parent, project).id if parent else None,
            dataset=dataset if pinned else None,
            pinned=pinned,
            split_digests=digests,
            config=dict(config or {}),
            legacy_name=legacy,
        )
    )
    if curve:
        store.log_batch(
            record.id,
            {
                MAP: dict(enumerate(curve)),
                "train/box_loss": {e: 2.0 - v for e, v in enumerate(curve)},
                "lr/pg0": {e: 0.01 for e in range(len(curve))},
            },
        )
    if val is not None or per_class or latency is not None:
        store.add_evaluation(
            Evaluation(
                id=uuid.uuid4().hex,
                run_id=record.id,
                split="val",
                sealed=False,
                created_at=now,
                metrics={MAP: val} if val is not None else {},
                per_class_ap=dict(per_class or {}),
                latency_ms=latency,
                device=device,
                split_digest=digests.get("val"),
                confusion_matrix=matrix,
                class_names=["pallet", "box"] if matrix else None,
            )
        )
    if test is not None or test_per_class or test_latency is not None:
        store.add_evaluation(
            Evaluation(
                id=uuid.uuid4().hex,
                run_id=record.id,
                split="test",
                sealed=True,
                created_at=now + 1,
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
    """Change the protocol of ``project`` (made if missing), with a reason and a who."""
    book.store.ensure_project(project)
    book.store.update_protocol(project, changes, reason="test setup", who="tester")


def make_run(store: Store, name: str = "v1_base", project: str = "pallets", **kw: Any) -> RunRecord:
    """A bare run of ``project`` (made if missing), running unless ``status`` says otherwise."""
    store.ensure_project(project)
    kw.setdefault("status", "running")
    kw.setdefault("created_at", time.time())
    return store.create_run(RunRecord(id=uuid.uuid4().hex, project=project, name=name, **kw))


def make_sealed_book(path: Path) -> Book:
    """Two pinned runs whose sealed test numbers are distinctive (``SEALED_TEXTS``), so
    that their absence before a decision and presence after it can be checked in text."""
    book = Book.open(str(path), create=True)
    set_protocol(book, latency_budget_ms=8.0, device=DEVICE)
    curve_a = [0.1, 0.2, 0.3, 0.4, 0.45, 0.5]
    curve_b = [0.1, 0.25, 0.35, 0.45, 0.5, 0.55]
    m = [[40.0, 2.0, 3.0], [1.0, 30.0, 2.0], [4.0, 5.0, 0.0]]
    add_run(
        book,
        "v1_base",
        curve=curve_a,
        val=0.5,
        per_class={"pallet": 0.4, "box": 0.6},
        latency=4.0,
        test=BASE_TEST,
        test_latency=4.0,
        config={"imgsz": 640, "lr0": 0.01},
        matrix=m,
        note={"hypothesis": "a baseline"},
    )
    add_run(
        book,
        "v2_more_data",
        parent="v1_base",
        curve=curve_b,
        val=0.55,
        per_class={"pallet": 0.5, "box": 0.62},
        latency=4.5,
        test=CAND_TEST,
        test_per_class={"pallet": CAND_TEST_CLASS, "box": 0.65},
        test_latency=4.5,
        config={"imgsz": 640, "lr0": 0.02},
        matrix=[[45.0, 1.0, 2.0], [1.0, 32.0, 1.0], [2.0, 3.0, 0.0]],
    )
    return book


def hist(book: Book, run: RunRecord, key: str) -> dict[int, float]:
    """The values of ``key`` of ``run``, by epoch."""
    return dict(book.store.get_history([run.id], key)[run.id])
