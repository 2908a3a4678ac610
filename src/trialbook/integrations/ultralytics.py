"""Live tracking of Ultralytics YOLO training: one line, ``track(model, ...)``.

Facts this module relies on (checked on ultralytics 8.4):

* ``on_pretrain_routine_start`` runs in the trainer's constructor, with the arguments
  merged over Ultralytics' defaults but before the optimizer choice rewrites some of them
  (``optimizer=auto`` becomes ``AdamW`` with its own ``lr0``): the config is what was asked
  for, and the keys that differ from ``ultralytics.cfg.DEFAULT_CFG_DICT`` are listed in
  ``run.env["config_asked"]``;
* ``on_pretrain_routine_end`` runs after the dataset is resolved (``trainer.data``) and
  before the first epoch: the run starts there, pinned to the tagged dataset version the
  ``data.yaml`` matches (refused on a mismatch unless unpinned is asked for);
* ``on_fit_epoch_end`` runs after each epoch's validation with ``trainer.epoch`` counted
  from 0; ``results.csv`` numbers that epoch ``trainer.epoch + 1``, and so does trialbook.
  At ``on_train_epoch_end`` ``trainer.metrics`` still holds the previous epoch's values;
* after the last epoch ``final_eval`` validates ``best.pt`` and fires ``on_fit_epoch_end``
  once more, with no ``on_train_epoch_end`` before it: that call is logged as the run's
  val evaluation (per-class AP, confusion matrix, speed), not as another epoch;
* ``metrics.box.maps`` gives every class the overall mAP when the class has no AP of its
  own; only the classes in ``ap_class_index`` are recorded;
* the confusion matrix is filled only with ``plots=True``; a matrix of zeros is not kept;
* ``on_train_start`` runs once the loaders are built: the val images are hashed and
  thumbnailed from there on, in a background thread of the lowest priority, so that the
  final validation finds them made;
* the trainer's validator shares the trainer's callbacks: ``on_val_start`` fires for every
  epoch's validation with ``validator.training`` True, and for ``final_eval``'s with it
  False. There the per-image predictions are recorded (``yolo_review``), attached to the
  val evaluation with the plots of that validation; ``results.png`` is written after it,
  before ``on_train_end``, where every plot is recorded.

Per-class and fixed-precision numbers (issue 16; key names in ``core.classkeys``), from
``validator.metrics`` after every epoch's validation (``on_val_end`` with
``validator.training`` True, logged under that epoch) and after the final and ``yolo val``
validations (in the evaluation's metrics, sealed with a test one):

* ``metrics/AP50-95(B)/<class>`` and ``metrics/AP50(B)/<class>``: ``Metric.ap`` (the mean of
  ``all_ap`` over the ten IoU thresholds) and ``Metric.ap50`` (``all_ap[:, 0]``), in
  ``ap_class_index`` order: only the classes with labels in the val split. Segmentation
  adds the ``(M)`` keys from ``metrics.seg``, pose the ``(P)`` keys from ``metrics.pose``;
  both keep the box ``(B)`` ones. OBB uses ``(B)``; classification records none;
* ``metrics/R@P0.95(B)/<class>``: the highest recall whose precision is at least the
  level, read off Ultralytics' per-class curves over the confidence threshold
  (``p_curve`` and ``r_curve``, rows in ``ap_class_index`` order, at IoU 0.5, sampled at
  the 1000 confidences of ``px``; the curves of ``BoxP_curve.png`` and ``BoxR_curve.png``):
  the largest ``r_curve[c, j]`` over the thresholds ``j`` with ``p_curve[c, j] >= level``,
  0 when no threshold reaches the level. Above the highest confidence of a class's
  detections Ultralytics sets precision 1 and recall 0, so that end never adds recall;
  a class with labels but no detection has both curves 0, hence 0 (and counts as 0 in
  the mean below, as in Ultralytics' mean precision and recall);
* ``metrics/R@P0.95(B)`` (overall): the same rule on the class-mean curves, the mean over
  the classes of ``p_curve`` and of ``r_curve`` at each confidence (unsmoothed: the
  "all classes" lines of those plots, the curves ``metrics/precision(B)`` and
  ``metrics/recall(B)`` are read from): the highest mean recall at one confidence
  threshold, shared by every class, where the mean precision is at least the level.
  It is not the mean of the per-class values (each of those may use its own threshold);
* the level is the project's ``Protocol.precision_level`` (default 0.95), read once when
  the run starts (``evaluate``: when it runs); the key follows it (``R@P0.9``). A
  precision counts as reaching the level within ``RECALL_TOLERANCE`` (1e-9: float noise
  of the interpolated curves). Cost: a few numpy operations on arrays of
  ``classes x 1000`` per validation.

A class whose name makes a key trialbook cannot store (over 250 characters, ...) is left
out with one ``TrackingWarning``.

Tracking never stops training, with one exception by design: a run whose dataset does not
match its tag is refused before the first epoch (pass ``allow_unpinned=True`` to record it
as UNPINNED instead). Any other tracking fault becomes a ``TrackingWarning``.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import logging
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trialbook.api import Book, Run, TrackingWarning
from trialbook.core import classkeys
from trialbook.core.config import ASKED_ENV_KEY
from trialbook.core.entities import Evaluation
from trialbook.core.metrics import check_key
from trialbook.errors import InvalidInput, TrialbookError
from trialbook.integrations.yolo_review import (
    EVAL_PLOTS,
    THUMBS,
    TRAIN_PLOTS,
    PredictionRecorder,
    log_plots,
    max_images,
    plots_in,
    wait_for_plots,
)

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "Tracker",
    "class_metrics",
    "evaluate",
    "per_class_ap",
    "precision_level",
    "recall_at_precision",
    "time_predictions",
    "track",
]

TASK_METRIC = {"segment": "seg", "pose": "pose"}
# (key part, attribute of the validator's metrics) per task; other tasks: the boxes only
TASK_PARTS = {"segment": (("B", "box"), ("M", "seg")), "pose": (("B", "box"), ("P", "pose"))}
RECALL_TOLERANCE = 1e-9


def _guard(what: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Turn a tracking fault inside a callback into a warning."""

    def wrap(fn: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(fn)
        def inner(self: Tracker, trainer: Any) -> None:
            try:
                fn(self, trainer)
            except Exception as exc:
                warnings.warn(f"trialbook: {what} failed: {exc}", TrackingWarning, stacklevel=2)

        return inner

    return wrap


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def asked_keys(config: dict[str, Any]) -> list[str]:
    """The keys of a training config that differ from Ultralytics' defaults (sorted)."""
    from ultralytics.cfg import DEFAULT_CFG_DICT

    defaults = _plain(dict(DEFAULT_CFG_DICT))
    missing = object()
    return sorted(k for k, v in config.items() if defaults.get(k, missing) != v)


def _asked_env(config: dict[str, Any]) -> dict[str, Any] | None:
    try:
        return {ASKED_ENV_KEY: asked_keys(config)}
    except Exception:  # an Ultralytics without DEFAULT_CFG_DICT: every key counts as asked
        return None


def device_name(device: Any) -> str:
    """A readable name of a torch device: the GPU's name, else the CPU's."""
    text = str(device)
    if text.startswith("cuda"):
        try:
            import torch

            index = int(text.split(":")[1]) if ":" in text else 0
            return str(torch.cuda.get_device_name(index))
        except Exception:
            return text
    return "cpu" if text.startswith("cpu") else text


def per_class_ap(metrics: Any, names: dict[int, str] | list[str], task: str | None) -> dict[str, float]:
    """Per-class AP of a validator's metrics, for the classes that have an AP of their own."""
    part = getattr(metrics, TASK_METRIC.get(task or "", "box"), None) or getattr(metrics, "box", None)
    if part is None:
        return {}
    lookup = dict(enumerate(names)) if isinstance(names, list) else dict(names)
    index = getattr(part, "ap_class_index", None)
    if index is None or len(index) == 0:
        index = getattr(metrics, "ap_class_index", None)
    index = [] if index is None else [int(i) for i in index]
    ap = [float(v) for v in getattr(part, "ap", [])]  # mAP50-95 per class, ap_class_index order
    out: dict[str, float] = {}
    if ap and len(ap) == len(index):
        for cls, value in zip(index, ap, strict=True):
            out[lookup.get(int(cls), str(int(cls)))] = float(value)
    return out


def _class_names(names: dict[int, str] | list[str] | None) -> dict[int, str]:
    if not names:
        return {}
    if isinstance(names, (list, tuple)):
        return dict(enumerate(names))
    return {int(k): str(v) for k, v in names.items()}


def recall_at_precision(precision: Any, recall: Any, level: float) -> np.ndarray:
    """The highest recall whose precision is at least ``level``, along the last axis of
    two curves sampled at the same points (one row per class, or one curve); 0 where no
    point reaches the level. Points are taken as they are: the curves need not be monotone."""
    import numpy as np

    p, r = np.asarray(precision, dtype=float), np.asarray(recall, dtype=float)
    if p.shape != r.shape:
        raise ValueError(f"precision {p.shape} and recall {r.shape} are not sampled alike")
    if p.ndim == 0 or p.shape[-1] == 0:
        return np.zeros(p.shape[:-1])
    reached = (p >= level - RECALL_TOLERANCE) & np.isfinite(r)
    return np.clip(np.where(reached, r, 0.0), 0.0, 1.0).max(axis=-1)


def class_metrics(
    metrics: Any, names: dict[int, str] | list[str] | None, task: str | None, level: float
) -> dict[str, float]:
    """Every class's AP50-95, AP50 and recall at precision ``level``, and the overall
    recall at that precision, of a validator's metrics (see the module docstring)."""
    import numpy as np

    lookup = _class_names(names or getattr(metrics, "names", None))
    out: dict[str, float] = {}
    for part, attr in TASK_PARTS.get(task or "", (("B", "box"),)):
        found = getattr(metrics, attr, None)
        index = getattr(found, "ap_class_index", None)
        if found is None or index is None or len(index) == 0:
            continue
        classes = [lookup.get(int(i), str(int(i))) for i in index]
        for iou, values in (("50-95", found.ap), ("50", found.ap50)):
            if len(values) == len(classes):
                pairs = zip(classes, values, strict=True)
                out.update({classkeys.ap_key(c, iou=iou, part=part): float(v) for c, v in pairs})
        p_curve, r_curve = getattr(found, "p_curve", None), getattr(found, "r_curve", None)
        if p_curve is None or r_curve is None:
            continue
        p_curve, r_curve = np.asarray(p_curve, dtype=float), np.asarray(r_curve, dtype=float)
        if p_curve.ndim != 2 or p_curve.shape != r_curve.shape or len(p_curve) != len(classes):
            continue
        per_class = recall_at_precision(p_curve, r_curve, level)
        pairs = zip(classes, per_class, strict=True)
        out.update({classkeys.recall_key(level, c, part=part): float(v) for c, v in pairs})
        overall = recall_at_precision(p_curve.mean(0), r_curve.mean(0), level)
        out[classkeys.recall_key(level, part=part)] = float(overall)
    return out


def storable(values: dict[str, float], *, warn: bool = True) -> dict[str, float]:
    """``values`` less the keys no backend can store (a class name holding a NUL, one
    that makes a key over 250 characters), said in one ``TrackingWarning`` if ``warn``."""
    kept: dict[str, float] = {}
    refused: list[str] = []
    for key, value in values.items():
        try:
            kept[check_key(key)] = value
        except TrialbookError:
            refused.append(key)
    if refused and warn:
        warnings.warn(
            f"trialbook: {len(refused)} per-class metric key(s) cannot be stored and are left out, "
            f"e.g. {refused[0][:80]!r}",
            TrackingWarning,
            stacklevel=3,
        )
    return kept


def precision_level(book: Book, project: str) -> float:
    """The project's precision level for recall at a fixed precision (``Protocol.precision_level``,
    else ``classkeys.DEFAULT_LEVEL``)."""
    try:
        protocol = book.project(project).protocol
    except TrialbookError:
        return classkeys.DEFAULT_LEVEL
    level = getattr(protocol, "precision_level", None)
    if not isinstance(level, (int, float)) or isinstance(level, bool) or not 0.0 < float(level) <= 1.0:
        return classkeys.DEFAULT_LEVEL
    return float(level)


def confusion(validator: Any) -> tuple[list[list[float]] | None, list[str] | None]:
    cm = getattr(validator, "confusion_matrix", None)
    matrix = getattr(cm, "matrix", None)
    if matrix is None or float(matrix.sum()) == 0.0:
        return None, None
    names = getattr(validator, "names", None) or {}
    class_names = [names[i] for i in sorted(names)] if isinstance(names, dict) else list(names)
    return [[float(v) for v in row] for row in matrix.tolist()], class_names


def latency(validator: Any) -> tuple[float | None, dict[str, float]]:
    speed = dict(getattr(validator, "speed", None) or {})
    if not speed:
        return None, {}
    total = sum(float(speed.get(k, 0.0)) for k in ("preprocess", "inference", "postprocess"))
    return total, {f"speed/{k}": float(v) for k, v in speed.items()}


class Tracker:
    """The callbacks that record one training of one model."""

    def __init__(
        self,
        *,
        project: str,
        name: str,
        dataset: str | None = None,
        parent: str | None = None,
        allow_unpinned: bool = False,
        uri: str | None = None,
        book: Book | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        self.project, self.name, self.dataset, self.parent = project, name, dataset, parent
        self.allow_unpinned = allow_unpinned
        self.uri = uri
        self.book = book
        self.tags = tags or {}
        self.run: Run | None = None
        self._args: dict[str, Any] | None = None
        self._train_epoch: int | None = None
        self._ended = False
        self._recorder: PredictionRecorder | None = None
        self._val_eval: Evaluation | None = None
        self._prefetch: threading.Event | None = None
        self._task: str | None = None
        self._names: dict[int, str] = {}
        self._level = classkeys.DEFAULT_LEVEL
        self._class_values: dict[str, float] | None = None  # of the last validation
        self._refused_keys = False

    # -- callbacks ---------------------------------------------------------------------
    @_guard("reading the training arguments")
    def on_pretrain_routine_start(self, trainer: Any) -> None:
        args = _plain(dict(vars(trainer.args)))
        data = args.get("data")
        if isinstance(data, str) and Path(data).is_file():
            args["data"] = str(Path(data).resolve())  # found again from any folder (yolo val)
        self._args = args

    def on_pretrain_routine_end(self, trainer: Any) -> None:
        """Start the run. A dataset mismatch is refused here, before the first epoch."""
        book = self.book or Book.open(self.uri)
        self.book = book
        data_yaml = (getattr(trainer, "data", None) or {}).get("yaml_file") or trainer.args.data
        config = dict(self._args) if self._args is not None else _plain(dict(vars(trainer.args)))
        config["save_dir"] = str(trainer.save_dir)
        dataset = self.dataset
        if dataset is None and data_yaml:
            try:
                dataset = book.find_dataset_tag(data_yaml)
            except TrialbookError as exc:
                if not self.allow_unpinned:
                    raise TrialbookError(
                        f"cannot tell which tagged version {data_yaml} is ({exc}); name one with "
                        "dataset=, or pass allow_unpinned=True"
                    ) from exc
                dataset = None  # e.g. a classification folder: recorded UNPINNED
        try:
            self.run = book.start(
                self.project,
                self.name,
                dataset=dataset,
                parent=self.parent,
                config=config,
                allow_unpinned=self.allow_unpinned,
                dataset_source=data_yaml if dataset else None,
                tags={"task": str(trainer.args.task), "source": "ultralytics", **self.tags},
                env=_asked_env(config),
            )
        except TrialbookError:
            raise  # a refused name or dataset stops this training before it starts
        except Exception as exc:
            warnings.warn(
                f"trialbook: could not start run {self.name!r} ({exc}); training goes on untracked",
                TrackingWarning,
                stacklevel=2,
            )
        if self.run is not None:
            self._read_protocol(trainer)

    @_guard("reading the project's precision level")
    def _read_protocol(self, trainer: Any) -> None:
        self._task = str(trainer.args.task)
        self._names = _class_names((getattr(trainer, "data", None) or {}).get("names"))
        assert self.book is not None
        self._level = precision_level(self.book, self.project)

    @_guard("marking the epoch")
    def on_train_epoch_end(self, trainer: Any) -> None:
        self._train_epoch = trainer.epoch

    @_guard("preparing the val thumbnails")
    def on_train_start(self, trainer: Any) -> None:
        files = list(getattr(getattr(trainer.test_loader, "dataset", None), "im_files", None) or [])
        if self.run is not None and files and len(files) <= max_images():
            self._prefetch = THUMBS.prefetch(files)

    def _stop_prefetch(self) -> None:
        if self._prefetch is not None:
            self._prefetch.set()
            self._prefetch = None

    @_guard("preparing to record the val predictions")
    def on_val_start(self, validator: Any) -> None:
        if validator.training or self.run is None or self._ended:
            return  # an epoch's validation, or a model.val() after this training
        self._stop_prefetch()  # what is left is made by the recorder's workers
        self._recorder = PredictionRecorder("val")
        self._recorder.on_val_start(validator)

    @_guard("reading the per-class metrics")
    def on_val_end(self, validator: Any) -> None:
        self._class_values = None
        if self.run is None or self._ended:
            return  # a model.val() after this training
        names = self._names or _class_names(getattr(validator, "names", None))
        values = class_metrics(getattr(validator, "metrics", None), names, self._task, self._level)
        kept = storable(values, warn=not self._refused_keys)
        self._refused_keys |= len(kept) < len(values)
        self._class_values = kept

    @_guard("logging the epoch")
    def on_fit_epoch_end(self, trainer: Any) -> None:
        if self.run is None:
            return
        if self._train_epoch is not None and self._train_epoch == trainer.epoch:
            self._train_epoch = None
            values = {
                **trainer.label_loss_items(trainer.tloss, prefix="train"),
                **(trainer.metrics or {}),
                **(trainer.lr or {}),
            }
            self.run.log(values, epoch=trainer.epoch + 1)
            per_class, self._class_values = self._class_values, None
            if per_class:  # None when this epoch did not validate (val=False)
                self.run.log(per_class, epoch=trainer.epoch + 1)
            return
        self._final_eval(trainer)  # final_eval's validation of best.pt

    def _final_eval(self, trainer: Any) -> None:
        assert self.run is not None
        validator = trainer.validator
        metrics = {k: v for k, v in (trainer.metrics or {}).items()}
        names = (getattr(trainer, "data", None) or {}).get("names") or getattr(validator, "names", {})
        matrix, class_names = confusion(validator)
        total, speeds = latency(validator)
        recorder, self._recorder = self._recorder, None
        per_class, self._class_values = self._class_values or {}, None
        try:
            self._val_eval = self.run.log_eval(
                "val",
                {**metrics, **per_class, **speeds},
                per_class_ap=per_class_ap(getattr(validator, "metrics", None), names, trainer.args.task),
                confusion_matrix=matrix,
                class_names=class_names,
                latency_ms=total,
                device=device_name(trainer.device),
            )
            if recorder is not None:
                recorder.record(self.run, self._val_eval)
        finally:
            if recorder is not None:
                recorder.close()

    @_guard("finishing the run")
    def on_train_end(self, trainer: Any) -> None:
        if self.run is None:
            return
        for weights in (trainer.best, trainer.last):
            if Path(weights).exists():
                self.run.log_artifact(weights)
        results = Path(trainer.save_dir) / "results.csv"
        if results.exists():
            self.run.log_artifact(results)
        wait_for_plots()
        # the evaluation plots in the folder are final_eval's (of best.pt), when it ran
        log_plots(self.run, plots_in(trainer.save_dir, EVAL_PLOTS), self._val_eval)
        log_plots(self.run, plots_in(trainer.save_dir, TRAIN_PLOTS))
        self._ended = True
        self.run.finish("finished")

    def teardown(self, trainer: Any) -> None:
        """Always runs last: a training that never reached on_train_end failed."""
        self._stop_prefetch()
        if self._recorder is not None:
            self._recorder.close()
            self._recorder = None
        if self.run is not None and not self._ended:
            self._ended = True
            self.run.finish("failed")

    def register(self, model: Any) -> Tracker:
        for event in (
            "on_pretrain_routine_start",
            "on_pretrain_routine_end",
            "on_train_start",
            "on_train_epoch_end",
            "on_val_start",
            "on_val_end",
            "on_fit_epoch_end",
            "on_train_end",
            "teardown",
        ):
            model.add_callback(event, getattr(self, event))
        return self


def track(
    model: Any,
    *,
    project: str,
    name: str,
    dataset: str | None = None,
    parent: str | None = None,
    allow_unpinned: bool = False,
    uri: str | None = None,
    book: Book | None = None,
) -> Tracker:
    """Record ``model.train(...)`` as the run ``name`` of ``project``.

    ``dataset="pallets:v3"`` names the tagged version; without it, the version whose
    digest matches the training ``data.yaml`` is found, and training is refused when none
    matches (unless ``allow_unpinned=True``)."""
    return Tracker(
        project=project,
        name=name,
        dataset=dataset,
        parent=parent,
        allow_unpinned=allow_unpinned,
        uri=uri,
        book=book,
    ).register(model)


@contextlib.contextmanager
def quiet_console() -> Iterator[None]:
    """Ultralytics' console logger held to warnings: what a sealed evaluation must not
    print (the metrics table, the speed line) is never written."""
    from ultralytics.utils import LOGGER

    level = LOGGER.level
    LOGGER.setLevel(logging.WARNING)
    try:
        yield
    finally:
        LOGGER.setLevel(level)


def evaluate(
    weights: str | Path,
    *,
    run: str,
    split: str = "test",
    data: str | None = None,
    project: str | None = None,
    uri: str | None = None,
    book: Book | None = None,
    save_images: bool | None = None,
    outputs: str | Path | None = None,
    **val_args: Any,
) -> dict[str, Any]:
    """Validate ``weights`` on one split (``model.val(split=...)``) and record it as an
    evaluation of ``run``; a test evaluation is sealed. Returns what was recorded, without
    the numbers of a sealed one.

    The validator's plots and every image's predictions (with thumbnails) are recorded
    as artifacts attached to the evaluation, sealed with a test one. A test evaluation
    stays sealed on the console too: Ultralytics' metrics table and speed line are not
    printed, and no plots or images of the test split stay on disk unless
    ``save_images=True`` (Ultralytics writes them into a temporary folder, deleted once
    they are recorded). For the val split plots stay on disk unless ``save_images=False``.
    ``outputs`` is the folder Ultralytics writes into (numbered if it exists; made, empty,
    when nothing is to stay on disk)."""
    from ultralytics import YOLO

    book = book or Book.open(uri)
    record = book.run(run, project)
    data = data or record.config.get("data")
    if not data:
        raise TrialbookError(f"run {record.name!r} records no data.yaml: pass data=")
    sealed = split == "test"
    keep = (not sealed) if save_images is None else save_images
    model = YOLO(str(weights))
    seen: dict[str, Any] = {}
    recorder = PredictionRecorder(split)
    model.add_callback("on_val_start", recorder.on_val_start)
    model.add_callback("on_val_end", lambda validator: seen.setdefault("validator", validator))
    val_args["plots"] = True  # recorded either way; `keep` says whether they stay on disk
    if sealed:
        val_args.update(verbose=False, save_json=False, save_txt=False, save_conf=False)
    folder = Path(outputs).resolve() if outputs is not None else None
    with contextlib.ExitStack() as stack:
        if keep and folder is not None:
            val_args.update(project=str(folder.parent), name=folder.name, exist_ok=False)
        elif not keep:
            scratch = stack.enter_context(tempfile.TemporaryDirectory(prefix="trialbook-val-"))
            val_args.update(project=scratch, name=split, exist_ok=True)
            folder = _numbered_folder(folder) if folder is not None else None
        stack.callback(recorder.close)
        with quiet_console() if sealed else contextlib.nullcontext():
            metrics = model.val(data=data, split=split, **val_args)
            wait_for_plots()
        validator = seen.get("validator")
        matrix, class_names = confusion(validator) if validator is not None else (None, None)
        total, speeds = latency(validator if validator is not None else metrics)
        task = record.tags.get("task") or getattr(model, "task", None)
        names = getattr(metrics, "names", {}) or model.names
        per_class = storable(class_metrics(metrics, names, task, precision_level(book, record.project)))
        handle = book.attach(record)
        evaluation = handle.log_eval(
            split,
            {**dict(getattr(metrics, "results_dict", {}) or {}), **per_class, **speeds},
            per_class_ap=per_class_ap(metrics, names, task),
            confusion_matrix=matrix,
            class_names=class_names,
            latency_ms=total,
            device=device_name(getattr(validator, "device", "cpu")),
        )
        written = getattr(validator, "save_dir", None)
        plots = log_plots(handle, plots_in(written, EVAL_PLOTS), evaluation)
        recorded = recorder.record(handle, evaluation)
    save_dir = str(written) if keep and written else (str(folder) if folder is not None else None)
    out: dict[str, Any] = {
        "run": record.name,
        "project": record.project,
        "split": split,
        "sealed": evaluation.sealed,
        "evaluation_id": evaluation.id,
        "images": int(getattr(validator, "seen", 0) or 0) if validator is not None else None,
        "save_dir": save_dir,
        "device": evaluation.device,
        "metrics": None if evaluation.sealed else dict(evaluation.metrics),
        "per_class_ap": None if evaluation.sealed else dict(evaluation.per_class_ap),
        "plots": plots,
        "predictions": recorded,
    }
    return out


def _numbered_folder(folder: Path) -> Path:
    """``folder``, made empty, numbered as Ultralytics numbers a folder that exists."""
    from ultralytics.utils.files import increment_path

    return Path(increment_path(folder, exist_ok=False, mkdir=True))


LATENCY_FORMATS = ("torch", "torchscript", "onnx")


def load_for_latency(weights: Path, fmt: str, imgsz: int, workdir: Path) -> Any:
    """The model to time: the weights as they are (``torch``), or exported to ``fmt`` in
    ``workdir`` (a copy of the weights is exported, so nothing is written beside them)."""
    import shutil

    from ultralytics import YOLO

    if fmt == "torch":
        return YOLO(str(weights))
    if fmt == "onnx":
        missing = [m for m in ("onnx", "onnxruntime") if importlib.util.find_spec(m) is None]
        if missing:
            raise InvalidInput(f"--format onnx needs {' and '.join(missing)}: pip install 'trialbook[onnx]'")
    copy = workdir / weights.name
    shutil.copyfile(weights, copy)
    with quiet_console():
        exported = YOLO(str(copy)).export(format=fmt, imgsz=imgsz, device="cpu", verbose=False)
    return YOLO(str(exported), task=YOLO(str(copy)).task)


def time_predictions(
    model: Any,
    image: Any,
    *,
    imgsz: int,
    iters: int,
    warmup: int,
    torch_device: str,
    step: Callable[[int], None] | None = None,
) -> list[float]:
    """Milliseconds of ``iters`` single-image predictions (pre-processing, inference and
    post-processing, batch 1), after ``warmup`` untimed ones."""
    import time

    kwargs = {"imgsz": imgsz, "device": torch_device, "verbose": False, "batch": 1}
    with quiet_console():
        for _ in range(warmup):
            model.predict(image, **kwargs)
        timings = []
        for i in range(iters):
            started = time.perf_counter()
            model.predict(image, **kwargs)
            timings.append((time.perf_counter() - started) * 1000.0)
            if step is not None:
                step(i + 1)
    return timings
