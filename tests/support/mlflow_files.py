"""Writers of MLflow records as MLflow itself lays them out, for the importer tests.

File store (``mlflow.store.tracking.file_store.FileStore``): ``<root>/<experiment_id>/
meta.yaml``, ``<root>/<experiment_id>/<run_id>/{meta.yaml,params/,metrics/,tags/,
artifacts/}``; metric lines ``timestamp value step``; keys with ``/`` are nested folders;
``status`` in a run's meta.yaml is the RunStatus integer (1 RUNNING, 2 SCHEDULED,
3 FINISHED, 4 FAILED, 5 KILLED).

SQLite: the tables of MLflow's schema that hold runs (columns and constraints as in
``mlflow/store/tracking/dbmodels/models.py``); NaN is stored as 0 with ``is_nan = 1``.
"""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path
from typing import Any

import yaml

STATUS_CODES = {"RUNNING": 1, "SCHEDULED": 2, "FINISHED": 3, "FAILED": 4, "KILLED": 5}


def write_experiment(
    root: Path, experiment_id: str | int, name: str, *, old: bool = False, lifecycle_stage: str = "active"
) -> Path:
    folder = root / str(experiment_id)
    folder.mkdir(parents=True, exist_ok=True)
    if old:  # MLflow 1.x and before: integer id, no times
        meta: dict[str, Any] = {
            "artifact_location": str(folder),
            "experiment_id": int(experiment_id),
            "lifecycle_stage": lifecycle_stage,
            "name": name,
        }
    else:
        meta = {
            "artifact_location": f"file://{folder}",
            "creation_time": 1_700_000_000_000,
            "experiment_id": str(experiment_id),
            "last_update_time": 1_700_000_000_000,
            "lifecycle_stage": lifecycle_stage,
            "name": name,
        }
    (folder / "meta.yaml").write_text(yaml.safe_dump(meta))
    return folder


def write_run(
    experiment: Path,
    *,
    name: str | None,
    status: str = "FINISHED",
    start: int = 1_700_000_000_000,
    end: int | None = 1_700_000_360_000,
    params: dict[str, str] | None = None,
    metrics: dict[str, list[tuple[int, float, int]]] | None = None,
    tags: dict[str, str] | None = None,
    old: bool = False,
    run_id: str | None = None,
    lifecycle_stage: str = "active",
    raw_metric_lines: dict[str, str] | None = None,
) -> Path:
    """A run folder. ``metrics`` maps key -> [(timestamp, value, step)]; with ``old`` the
    lines have no step (MLflow before 1.0) and the name lives only in the tags."""
    run_id = run_id or uuid.uuid4().hex
    folder = experiment / run_id
    folder.mkdir(parents=True)
    exp_meta = yaml.safe_load((experiment / "meta.yaml").read_text())
    meta: dict[str, Any] = {
        "artifact_uri": f"{experiment}/{run_id}/artifacts",
        "end_time": end,
        "entry_point_name": "",
        "experiment_id": exp_meta["experiment_id"],
        "lifecycle_stage": lifecycle_stage,
        "run_uuid": run_id,
        "source_name": "",
        "source_type": 4,
        "source_version": "",
        "start_time": start,
        "status": STATUS_CODES[status],
        "tags": [],
        "user_id": "alice",
    }
    if old:
        meta["name"] = ""
    else:
        meta.update({"run_id": run_id, "run_name": name or "", "deleted_time": None})
    (folder / "meta.yaml").write_text(yaml.safe_dump(meta))
    all_tags = {
        "mlflow.user": "alice",
        "mlflow.source.type": "LOCAL",
        "mlflow.source.name": "train.py",
        **(tags or {}),
    }
    if name is not None:
        all_tags["mlflow.runName"] = name
    for sub, values in (("params", params or {}), ("tags", all_tags)):
        for key, value in values.items():
            path = folder / sub / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(value)
    for key, points in (metrics or {}).items():
        path = folder / "metrics" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = [f"{t} {v} {s}" if not old else f"{t} {v}" for t, v, s in points]
        path.write_text("\n".join(lines) + "\n")
    for key, text in (raw_metric_lines or {}).items():
        path = folder / "metrics" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (folder / "artifacts").mkdir()
    return folder


