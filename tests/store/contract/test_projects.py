"""ProjectStore: projects, their protocol and its audit history."""

from __future__ import annotations

import pytest

from support.runs import MAP
from trialbook.errors import Conflict, InvalidInput, NotFound
from trialbook.store import Store


def test_projects_and_protocol_audit(store: Store) -> None:
    p = store.create_project("pallets")
    assert p.protocol.metric == MAP and p.protocol.noise == 0.005
    assert p.protocol.class_floor == 0.9 and p.protocol.test_budget == 5
    with pytest.raises(Conflict, match="already exists"):
        store.create_project("pallets")
    assert store.ensure_project("pallets").id == p.id
    store.update_protocol(
        "pallets", {"noise": 0.01, "latency_budget_ms": 8.0}, reason="measured spread", who="ana"
    )
    store.update_protocol("pallets", {"noise": 0.01}, reason="same again", who="ana")  # no-op
    assert store.get_project("pallets").protocol.noise == 0.01
    history = store.protocol_history("pallets")
    assert [(h.field, h.old, h.new) for h in history] == [
        ("noise", 0.005, 0.01),
        ("latency_budget_ms", None, 8.0),
    ]
    assert history[0].reason == "measured spread" and history[0].who == "ana"
    with pytest.raises(InvalidInput, match="bogus"):
        store.update_protocol("pallets", {"bogus": 1}, reason=None, who="ana")
    with pytest.raises(NotFound):
        store.get_project("nope")
    assert [p.name for p in store.list_projects()] == ["pallets"]


def test_project_names_and_unknown_projects(store: Store) -> None:
    assert store.list_projects() == []
    for bad in ("", "x" * 201):
        with pytest.raises(InvalidInput, match="1 to 200 characters"):
            store.create_project(bad)
    store.ensure_project("b")
    store.ensure_project("a")
    assert [p.name for p in store.list_projects()] == ["a", "b"]
    with pytest.raises(NotFound):
        store.update_protocol("nope", {"noise": 0.01}, reason=None, who="x")
    with pytest.raises(NotFound):
        store.protocol_history("nope")
    assert store.protocol_history("a") == []
