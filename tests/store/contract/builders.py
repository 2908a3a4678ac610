"""Builders of the contract suite: runs made straight through the store."""

from __future__ import annotations

import time
import uuid
from typing import Any

from trialbook.core.entities import RunRecord

MAP = "metrics/mAP50-95(B)"
LOSS = "val/box_loss"


def make_run(store: Any, name: str = "v1_base", project: str = "pallets", **kw: Any) -> RunRecord:
    """A run of ``project`` (made if missing), running unless ``status`` says otherwise."""
    store.ensure_project(project)
    kw.setdefault("status", "running")
    kw.setdefault("created_at", time.time())
    return store.create_run(RunRecord(id=uuid.uuid4().hex, project=project, name=name, **kw))
