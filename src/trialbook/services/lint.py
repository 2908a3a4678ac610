"""The book's hygiene: lint (bad names, note debt, unpinned runs, burned test splits,
metric changes after comparison), the noise estimate from seed-only repeats, and run
names suggested from a config's difference to the parent run (what each asked for:
``core.suggest``)."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from typing_extensions import TypedDict

from trialbook.api import Book
from trialbook.core import discipline as rules
from trialbook.core.config import asked, flatten, is_whole, non_default
from trialbook.core.noise import estimate_noise
from trialbook.core.runs import effective_status
from trialbook.core.suggest import changes_part, config_changes, next_version, unique_name
from trialbook.errors import InvalidInput, NotFound
from trialbook.services.notes import open_evaluations
from trialbook.services.projects import compared_at, pick_project, set_protocol


class LintProblem(TypedDict):
    project: str
    run: str | None
    kind: str
    detail: str


class LintReport(TypedDict):
    """``lint --json``."""

    projects: list[str]
    problems: list[LintProblem]
    notices: list[LintProblem]


class NoiseReport(TypedDict):
    """``noise --json``: the estimate of ``core.noise`` and whether it was applied."""

    project: str
    metric: str
    current_noise: float
    enough: bool
    message: str
    runs_used: int
    seeds: list[Any]
    values: list[float]
    mean: float | None
    std: float | None
    range: float | None
    suggested_noise: float | None
    config: dict[str, Any]
    applied: bool


class NameSuggestion(TypedDict):
    """``name --json``: the name, and the training keys that change ``[parent, new]``."""

    name: str
    project: str
    parent: str
    changed: dict[str, list[Any]]
    config_is: str  # "whole" (an args.yaml, reduced to what differs from the defaults) or "partial"
    defaults: str | None  # whose defaults were used ("ultralytics 8.4.190"), None when unknown


def _problem(p: rules.Problem) -> LintProblem:
    return {"project": p.project, "run": p.run, "kind": p.kind, "detail": p.detail}


def lint(book: Book, project: str | None = None) -> LintReport:
    """Bad names, note debt, unpinned runs, burned test splits and metric changes after
    comparison; runs imported with their old names are listed apart as notices."""
    names = (
        [book.store.get_project(project).name] if project else [p.name for p in book.store.list_projects()]
    )
    every = book.store.list_decisions()
    now = time.time()
    found: list[rules.Problem] = []
    for name in names:
        proto = book.store.get_project(name).protocol
        runs = book.store.list_runs(name)
        notes = book.store.get_notes([r.id for r in runs])
        for r in runs:
            found += rules.lint_run(r, effective_status(r, now), notes.get(r.id), proto.naming_pattern)
        found += rules.burned_splits(rules.reveals_by_split(every, name), proto.test_budget, name)
        changes = rules.metric_changes_after_comparison(
            book.store.protocol_history(name), compared_at(book, name)
        )
        found += rules.metric_change_problems(changes, name)
    return {
        "projects": names,
        "problems": [_problem(p) for p in found if p.kind != rules.LEGACY_NAME],
        "notices": [_problem(p) for p in found if p.kind == rules.LEGACY_NAME],
    }


def noise(book: Book, project: str | None = None, *, apply: bool = False) -> NoiseReport:
    """Estimate the run-to-run spread of the protocol metric from finished runs whose
    configs differ only in ``seed`` (``core.noise``), and suggest a threshold; ``apply``
    sets it in the protocol (audited) when there is enough evidence."""
    name = pick_project(book, project)
    proto = book.store.get_project(name).protocol
    now = time.time()
    runs = [r for r in book.store.list_runs(name) if effective_status(r, now) == "finished"]
    ids = [r.id for r in runs]
    summaries = book.store.get_summaries(ids, [proto.metric])
    evaluations = open_evaluations(book, ids)
    pairs = []
    for r in runs:
        s = summaries[r.id].get(proto.metric)
        value, _, _ = rules.comparison_value(evaluations[r.id], proto.metric, s.best if s else None)
        pairs.append((r.config, value))
    estimate = estimate_noise(pairs)
    applied = False
    if (
        apply
        and estimate.enough
        and estimate.suggested_noise is not None
        and estimate.suggested_noise != proto.noise
    ):
        set_protocol(
            book, name, {"noise": estimate.suggested_noise}, reason=f"trialbook noise: {estimate.message}"
        )
        applied = True
    return {
        "project": name,
        "metric": proto.metric,
        "current_noise": proto.noise,
        "enough": estimate.enough,
        "message": estimate.message,
        "runs_used": estimate.runs_used,
        "seeds": list(estimate.seeds),
        "values": list(estimate.values),
        "mean": estimate.mean,
        "std": estimate.std,
        "range": estimate.value_range,
        "suggested_noise": estimate.suggested_noise,
        "config": dict(estimate.config),
        "applied": applied,
    }


def load_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A run config from a YAML or JSON file (an Ultralytics ``args.yaml`` works)."""
    from trialbook.datasets.yamlfile import YamlError, read_yaml

    file = Path(path)
    is_json = file.suffix.lower() == ".json"
    try:
        data = json.loads(file.read_text()) if is_json else read_yaml(file)
    except OSError as exc:
        raise NotFound(f"cannot read config file {file}: {exc.strerror or exc}") from None
    except YamlError as exc:
        raise InvalidInput(f"config file {exc}") from None
    except ValueError as exc:
        raise InvalidInput(f"config file {file} is not valid JSON: {exc}") from None
    if not isinstance(data, Mapping):
        raise InvalidInput(
            f"config file {file} must hold a mapping of keys to values, not {type(data).__name__}"
        )
    return dict(data)


