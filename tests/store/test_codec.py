"""The remote store's wire format: every value the Store protocol passes comes back as the
same value of the same type, and errors come back as the same class."""

from __future__ import annotations

import inspect
import json
import math
from typing import Any

import pytest

from trialbook import errors
from trialbook.core.entities import (
    Decision,
    Project,
    Protocol,
    ProtocolChange,
    RunRecord,
    RunRow,
    RunsPage,
    SeriesSummary,
)
from trialbook.errors import Conflict, InvalidInput, NotFound, StorageError, TrialbookError
from trialbook.store import base, codec


def trip(value: Any) -> Any:
    """``value`` through the codec and strict JSON (no NaN tokens) and back."""
    return codec.decode(json.loads(json.dumps(codec.encode(value), allow_nan=False)))


def summary(run_id: str, best: float | None) -> SeriesSummary:
    return SeriesSummary(run_id, "k", "max", 3, 1, best, 2, best, 2, 0)


def test_entities_nested_in_containers_come_back_equal_and_typed() -> None:
    run = RunRecord(
        id="r1",
        project="p",
        name="v1_x",
        status="running",
        created_at=1.5,
        config={"lr0": 0.001, "aug": [1, 2], "nested": {"a": None}},
        tags={"k": "v"},
    )
    page = RunsPage(total=1, runs=[run], summaries={"r1": summary("r1", 0.5)})
    project = Project("id", "p", Protocol(latency_budget_ms=4.0), 2.0, None)
    value = {"page": page, "project": project, "pair": (run, True)}
    back = trip(value)
    assert back == value
    assert type(back["page"].runs[0]) is RunRecord and type(back["project"].protocol) is Protocol
    assert type(back["pair"]) is tuple


def test_floats_tuples_and_mappings_keep_their_types() -> None:
    history = {"r1": [(0, 0.5), (1, math.nan), (2, math.inf), (3, -math.inf)]}
    back = trip(history)
    assert [e for e, _ in back["r1"]] == [0, 1, 2, 3] and all(type(p) is tuple for p in back["r1"])
    assert math.isnan(back["r1"][1][1]) and back["r1"][2][1] == math.inf and back["r1"][3][1] == -math.inf
    # series-major points: int keys stay ints; keys starting with "$" stay plain keys
    points = {"metrics/x": {0: 0.1, 7: 0.2}, "$odd": {1: 1.0}}
    assert trip(points) == points and list(trip(points)["metrics/x"]) == [0, 7]
    assert trip({"$": "RunRecord"}) == {"$": "RunRecord"}  # a user's dict, not an entity
    assert trip([1, True, None, "s", 2.5]) == [1, True, None, "s", 2.5]
    assert type(trip(True)) is bool and type(trip(3)) is int


def test_iterables_travel_as_lists() -> None:
    assert trip({"b", "a"}) in (["a", "b"], ["b", "a"])
    assert trip(k for k in ("x", "y")) == ["x", "y"]
    assert trip({"a": 1}.keys()) == ["a"]


def test_every_entity_of_the_protocol_round_trips() -> None:
    row = RunRow(
        "r", "v1_x", "finished", 1.0, None, None, None, None, False, False, None, None, None, None, 0, False
    )
    change = ProtocolChange("p", "noise", 0.005, 0.01, "why", "me", 3.0)
    decision = Decision(
        "d", "p", "c", "b", "WIN", [{"gate": "improvement", "passed": True}], {}, None, False, "me", 4.0
    )
    for value in (row, change, decision, summary("r", None)):
        assert trip(value) == value and type(trip(value)) is type(value)


def test_only_entities_are_built_from_a_document() -> None:
    with pytest.raises(InvalidInput, match="unknown entity 'Popen'"):
        codec.decode({"$": "Popen", "args": "rm -rf /"})
    with pytest.raises(InvalidInput, match="bad RunRecord"):
        codec.decode({"$": "RunRecord", "id": "x", "nope": 1})
    with pytest.raises(InvalidInput, match="cannot read"):
        codec.decode({"$f": "nonsense"})
    with pytest.raises(InvalidInput, match="cannot send a bytes"):
        codec.encode(b"raw")


@pytest.mark.parametrize("cls", [NotFound, Conflict, InvalidInput, StorageError, errors.IntegrityError])
def test_errors_come_back_as_the_same_class_and_message(cls: type[TrialbookError]) -> None:
    doc = json.loads(json.dumps(codec.encode_error(cls("project 'x' does not exist"))))
    back = codec.decode_error(doc)
    assert type(back) is cls and str(back) == "project 'x' does not exist"


def test_an_error_of_another_class_travels_as_its_trialbook_base() -> None:
    class RunGone(NotFound):
        pass

    assert codec.encode_error(RunGone("gone")) == {"error": "NotFound", "message": "gone"}
    assert codec.decode_error({"error": "SystemExit", "message": "x"}) is None
    assert codec.decode_error({"detail": "x"}) is None


def test_the_wire_carries_every_public_store_method_but_transaction_and_close() -> None:
    public = {
        name
        for name, member in inspect.getmembers(base.Store)
        if not name.startswith("_") and inspect.isfunction(member)
    }
    assert public - {"transaction", "close"} == set(codec.METHODS)
    assert not codec.READS & codec.WRITES


def _wire(value: Any) -> Any:
    return codec.decode(json.loads(json.dumps(codec.encode(value), allow_nan=False)))


def test_a_batch_of_points_travels_compact_with_nan_infinities_and_last_value_winning() -> None:
    points = [("a", 0, 0.5), ("a", 1, math.nan), ("b", 2, math.inf), ("b", 3, -math.inf), ("a", 0, 0.75)]
    doc = codec.encode(codec.Points(points))
    assert doc == {"$p": {"a": [[0, 1], [0.75, None]], "b": [[2, 3], [{"$f": "inf"}, {"$f": "-inf"}]]}}
    back = _wire({"points": codec.Points(points)})["points"]
    assert back["b"] == {2: math.inf, 3: -math.inf} and back["a"][0] == 0.75 and math.isnan(back["a"][1])
    assert _wire(codec.Points({"k": {5: 1.0, 6: 2.5}})) == {"k": {5: 1.0, 6: 2.5}}


@pytest.mark.parametrize(
    "body",
    [
        [["a", 0, 1.0]],  # not an object
        {"a": [[0, 1], [1.0]]},  # lengths differ
        {"a": [["0"], [1.0]]},  # an epoch that is no int
        {"a": [0, 1.0]},  # not two lists
    ],
)
def test_a_bad_batch_of_points_is_refused(body: Any) -> None:
    with pytest.raises(InvalidInput, match="points"):
        codec.decode({"$p": body})
