"""Input the book refuses, identically on every backend (``InvalidInput`` naming what and
where), and what it stores exactly: epochs beyond an INTEGER column, NUL and lone
surrogates, float overflow, evaluations that are not what they claim, names that break
``PROJECT/RUN``, cyclic configs, artifacts that are not files."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import trialbook as tb
from trialbook.api import Book

MAP = "metrics/mAP50-95(B)"


def _run(book: Book, name: str = "v1_probe") -> tb.Run:
    return book.start("pallets", name, allow_unpinned=True, flush_interval=30)


@pytest.mark.parametrize(
    ("metrics", "epoch", "message"),
    [
        ({MAP: 0.5}, 2**31, "epoch 2147483648 is too large"),
        ({MAP: 0.5}, 2**63, "too large"),
        ({"a\x00b": 0.5}, 1, "NUL"),
        ({"\ud800": 0.5}, 1, "cannot be encoded as UTF-8"),
        ({MAP: 10**400}, 1, "too large for a float"),
        ({MAP: -(10**400)}, 1, "too large for a float"),
    ],
)
def test_log_refuses_what_no_backend_can_store(book: Book, metrics: Any, epoch: int, message: str) -> None:
    run = _run(book)
    with pytest.raises(tb.InvalidInput, match=message):
        run.log(metrics, epoch=epoch)
    run.log({MAP: 0.25}, epoch=2**31 - 1)  # the largest epoch is stored exactly
    run.finish()
    history = book.store.get_history([run.id], MAP)[run.id]
    assert history == [(2**31 - 1, 0.25)]
    assert book.run(run.name).status == "finished" and book.run(run.name).unwritten == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"per_class_ap": {"pallet": 1.5}}, r"is not an AP \(a number in \[0, 1\]\)"),
        ({"per_class_ap": {"pallet": -0.1}}, "is not an AP"),
        ({"per_class_ap": {"pallet": math.nan}}, "is not an AP"),
        ({"per_class_ap": {1: 0.5, "1": 0.6}}, "names class '1' twice"),
        ({"confusion_matrix": [[1, -2], [3, 4]]}, r"confusion_matrix\[0\]\[1\] = -2.0 is not a count"),
        ({"confusion_matrix": [[1, math.nan], [3, 4]]}, "is not a count"),
        ({"confusion_matrix": [[1, 2], [3, 4]], "class_names": ["a", "b", "c"]}, "3 class names"),
        ({"confusion_matrix": [[1, 2, 3], [4, 5, 6]]}, "must be square"),
        ({"class_names": "ab"}, "must be a list of names"),
        ({"class_names": [None, 5]}, r"class_names\[0\] must be text"),
        ({"class_names": ["a", "a"]}, "holds 'a' twice"),
        ({"latency_ms": math.nan}, "latency_ms nan must be a finite number"),
        ({"latency_ms": -1.0}, "must be a finite number >= 0"),
    ],
)
def test_log_eval_refuses_what_it_would_store_wrongly(
    book: Book, kwargs: dict[str, Any], message: str
) -> None:
    run = _run(book)
    with pytest.raises(tb.InvalidInput, match=message):
        run.log_eval("val", {MAP: 0.5}, **kwargs)
    assert book.store.list_evaluations([run.id]) == []  # nothing half-written
    by_id_or_name: dict[Any, float] = {0: 0.5, "forklift": 1.0}  # Ultralytics' class ids are ints
    ok = run.log_eval(
        "val",
        {MAP: 0.5},
        per_class_ap=by_id_or_name,
        confusion_matrix=[[1, 0, 0], [0, 2, 0], [0, 0, 0]],
        class_names=["0", "forklift"],
        latency_ms=0.0,
    )
    assert ok.per_class_ap == {"0": 0.5, "forklift": 1.0} and ok.class_names == ["0", "forklift"]
    run.finish()


@pytest.mark.parametrize(
    ("project", "name", "message"),
    [
        ("a/b", "v1_x", "must not contain '/'"),
        ("pal\x00lets", "v1_x", "NUL"),
        ("   ", "v1_x", "must not be empty"),
        ("p" * 201, "v1_x", "the limit is 200"),
        ("pallets", "v1_" + "x" * 10_000, "the limit is 200"),
        ("pallets", "v1_a/b", "must not contain '/'"),
        ("pallets", "v1_\ud800", "cannot be encoded"),
    ],
)
def test_names_are_checked_once_the_same_everywhere(
    book: Book, project: str, name: str, message: str
) -> None:
    with pytest.raises(tb.InvalidInput, match=message):
        book.start(project, name, allow_unpinned=True)
    assert [p.name for p in book.store.list_projects()] in ([], ["pallets"])
    assert book.store.list_runs() == []


def test_configs_that_hold_themselves_or_too_deep_are_refused(book: Book) -> None:
    loop: dict[str, Any] = {"lr0": 0.01}
    loop["self"] = loop
    with pytest.raises(tb.InvalidInput, match="config holds itself: 'self'"):
        book.start("pallets", "v1_loop", config=loop, allow_unpinned=True)
    items: list[Any] = [1]
    items.append(items)
    with pytest.raises(tb.InvalidInput, match="nested more than 32 levels"):
        book.start("pallets", "v1_list_loop", config={"a": items}, allow_unpinned=True)
    assert book.store.list_runs() == []


def test_artifacts_must_be_readable_files_with_plain_names(book: Book, tmp_path: Path) -> None:
    run = _run(book)
    folder = tmp_path / "weights"
    folder.mkdir()
    with pytest.raises(tb.InvalidInput, match="is a folder"):
        run.log_artifact(folder)
    with pytest.raises(tb.InvalidInput, match="not a regular file"):
        run.log_artifact("/dev/null")
    loop = tmp_path / "loop"
    os.symlink(loop, loop)
    with pytest.raises(tb.InvalidInput, match="symbolic link loop"):
        run.log_artifact(loop)
    with pytest.raises(tb.InvalidInput, match="no such file"):
        run.log_artifact(tmp_path / "missing.pt")
    best = tmp_path / "best.pt"
    best.write_bytes(b"weights")
    for bad in ("../../evil", "..", "a\\b", ""):
        with pytest.raises(tb.InvalidInput):
            run.log_artifact(best, name=bad)
    run.log_artifact(best, name="best-v1.pt")
    assert [a.name for a in book.store.list_artifacts(run.id)] == ["best-v1.pt"]
    run.finish()


# --------------------------------------------------------------------------- property
KEYS = st.one_of(
    st.sampled_from([MAP, "train/box_loss", "lr/pg0"]),
    st.text(min_size=0, max_size=300),
    st.integers(),
    st.none(),
)
VALUES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.booleans(),
    st.text(max_size=5),
    st.none(),
)
EPOCHS = st.one_of(
    st.integers(min_value=-5, max_value=2**64), st.floats(), st.booleans(), st.text(max_size=3)
)


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(calls=st.lists(st.tuples(st.dictionaries(KEYS, VALUES, max_size=3), EPOCHS), min_size=1, max_size=6))
def test_each_log_is_refused_or_stored_exactly_and_a_refusal_costs_nothing(
    book: Book, calls: list[tuple[dict[Any, Any], Any]]
) -> None:
    """Hostile values: every ``log`` either raises ``InvalidInput`` or is stored exactly
    (last value wins per key and epoch), and a refused call never costs another."""
    run = book.start(
        "pallets", f"v1_prop_{len(book.store.list_runs())}", allow_unpinned=True, flush_interval=30
    )
    expected: dict[str, dict[int, float]] = {}
    for metrics, epoch in calls:
        try:
            run.log(metrics, epoch=epoch)
        except tb.InvalidInput:
            continue
        for k, v in metrics.items():
            expected.setdefault(k, {})[int(epoch)] = float(v)
    run.finish()
    stored = book.store.get_all_history(run.id)
    got = {k: dict(points) for k, points in stored.items()}
    assert got.keys() == expected.keys()
    for key, points in expected.items():
        assert got[key].keys() == points.keys()
        for epoch, value in points.items():
            assert (math.isnan(value) and math.isnan(got[key][epoch])) or got[key][epoch] == value
    assert book.run(run.name).unwritten == 0
