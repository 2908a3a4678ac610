"""Ultralytics from the command line: ``trialbook yolo train``, ``yolo val`` and
``yolo latency`` (and ``demo --yolo``, which calls the same functions).

Rules the three share:

* **Check first.** :func:`plan_train` makes every check a refusal can come from (the run
  name and its project's naming pattern, the run not already there, the parent, the tagged
  dataset version and that the files still match it, the model weights being on this
  machine or downloadable, the output folder not existing) before Ultralytics builds a
  model or scans a label: a refusal takes seconds and writes nothing, no project, no run,
  no folder.
* **Outputs under the folder the command runs in.** Training writes to
  ``./runs/<task>/<run name>`` (absolute, so Ultralytics' ``runs_dir`` setting is not
  used); evaluations of a run to ``./runs/<task>/<run name>/<split>`` (numbered when that
  exists). An existing training folder is never written into. ``project=`` among the
  Ultralytics arguments replaces ``./runs/<task>``; ``name=``, if given, must be the run
  name.
* **The project** is ``--project``, else the name of the dataset (``-d pallets:v3``, or
  the tagged version the data.yaml's files match).
* **A test evaluation stays sealed**: nothing of its numbers is printed or returned, and
  no test image or plot stays on disk unless ``save_images`` is asked. Its plots and
  per-image predictions are recorded in the book either way, sealed with it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from typing_extensions import TypedDict

from trialbook.api import Book
from trialbook.core.entities import RunRecord
from trialbook.errors import Conflict, InvalidInput, NotFound

DEFAULT_MODEL = "yolo11n.pt"
LATENCY_ITERS = 100
LATENCY_WARMUP = 10


class TrainPlan(TypedDict):
    """What :func:`plan_train` checked; :func:`train` runs it."""

    project: str
    name: str
    dataset: str | None
    parent: str | None
    allow_unpinned: bool
    model: str
    data: str
    args: dict[str, Any]
    base: str | None  # the folder above the run's folder, when project= was given


class TrainResult(TypedDict):
    project: str
    name: str
    status: str
    dataset: str | None
    save_dir: str
    next: list[str]


class ValResult(TypedDict):
    run: str
    project: str
    split: str
    sealed: bool
    weights: str
    images: int | None
    save_dir: str | None
    device: str | None
    metrics: dict[str, float] | None
    per_class_ap: dict[str, float] | None
    plots: list[str]  # the plots recorded, attached to the evaluation (sealed with a test one)
    predictions: int | None  # images whose predictions were recorded; None: none were
    next: list[str]


class LatencyResult(TypedDict):
    run: str
    project: str
    device: str
    format: str
    imgsz: int
    iters: int
    warmup: int
    torch_device: str
    p50_ms: float
    p95_ms: float
    mean_ms: float
    weights: str


def require_ultralytics() -> None:
    import importlib.util

    if importlib.util.find_spec("ultralytics") is None:
        raise InvalidInput("ultralytics is not installed: pip install 'trialbook[ultralytics]'")


# --------------------------------------------------------------------------- train
def plan_train(
    book: Book,
    name: str,
    args: Mapping[str, Any],
    *,
    dataset: str | None = None,
    parent: str | None = None,
    project: str | None = None,
    allow_unpinned: bool = False,
) -> TrainPlan:
    """Every check of a training, before anything is built or written (module docstring)."""
    require_ultralytics()
    rest = dict(args)
    data = rest.get("data")
    if not data:
        raise InvalidInput("give the dataset to Ultralytics as well: -- data=path/to/data.yaml")
    given = rest.pop("name", None)
    if given is not None and str(given) != name:
        raise InvalidInput(
            f"name={given} among the Ultralytics arguments: the run name {name!r} names its folder too"
        )
    if rest.get("resume"):
        raise InvalidInput(
            "resume= is not supported by trialbook yolo train: start a new run with its own name"
        )
    model = str(rest.pop("model", None) or DEFAULT_MODEL)
    dataset = dataset or _tagged_version(book, str(data), allow_unpinned, name=name, project=project)
    project = project or _project_of(dataset, name)
    book.check_start(
        project,
        name,
        dataset=dataset,
        parent=parent,
        allow_unpinned=allow_unpinned,
        dataset_source=str(data),
    )
    check_weights(model)
    base = rest.pop("project", None)
    if base is not None:
        _check_free(Path(str(base)).resolve() / name)
    return {
        "project": project,
        "name": name,
        "dataset": dataset,
        "parent": parent,
        "allow_unpinned": allow_unpinned,
        "model": model,
        "data": str(data),
        "args": rest,
        "base": str(Path(str(base)).resolve()) if base is not None else None,
    }


def _tagged_version(
    book: Book, data: str, allow_unpinned: bool, *, name: str, project: str | None
) -> str | None:
    if not Path(data).exists():
        raise InvalidInput(f"data={data}: no such file (give the path of the dataset's data.yaml)")
    found = book.find_dataset_tag(data)
    if found is None and not allow_unpinned:
        claimed = _tag_from_here(book, data)
        if claimed is not None:
            # the version tagged from this file: its pin check says what changed
            book.check_start(project or claimed.split(":")[0], name, dataset=claimed, dataset_source=data)
        raise InvalidInput(
            f"the files of {data} match no tagged dataset version: tag them first "
            f"(trialbook data tag NAME {data} --tag v1), name the version with -d NAME:TAG, "
            "or pass --allow-unpinned to record an UNPINNED run"
        )
    return found


def _tag_from_here(book: Book, data: str) -> str | None:
    """The newest tag of a version tagged from the same ``data`` file, if any."""
    here = str(Path(data).resolve())
    best: tuple[float, str] | None = None
    for tag in book.store.list_tags():
        try:
            version = book.store.get_dataset_version(tag.name, tag.digest)
        except NotFound:
            continue
        same = bool(version.source) and str(Path(str(version.source)).resolve()) == here
        if same and (best is None or tag.created_at > best[0]):
            best = (tag.created_at, f"{tag.name}:{tag.tag}")
    return best[1] if best else None


def _project_of(dataset: str | None, name: str) -> str:
    if dataset is None:
        raise InvalidInput(
            f"run {name} names no dataset version to take its project from: give --project NAME"
        )
    return dataset.split(":", 1)[0]


def check_weights(model: str) -> None:
    """Refuse, in one line, a ``.pt`` that is not on this machine when it cannot be
    downloaded (offline): Ultralytics would fail later with a long traceback."""
    path = Path(model)
    if path.suffix != ".pt" or path.exists():
        return
    from ultralytics.utils import SETTINGS, is_online

    if (Path(SETTINGS["weights_dir"]) / path.name).exists() or is_online():
        return
    raise InvalidInput(offline_weights(model))


def offline_weights(model: str) -> str:
    stem = Path(model).stem
    return (
        f"model={model}: the weights are not on this machine and cannot be downloaded (offline). "
        f"Train from scratch with model={stem}.yaml, or give the path of a local .pt file"
    )


def _check_free(folder: Path) -> None:
    if folder.exists():
        raise Conflict(
            f"{folder} already exists: trialbook never trains into an existing folder. "
            "Move it away, or give the run a new name"
        )


def build_model(model: str) -> Any:
    from ultralytics import YOLO

    try:
        return YOLO(model)
    except Exception as exc:
        if Path(model).suffix == ".pt" and not Path(model).exists():
            raise InvalidInput(f"{offline_weights(model)} ({exc})") from None
        raise InvalidInput(f"model={model}: Ultralytics cannot build it ({exc})") from None


def train(book: Book, plan: TrainPlan) -> TrainResult:
    """Run the checked ``plan``: Ultralytics trains, trialbook records it live."""
    from trialbook.integrations.ultralytics import Tracker

    model = build_model(plan["model"])
    base = Path(plan["base"]) if plan["base"] else Path.cwd().resolve() / "runs" / str(model.task)
    save_dir = base / plan["name"]
    _check_free(save_dir)
    tracker = Tracker(
        project=plan["project"],
        name=plan["name"],
        dataset=plan["dataset"],
        parent=plan["parent"],
        allow_unpinned=plan["allow_unpinned"],
        book=book,
    ).register(model)
    model.train(**{**plan["args"], "project": str(base), "name": plan["name"], "exist_ok": False})
    run = tracker.run
    status = book.store.get_run_by_id(run.id).status if run is not None else "untracked"
    name = plan["name"]
    return {
        "project": plan["project"],
        "name": name,
        "status": status,
        "dataset": run.record.dataset if run is not None else plan["dataset"],
        "save_dir": str(getattr(model.trainer, "save_dir", save_dir)),
        "next": [
            f"trialbook yolo val {name} --split test",
            f"trialbook yolo latency {name} --device TARGET",
            f"trialbook note {name} --hypothesis ... --change ...",
        ],
    }


# --------------------------------------------------------------------------- weights, data
def run_weights(book: Book, run: RunRecord, weights: str | None) -> Path:
    """``weights``, else the run's ``best.pt``: in its training folder, else the copy the
    book keeps as an artifact."""
    if weights:
        path = Path(weights)
        if not path.is_file():
            raise InvalidInput(f"--weights {weights}: no such file")
        return path
    save_dir = run.config.get("save_dir")
    if save_dir and (Path(str(save_dir)) / "weights" / "best.pt").is_file():
        return Path(str(save_dir)) / "weights" / "best.pt"
    stored = [a for a in book.store.list_artifacts(run.id) if a.name == "best.pt"]
    if stored and book.blobs is not None and book.blobs.path_of(stored[-1].digest).is_file():
        return book.blobs.path_of(stored[-1].digest)
    raise NotFound(
        f"run {run.name} has no best.pt here (not in {save_dir}, not kept by the book): give --weights"
    )


def _data_of(run: RunRecord) -> str:
    data = run.config.get("data")
    if not data:
        raise InvalidInput(f"run {run.name} records no data.yaml (it was not trained by Ultralytics?)")
    if not Path(str(data)).exists():
        raise InvalidInput(
            f"the data.yaml of run {run.name} is not at {data}: run the command where it was trained"
        )
    return str(data)


def _check_split(book: Book, run: RunRecord, data: str, split: str) -> None:
    """The files of ``split`` at ``data`` must be the split the run was pinned to."""
    pinned = run.split_digests.get(split)
    if not run.pinned:
        raise InvalidInput(
            f"run {run.name} is UNPINNED: an evaluation of it would name no dataset version's {split} split"
        )
    if not pinned:
        raise InvalidInput(f"the dataset version of run {run.name} ({run.dataset}) has no {split} split")
    working = book.fingerprint(data).split_digests.get(split)
    if working != pinned:
        raise InvalidInput(
            f"the {split} files at {data} are not the {split} split of {run.dataset} that run "
            f"{run.name} was pinned to (they changed since it was tagged): restore them "
            f"(trialbook data status {run.dataset} {data})"
        )


def _outputs(run: RunRecord, split: str, runs_dir: Path | None) -> Path:
    """``./runs/<task>/<run>/<split>``: where Ultralytics writes an evaluation of ``run``."""
    base = runs_dir if runs_dir is not None else Path.cwd() / "runs"
    return base.resolve() / (run.tags.get("task") or "detect") / run.name / split


# --------------------------------------------------------------------------- val
def val(
    book: Book,
    ref: str,
    *,
    split: str = "test",
    weights: str | None = None,
    project: str | None = None,
    imgsz: int | None = None,
    batch: int | None = None,
    device: str | None = None,
    save_images: bool = False,
    runs_dir: Path | None = None,
) -> ValResult:
    """Evaluate run ``ref``'s weights on ``split`` of its pinned dataset version and record
    it (the CLI twin of ``integrations.ultralytics.evaluate``). A test evaluation is sealed.
    Outputs go under ``runs_dir`` (default ``./runs``)."""
    from trialbook.integrations.ultralytics import evaluate

    if split not in ("val", "test"):
        raise InvalidInput(f"--split {split}: use test or val")
    require_ultralytics()
    run = book.run(ref, project)
    data = _data_of(run)
    _check_split(book, run, data, split)
    path = run_weights(book, run, weights)
    args: dict[str, Any] = {
        "imgsz": imgsz or run.config.get("imgsz") or 640,
        "batch": batch or run.config.get("batch") or 16,
        "workers": run.config.get("workers") or 0,
    }
    if device is not None:
        args["device"] = device
    done = evaluate(
        path,
        run=run.name,
        project=run.project,
        book=book,
        split=split,
        data=data,
        save_images=save_images if split == "test" else None,
        outputs=_outputs(run, split, runs_dir),
        **args,
    )
    sealed = bool(done["sealed"])
    return {
        "run": run.name,
        "project": run.project,
        "split": split,
        "sealed": sealed,
        "weights": str(path),
        "images": done["images"],
        "save_dir": done["save_dir"],
        "device": done["device"],
        "metrics": None if sealed else done["metrics"],
        "per_class_ap": None if sealed else done["per_class_ap"],
        "plots": list(done["plots"]),
        "predictions": done["predictions"],
        "next": (
            [f"trialbook decide {run.name} --baseline BASELINE  (reveals it, counted)"]
            if sealed
            else [f"trialbook show {run.name}"]
        ),
    }


# --------------------------------------------------------------------------- latency
def _timing_image(run: RunRecord, imgsz: int) -> Any:
    """A real val image of the run's dataset when there is one here, else a grey frame."""
    import numpy as np

    data = run.config.get("data")
    if data and Path(str(data)).is_file():
        from trialbook.datasets.source import resolve_source

        try:
            split = resolve_source(str(data)).splits.get("val")
        except Exception:  # only a better image to time on; a grey frame does too
            split = None
        if split is not None and split.images:
            return split.images[0]
    return np.full((imgsz, imgsz, 3), 114, dtype=np.uint8)


