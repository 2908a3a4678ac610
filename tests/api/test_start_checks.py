"""``Book.check_start`` makes every check ``start`` makes and writes nothing; a refused
``start`` leaves no project behind; an unknown run name gets the close names; a latency
measurement is kept with its p50 and p95."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trialbook.api import Book
from trialbook.core.metrics import percentile
from trialbook.errors import Conflict, InvalidInput, NotFound
from trialbook.services import datasets as versions


def test_a_refused_start_creates_no_project(book: Book, data_yaml: Path) -> None:
    with pytest.raises(InvalidInput, match="naming rule"):
        book.start("pallets", "train3", allow_unpinned=True)
    with pytest.raises(InvalidInput, match="names no dataset version"):
        book.start("pallets", "v1_x")
    with pytest.raises(NotFound, match="no dataset version pallets:v1"):
        book.start("pallets", "v1_x", dataset="pallets:v1")
    with pytest.raises(NotFound, match="no run named 'v0_nope'"):
        book.start("pallets", "v1_x", parent="v0_nope", allow_unpinned=True)
    assert book.store.list_projects() == []


def test_check_start_writes_nothing_and_start_agrees(book: Book, data_yaml: Path) -> None:
    versions.tag(book, "pallets", data_yaml, "v1")
    plan = book.check_start("pallets", "v1_x", dataset="pallets:v1")
    assert plan.existing is None and plan.pin["pinned"] is True and plan.parent_id is None
    assert book.store.list_projects() == []
    with book.start("pallets", "v1_x", dataset="pallets:v1"):
        pass
    with pytest.raises(Conflict, match="already has a run named 'v1_x'"):
        book.check_start("pallets", "v1_x", dataset="pallets:v1")
    child = book.check_start("pallets", "v2_y", dataset="pallets:v1", parent="v1_x")
    assert child.parent_id == book.run("v1_x", "pallets").id


def test_an_unknown_run_name_gets_the_close_ones(book: Book) -> None:
    for name in ("v1_imgsz_640", "v2_imgsz_1024"):
        with book.start("pallets", name, allow_unpinned=True):
            pass
    with pytest.raises(NotFound, match=r"did you mean 'v2_imgsz_1024'"):
        book.run("v2_imgsz_1042")
    with pytest.raises(NotFound, match="`trialbook runs` lists the runs"):
        book.run("completely_else", "pallets")


def test_log_latency_keeps_p50_and_p95(book: Book) -> None:
    with book.start("pallets", "v1_x", allow_unpinned=True) as run:
        timed = run.log_latency("jetson-orin", [10.0, 12.0, 11.0, 30.0, 10.5], imgsz=640, fmt="onnx")
    assert timed.split == "latency" and not timed.sealed and timed.device == "jetson-orin"
    assert timed.metrics["latency/p50_ms"] == 11.0 and timed.latency_ms == 11.0
    assert timed.metrics["latency/p95_ms"] == pytest.approx(26.4)
    assert timed.metrics["latency/format_onnx"] == 1.0 and timed.metrics["latency/imgsz"] == 640
    (stored,) = book.store.list_evaluations([run.id])
    assert stored.latency_ms == 11.0
    handle = book.attach("v1_x", "pallets")
    with pytest.raises(InvalidInput, match="name the device"):
        handle.log_latency("  ", [1.0])
    with pytest.raises(InvalidInput, match="finite numbers >= 0"):
        handle.log_latency("cpu", [1.0, float("nan")])
    with pytest.raises(InvalidInput, match="finite numbers >= 0"):
        handle.log_latency("cpu", [])
    assert len(book.store.list_evaluations([run.id])) == 1


@given(st.lists(st.floats(min_value=0, max_value=1e6), min_size=1, max_size=50), st.floats(0, 100))
def test_percentile_lies_between_the_extremes_and_grows_with_q(values: list[float], q: float) -> None:
    got = percentile(values, q)
    assert min(values) <= got <= max(values)
    assert percentile(values, 0) == min(values) and percentile(values, 100) == max(values)
    assert percentile(values, q) <= percentile(values, min(q + 10, 100)) + 1e-9