def ultralytics_defaults() -> tuple[dict[str, Any], str | None]:
    """Ultralytics' default training arguments (``ultralytics.cfg.DEFAULT_CFG_DICT``) and
    ``"ultralytics VERSION"``; ``({}, None)`` when Ultralytics is not installed.

    Importing Ultralytics imports torch (seconds), so unless it is imported already the
    dictionary is read as Ultralytics reads it: its own ``cfg/default.yaml``, with the
    text ``none`` taken as ``None``."""
    loaded = sys.modules.get("ultralytics.utils")
    if loaded is not None and isinstance(getattr(loaded, "DEFAULT_CFG_DICT", None), dict):
        import ultralytics

        return dict(loaded.DEFAULT_CFG_DICT), f"ultralytics {ultralytics.__version__}"
    try:
        spec = importlib.util.find_spec("ultralytics")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        return {}, None
    from importlib.metadata import PackageNotFoundError, version

    from trialbook.datasets.yamlfile import YamlError, read_yaml

    package = Path(next(iter(spec.submodule_search_locations)))
    try:
        data = read_yaml(package / "cfg" / "default.yaml")
        found = version("ultralytics")
    except (OSError, YamlError, PackageNotFoundError):
        return {}, None  # an install without its defaults: compared as if it were absent
    if not isinstance(data, dict):
        return {}, None
    plain = {str(k): None if isinstance(v, str) and v.lower() == "none" else v for k, v in data.items()}
    return plain, f"ultralytics {found}"


def suggest_run_name(
    book: Book, parent: str, config_path: str | os.PathLike[str], project: str | None = None
) -> NameSuggestion:
    """``<next version>_<what changed>`` from what the parent asked for to what the config
    file asks for (``core.suggest``): a whole Ultralytics ``args.yaml`` is reduced to the
    keys that differ from Ultralytics' defaults (when Ultralytics is installed), any other
    file names only what changes; bookkeeping keys are ignored."""
    run = book.run(parent, project)
    config = flatten(load_config(config_path))
    defaults, whose = ultralytics_defaults()
    whole = is_whole(config, defaults)
    changes = config_changes(
        run.config,
        non_default(config, defaults) if whole else config,
        parent_asked=asked(run.config, run.env, defaults),
        defaults=defaults,
        partial=not whole,
    )
    proto = book.store.get_project(run.project).protocol
    existing = {r.name for r in book.store.list_runs(run.project)}
    name = unique_name(next_version(run.name), changes_part(changes), existing, proto.naming_pattern)
    return {
        "name": name,
        "project": run.project,
        "parent": run.name,
        "changed": {k: [old, new] for k, (old, new) in changes.items()},
        "config_is": "whole" if whole else "partial",
        "defaults": whose,
    }