def latency(
    book: Book,
    ref: str,
    *,
    device: str,
    project: str | None = None,
    imgsz: int | None = None,
    iters: int = LATENCY_ITERS,
    warmup: int = LATENCY_WARMUP,
    fmt: str = "torch",
    weights: str | None = None,
    torch_device: str | None = None,
    step: Callable[[int], None] | None = None,
) -> LatencyResult:
    """Time run ``ref``'s weights here, batch 1, and record p50/p95 for ``device`` (the
    name of this machine as the protocol's target, e.g. ``jetson-orin``)."""
    from trialbook.integrations.ultralytics import LATENCY_FORMATS, load_for_latency, time_predictions

    if fmt not in LATENCY_FORMATS:
        raise InvalidInput(f"--format {fmt}: use one of {', '.join(LATENCY_FORMATS)}")
    if iters < 1 or warmup < 0:
        raise InvalidInput(f"--iters {iters} / --warmup {warmup}: iters must be >= 1 and warmup >= 0")
    if not device.strip():
        raise InvalidInput("--device: name the target device the latency is for (e.g. jetson-orin)")
    require_ultralytics()
    run = book.run(ref, project)
    path = run_weights(book, run, weights)
    size = int(imgsz or run.config.get("imgsz") or 640)
    where = torch_device or _default_torch_device()
    with tempfile.TemporaryDirectory(prefix="trialbook-latency-") as work:
        model = load_for_latency(path, fmt, size, Path(work))
        timings = time_predictions(
            model,
            _timing_image(run, size),
            imgsz=size,
            iters=iters,
            warmup=warmup,
            torch_device=where,
            step=step,
        )
    evaluation = book.attach(run).log_latency(device, timings, imgsz=size, fmt=fmt, warmup=warmup)
    m = evaluation.metrics
    return {
        "run": run.name,
        "project": run.project,
        "device": device.strip(),
        "format": fmt,
        "imgsz": size,
        "iters": iters,
        "warmup": warmup,
        "torch_device": where,
        "p50_ms": m["latency/p50_ms"],
        "p95_ms": m["latency/p95_ms"],
        "mean_ms": m["latency/mean_ms"],
        "weights": str(path),
    }


def _default_torch_device() -> str:
    import torch

    return "0" if torch.cuda.is_available() else "cpu"
