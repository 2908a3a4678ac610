"""Helpers of the web UI tests: an in-process API client, a real uvicorn server on a free
loopback port, and small books with known (and distinctive) numbers."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio
import httpx

from trialbook.api import Book
from trialbook.core.entities import Evaluation, RunRecord

MAP = "metrics/mAP50-95(B)"
DEVICE = "jetson-orin-nx"
VAL = "a" * 64
TEST = "c" * 64
DIGESTS = {"dataset": "e" * 64, "train": "f" * 64, "val": VAL, "test": TEST}

# Sealed test numbers that appear nowhere else in the sealed book: a page or a response
# holding one of them leaked it.
CAND_TEST = 0.5813
CAND_TEST_CLASS = 0.6137
BASE_TEST = 0.5471
SEALED_TEXTS = ("0.5813", "0.6137", "0.5471", "58.13")


class Api:
    """The app in process, through ``httpx.ASGITransport`` (no server, no sockets)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://ui.test") as client:
                return await client.request(method, url, **kwargs)

        return anyio.run(go)

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def json(self, url: str, status: int = 200, **kwargs: Any) -> Any:
        r = self.get(url, **kwargs)
        assert r.status_code == status, (url, r.status_code, r.text[:500])
        return r.json()


class ServerThread:
    """uvicorn serving ``app`` in a thread, on a socket bound to a free loopback port."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, name="trialbook-ui-test", daemon=True
        )

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.time() + 30
        while not self.server.started:
            if time.time() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test UI server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


def add_run(
    book: Book,
    name: str,
    *,
    project: str = "pallets",
    curve: list[float] | None = None,
    val: float | None = None,
    per_class: Mapping[str, float] | None = None,
    latency: float | None = None,
    test: float | None = None,
    test_per_class: Mapping[str, float] | None = None,
    parent: str | None = None,
    config: Mapping[str, Any] | None = None,
    status: str = "finished",
    pinned: bool = True,
    note: Mapping[str, str] | None = None,
    matrix: list[list[float]] | None = None,
) -> RunRecord:
    """A run written through the store, with curves, a val evaluation and a sealed test one."""
    store = book.store
    store.ensure_project(project)
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
            dataset="pallets:v1" if pinned else None,
            pinned=pinned,
            split_digests=dict(DIGESTS) if pinned else {},
            config=dict(config or {}),
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
    if val is not None or per_class:
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
                device=DEVICE,
                split_digest=VAL if pinned else None,
                confusion_matrix=matrix,
                class_names=["pallet", "box"] if matrix else None,
            )
        )
    if test is not None:
        store.add_evaluation(
            Evaluation(
                id=uuid.uuid4().hex,
                run_id=record.id,
                split="test",
                sealed=True,
                created_at=now + 1,
                metrics={MAP: test},
                per_class_ap=dict(test_per_class or {}),
                latency_ms=latency,
                device=DEVICE,
                split_digest=TEST if pinned else None,
            )
        )
    if note:
        store.set_note(record.id, dict(note), who="tester")
    return record


def sealed_book(path: Path) -> Book:
    """Two pinned runs whose sealed test numbers are distinctive (``SEALED_TEXTS``), so
    that their absence before a decision and presence after it can be checked in text."""
    book = Book.open(str(path), create=True)
    book.store.ensure_project("pallets")
    book.store.update_protocol(
        "pallets", {"latency_budget_ms": 8.0, "device": DEVICE}, reason="test setup", who="tester"
    )
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
        config={"imgsz": 640, "lr0": 0.02},
        matrix=[[45.0, 1.0, 2.0], [1.0, 32.0, 1.0], [2.0, 3.0, 0.0]],
    )
    return book