SCHEMA = """
CREATE TABLE alembic_version (
    version_num VARCHAR(32) NOT NULL,
    CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);
CREATE TABLE experiments (
    experiment_id INTEGER NOT NULL,
    name VARCHAR(256) NOT NULL,
    artifact_location VARCHAR(256),
    lifecycle_stage VARCHAR(32),
    creation_time BIGINT,
    last_update_time BIGINT,
    CONSTRAINT experiment_pk PRIMARY KEY (experiment_id),
    UNIQUE (name),
    CONSTRAINT experiments_lifecycle_stage CHECK (lifecycle_stage IN ('active', 'deleted'))
);
CREATE TABLE runs (
    run_uuid VARCHAR(32) NOT NULL,
    name VARCHAR(250),
    source_type VARCHAR(20),
    source_name VARCHAR(500),
    entry_point_name VARCHAR(50),
    user_id VARCHAR(256),
    status VARCHAR(9),
    start_time BIGINT,
    end_time BIGINT,
    deleted_time BIGINT,
    source_version VARCHAR(50),
    lifecycle_stage VARCHAR(20),
    artifact_uri VARCHAR(200),
    experiment_id INTEGER,
    CONSTRAINT run_pk PRIMARY KEY (run_uuid),
    FOREIGN KEY(experiment_id) REFERENCES experiments (experiment_id),
    CONSTRAINT source_type CHECK (source_type IN ('NOTEBOOK', 'JOB', 'LOCAL', 'UNKNOWN', 'PROJECT')),
    CONSTRAINT status CHECK (status IN ('SCHEDULED', 'FAILED', 'FINISHED', 'RUNNING', 'KILLED')),
    CONSTRAINT runs_lifecycle_stage CHECK (lifecycle_stage IN ('active', 'deleted'))
);
CREATE TABLE experiment_tags (
    key VARCHAR(250) NOT NULL,
    value VARCHAR(5000),
    experiment_id INTEGER NOT NULL,
    CONSTRAINT experiment_tag_pk PRIMARY KEY (key, experiment_id),
    FOREIGN KEY(experiment_id) REFERENCES experiments (experiment_id)
);
CREATE TABLE tags (
    key VARCHAR(250) NOT NULL,
    value VARCHAR(8000),
    run_uuid VARCHAR(32) NOT NULL,
    CONSTRAINT tag_pk PRIMARY KEY (key, run_uuid),
    FOREIGN KEY(run_uuid) REFERENCES runs (run_uuid)
);
CREATE INDEX index_tags_run_uuid ON tags (run_uuid);
CREATE TABLE params (
    key VARCHAR(250) NOT NULL,
    value VARCHAR(8000) NOT NULL,
    run_uuid VARCHAR(32) NOT NULL,
    CONSTRAINT param_pk PRIMARY KEY (key, run_uuid),
    FOREIGN KEY(run_uuid) REFERENCES runs (run_uuid)
);
CREATE INDEX index_params_run_uuid ON params (run_uuid);
CREATE TABLE metrics (
    key VARCHAR(250) NOT NULL,
    value FLOAT NOT NULL,
    timestamp BIGINT NOT NULL,
    run_uuid VARCHAR(32) NOT NULL,
    step BIGINT DEFAULT '0' NOT NULL,
    is_nan BOOLEAN DEFAULT '0' NOT NULL,
    CONSTRAINT metric_pk PRIMARY KEY (key, timestamp, step, run_uuid, value, is_nan),
    FOREIGN KEY(run_uuid) REFERENCES runs (run_uuid),
    CHECK (is_nan IN (0, 1))
);
CREATE INDEX index_metrics_run_uuid ON metrics (run_uuid);
CREATE TABLE latest_metrics (
    key VARCHAR(250) NOT NULL,
    value FLOAT NOT NULL,
    timestamp BIGINT,
    step BIGINT NOT NULL,
    is_nan BOOLEAN NOT NULL,
    run_uuid VARCHAR(32) NOT NULL,
    CONSTRAINT latest_metric_pk PRIMARY KEY (key, run_uuid),
    FOREIGN KEY(run_uuid) REFERENCES runs (run_uuid),
    CHECK (is_nan IN (0, 1))
);
CREATE INDEX index_latest_metrics_run_uuid ON latest_metrics (run_uuid);
"""


class MlflowDb:
    """An MLflow SQLite database, filled the way MLflow's SQL store fills it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = sqlite3.connect(path)
        self.conn.executescript(SCHEMA)
        self.conn.execute("INSERT INTO alembic_version VALUES ('4465047574b1')")
        self.experiment(0, "Default")

    def experiment(self, experiment_id: int, name: str, lifecycle_stage: str = "active") -> int:
        self.conn.execute(
            "INSERT INTO experiments VALUES (?, ?, ?, ?, ?, ?)",
            (
                experiment_id,
                name,
                f"mlflow-artifacts:/{experiment_id}",
                lifecycle_stage,
                1_700_000_000_000,
                1_700_000_000_000,
            ),
        )
        return experiment_id

    def run(
        self,
        experiment_id: int,
        *,
        name: str | None,
        status: str = "FINISHED",
        start: int = 1_700_000_000_000,
        end: int | None = 1_700_000_360_000,
        params: dict[str, str] | None = None,
        metrics: dict[str, list[tuple[int, float, int]]] | None = None,
        tags: dict[str, str] | None = None,
        lifecycle_stage: str = "active",
        run_id: str | None = None,
    ) -> str:
        run_id = run_id or uuid.uuid4().hex
        self.conn.execute(
            "INSERT INTO runs VALUES (?, ?, 'LOCAL', '', '', 'bob', ?, ?, ?, NULL, '', ?, ?, ?)",
            (
                run_id,
                name,
                status,
                start,
                end,
                lifecycle_stage,
                f"mlflow-artifacts:/{experiment_id}/{run_id}/artifacts",
                experiment_id,
            ),
        )
        all_tags = {"mlflow.user": "bob", **(tags or {})}
        if name is not None:
            all_tags["mlflow.runName"] = name
        self.conn.executemany(
            "INSERT INTO tags VALUES (?, ?, ?)", [(k, v, run_id) for k, v in all_tags.items()]
        )
        self.conn.executemany(
            "INSERT INTO params VALUES (?, ?, ?)", [(k, v, run_id) for k, v in (params or {}).items()]
        )
        for key, points in (metrics or {}).items():
            for timestamp, value, step in points:
                is_nan = value != value
                self.conn.execute(
                    "INSERT INTO metrics VALUES (?, ?, ?, ?, ?, ?)",
                    (key, 0.0 if is_nan else value, timestamp, run_id, step, int(is_nan)),
                )
            t, v, s = max(points, key=lambda p: (p[2], p[0]))
            self.conn.execute(
                "INSERT INTO latest_metrics VALUES (?, ?, ?, ?, ?, ?)",
                (key, 0.0 if v != v else v, t, s, int(v != v), run_id),
            )
        return run_id

    def close(self) -> None:
        self.conn.commit()
        self.conn.close()
