"""What a run review needs from Ultralytics: its plots, and every image's boxes.

* **Plots** are the PNG/JPEG files Ultralytics writes in a run's folder, recorded as
  artifacts under their own file names: the evaluation's (:data:`EVAL_PLOTS`: confusion
  matrices, the P/R/F1/PR curves of each task, the ``val_batch*`` mosaics) and the
  training's (:data:`TRAIN_PLOTS`: ``results.png``, ``labels.jpg``, ``train_batch*``).
* **Predictions** (:class:`PredictionRecorder`): for every image of the split, its ground
  truth and the predicted boxes at confidence :data:`~trialbook.core.predictions.CONF_FLOOR`
  or more, in fractions of the original image, its blake3 hash and a JPEG thumbnail
  (longest side at most :data:`~trialbook.core.predictions.THUMB_SIZE`), stored as one
  ``predictions.json.gz`` attached to the evaluation, the thumbnails as its blobs.

Facts relied on (checked on ultralytics 8.4):

* ``BaseValidator.__call__`` fires ``on_val_start`` after the dataloader is built, then
  per batch calls ``self.update_metrics(preds, batch)`` after NMS; ``on_val_batch_end``
  is given the validator only, not ``preds`` nor ``batch``. So the recorder wraps
  ``update_metrics`` on the validator instance at ``on_val_start``;
* for the detect, segment and pose validators each ``preds[i]`` is a dict whose
  ``bboxes`` are xyxy pixels of the letterboxed input, with ``conf`` and ``cls``; ``batch``
  has ``im_file``, ``ori_shape`` (h, w), ``ratio_pad``, ``bboxes`` (normalised xywh of the
  letterboxed input), ``cls`` and ``batch_idx``. ``ops.scale_boxes`` maps letterboxed
  pixels back to the original image, as ``_prepare_batch`` and ``scale_preds`` do;
* ``ori_shape`` is the image as OpenCV reads it, EXIF orientation applied: so is the
  thumbnail;
* ``plot_images`` (the ``val_batch*``/``train_batch*`` mosaics) runs in a non-daemon
  thread of its own, named ``Thread-N (plot_images)``: a mosaic may still be being written
  when validation returns, so those threads are joined before a folder is read.

A fault here never stops a training or an evaluation: it becomes one ``TrackingWarning``
and the evaluation is recorded without what failed.
"""

from __future__ import annotations

import atexit
import contextlib
import fnmatch
import io
import math
import os
import shutil
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from blake3 import blake3

from trialbook import settings
from trialbook.api import RunHandle, TrackingWarning
from trialbook.artifacts.local import hash_file
from trialbook.core import predictions as fmt
from trialbook.core.entities import Evaluation

__all__ = [
    "EVAL_PLOTS",
    "MAX_IMAGES_VAR",
    "THUMBS",
    "TRAIN_PLOTS",
    "ImageFile",
    "PredictionRecorder",
    "Thumbnails",
    "log_plots",
    "max_images",
    "plots_in",
    "thumbnail_bytes",
    "wait_for_plots",
]

EVAL_PLOTS = ("confusion_matrix*.png", "*_curve.png", "val_batch*_labels.jpg", "val_batch*_pred.jpg")
TRAIN_PLOTS = ("results.png", "labels*.jpg", "train_batch*.jpg")
TASKS = ("detect", "segment", "pose")  # their validators predict axis-aligned boxes
MAX_IMAGES_VAR = settings.PREDICTIONS_MAX_IMAGES_VAR
THUMB_QUALITY = 85
THUMB_WORKERS = 2
PLOT_WAIT_S = 60.0


def _warn(message: str) -> None:
    warnings.warn(f"trialbook: {message}", TrackingWarning, stacklevel=3)


# --------------------------------------------------------------------------- plots
def wait_for_plots(timeout: float = PLOT_WAIT_S) -> None:
    """Join the threads in which Ultralytics is still writing mosaics (module docstring)."""
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and thread.name.endswith("(plot_images)"):
            thread.join(timeout)


def plots_in(folder: str | os.PathLike[str] | None, patterns: Sequence[str]) -> list[Path]:
    """The files directly in ``folder`` whose names match one of ``patterns``, by name."""
    if folder is None or not Path(folder).is_dir():
        return []
    return sorted(
        (
            p
            for p in Path(folder).iterdir()
            if p.is_file() and any(fnmatch.fnmatch(p.name, x) for x in patterns)
        ),
        key=lambda p: p.name,
    )


def log_plots(run: RunHandle, paths: Iterable[Path], evaluation: Evaluation | None = None) -> list[str]:
    """Record each plot as an artifact of ``run`` under its file name (attached to
    ``evaluation`` when given); the names recorded. A fault is one warning."""
    done: list[str] = []
    try:
        for path in paths:
            run.log_artifact(path, evaluation=evaluation)
            done.append(path.name)
    except Exception as exc:
        _warn(f"storing the plots failed after {len(done)} ({exc})")
    return done


# --------------------------------------------------------------------------- thumbnails
def thumbnail_bytes(path: str | os.PathLike[str], size: int = fmt.THUMB_SIZE) -> bytes:
    """A JPEG of the image at ``path``, EXIF orientation applied, its longest side at most
    ``size``. The same file gives the same bytes (no metadata, fixed settings)."""
    from PIL import Image, ImageOps

    with Image.open(path) as image:
        scale = min(1.0, size / max(image.size))
        # a JPEG is decoded at the smallest 1/2^k scale still at least the thumbnail's size
        image.draft("RGB", (math.ceil(image.width * scale), math.ceil(image.height * scale)))
        shown = ImageOps.exif_transpose(image).convert("RGB")
    shown.thumbnail((size, size), Image.Resampling.BILINEAR)  # after a box reduce() to < 2x: enough
    out = io.BytesIO()
    shown.save(out, "JPEG", quality=THUMB_QUALITY)
    return out.getvalue()


class ImageFile(NamedTuple):
    """An image as recorded: its blake3 hash, and its thumbnail's blob digest and file
    (both None when the file cannot be read as an image)."""

    hash: str
    thumb: str | None
    thumb_file: str | None


class Thumbnails:
    """Thumbnails, files named by their digest in a temporary folder (removed at exit),
    by image hash; and the hashes of the image files already read (by path, size and
    mtime). :data:`THUMBS` is this process's: an image is hashed and thumbnailed once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._folder: Path | None = None
        self._hashes: dict[tuple[str, int, int], str] = {}
        self._made: dict[str, tuple[str, str] | None] = {}

    def folder(self) -> Path:
        with self._lock:
            if self._folder is None or not self._folder.is_dir():
                self._folder = Path(tempfile.mkdtemp(prefix="trialbook-thumbs-"))
                atexit.register(shutil.rmtree, self._folder, True)
            return self._folder

    def of(self, path: str) -> ImageFile:
        st = os.stat(path)
        key = (path, st.st_size, st.st_mtime_ns)
        digest = self._hashes.get(key)
        if digest is None:
            digest = self._hashes[key] = hash_file(Path(path))[0]
        made = self._made.get(digest)
        if digest not in self._made or (made is not None and not Path(made[1]).is_file()):
            made = self._made[digest] = self._make(path)
        return ImageFile(digest, *made) if made is not None else ImageFile(digest, None, None)

    def prefetch(self, paths: Sequence[str]) -> threading.Event:
        """Hash and thumbnail ``paths`` in a thread of the lowest CPU priority, until done
        or until the returned event is set (a training's val images, while it trains: its
        final validation then finds them made)."""
        stop = threading.Event()

        def work() -> None:
            _lowest_priority()
            for path in paths:
                if stop.is_set():
                    return
                with contextlib.suppress(Exception):  # the recorder says so, if it fails again
                    self.of(path)

        threading.Thread(target=work, name="trialbook-thumbs-prefetch").start()
        return stop

    def _make(self, path: str) -> tuple[str, str] | None:
        try:
            data = thumbnail_bytes(path)
        except Exception:
            return None
        digest = blake3(data).hexdigest()
        thumb = self.folder() / f"{digest}.jpg"
        if not thumb.is_file():
            part = thumb.with_name(f".{thumb.name}.{threading.get_ident()}")
            part.write_bytes(data)
            os.replace(part, thumb)
        return digest, str(thumb)


THUMBS = Thumbnails()


def _lowest_priority() -> None:
    """This thread at nice 19 (Linux: a thread's nice value is its own), so it takes only
    what the training leaves of the CPU."""
    if not sys.platform.startswith("linux"):
        return  # elsewhere the id names the process: the training would be niced too
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)


# --------------------------------------------------------------------------- predictions
def max_images() -> int:
    """``$TRIALBOOK_PREDICTIONS_MAX_IMAGES``, else ``core.predictions.MAX_IMAGES``: the most
    images an evaluation records predictions for. A value that is no count >= 0 is warned
    about and the default used."""
    value = (settings.predictions_max_images() or "").strip()
    if not value:
        return fmt.MAX_IMAGES
    try:
        cap = int(value)
    except ValueError:
        cap = -1
    if cap < 0:
        _warn(f"${MAX_IMAGES_VAR}={value!r} is no number of images; using {fmt.MAX_IMAGES}")
        return fmt.MAX_IMAGES
    return cap


@dataclass(frozen=True)
class _Seen:
    """One image as validated: arrays (8 bytes a number, not a Python object each) of
    ``[cls, x1, y1, x2, y2]`` rows (``gt``) and ``[cls, conf, x1, y1, x2, y2]`` rows
    (``pred``, best first), boxes in fractions of the original image."""

    im_file: str
    width: int
    height: int
    gt: Any
    pred: Any

    def boxes(self) -> tuple[list[fmt.Box], list[fmt.Pred]]:
        gt = [(int(c), *xy) for c, *xy in self.gt.tolist()]
        pred = [(int(c), s, *xy) for c, s, *xy in self.pred.tolist()]
        return gt, pred


class PredictionRecorder:
    """Every image's ground truth and predictions of one validation (module docstring).

    ``on_val_start`` is the Ultralytics callback that installs it on a validator;
    :meth:`record` stores what it saw as an artifact of an evaluation."""

    def __init__(self, split: str, thumbnails: Thumbnails = THUMBS) -> None:
        self.split = split
        self.thumbnails = thumbnails
        self._validator: Any = None
        self._original: Any = None
        self._seen: list[_Seen] = []
        self._thumbs: dict[str, Future[ImageFile]] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._fault: str | None = None

    def on_val_start(self, validator: Any) -> None:
        try:
            self.attach(validator)
        except Exception as exc:
            self._failed(exc)

    def _failed(self, exc: Exception) -> None:
        _warn(f"recording the {self.split} predictions failed ({exc}); the evaluation is kept without them")

    def attach(self, validator: Any) -> bool:
        """Wrap the validator's ``update_metrics``; False (nothing installed) for a task
        without boxes or a split over the cap (one warning)."""
        if str(getattr(validator.args, "task", "")) not in TASKS:
            return False
        count, cap = len(validator.dataloader.dataset), max_images()
        if count > cap:
            _warn(
                f"the {self.split} split has {count} images, more than the {cap} that predictions "
                f"are recorded for: this evaluation records none (set {MAX_IMAGES_VAR} to {count} "
                "or more to record them)"
            )
            return False
        self.close()
        self._validator, self._original = validator, validator.update_metrics
        self._pool = ThreadPoolExecutor(THUMB_WORKERS, thread_name_prefix="trialbook-thumbs")

        def update_metrics(preds: Any, batch: dict[str, Any]) -> None:
            self._original(preds, batch)
            if self._fault is None:
                try:
                    self._capture(preds, batch)
                except Exception as exc:
                    self._fault = str(exc) or type(exc).__name__

        validator.update_metrics = update_metrics
        return True

    def detach(self) -> None:
        if self._validator is not None:
            vars(self._validator).pop("update_metrics", None)
        self._validator = None

    def _capture(self, preds: Sequence[dict[str, Any]], batch: dict[str, Any]) -> None:
        import numpy as np
        import torch
        from ultralytics.utils import ops

        h_in, w_in = (int(v) for v in batch["img"].shape[2:])
        letterboxed = (h_in, w_in)
        owner = batch["batch_idx"].cpu().numpy()
        truth = np.column_stack(  # cls, x1, y1, x2, y2 in pixels of the letterboxed input
            [batch["cls"].reshape(-1).cpu().numpy(), ops.xywh2xyxy(batch["bboxes"].cpu().numpy())]
        ).astype(np.float64)
        truth[:, 1:] *= [w_in, h_in, w_in, h_in]
        for si, pred in enumerate(preds):
            im_file = str(batch["im_file"][si])
            height, width = (int(v) for v in batch["ori_shape"][si])
            ratio_pad = batch["ratio_pad"][si]
            fractions = [width, height, width, height]
            gt = truth[owner == si]
            gt[:, 1:] = ops.scale_boxes(letterboxed, gt[:, 1:], (height, width), ratio_pad=ratio_pad)
            gt[:, 1:] /= fractions
            keep = pred["conf"] >= fmt.CONF_FLOOR
            rows = torch.cat([pred["cls"][keep, None], pred["conf"][keep, None], pred["bboxes"][keep]], 1)
            found = rows.detach().double().cpu().numpy()
            found[:, 2:] = ops.scale_boxes(letterboxed, found[:, 2:], (height, width), ratio_pad=ratio_pad)
            found[:, 2:] /= fractions
            found = found[np.argsort(-found[:, 1], kind="stable")]
            self._seen.append(_Seen(im_file, width, height, gt, found))
            if im_file not in self._thumbs and self._pool is not None:
                self._thumbs[im_file] = self._pool.submit(self.thumbnails.of, im_file)

    def predictions(self, split_digest: str | None = None) -> fmt.Predictions:
        """What was seen, as a ``Predictions`` (images by path); waits for the thumbnails."""
        validator = self._validator
        names = getattr(validator, "names", None) or {}
        class_names = [str(names[i]) for i in sorted(names)] if isinstance(names, dict) else list(names)
        data = getattr(validator, "data", None) or {}
        root = Path(str(data["path"])).resolve() if data.get("path") else None
        images: list[fmt.ImagePredictions] = []
        unread = 0
        for seen in self._seen:
            found = self._thumbs[seen.im_file].result()
            unread += found.thumb is None
            gt, pred = seen.boxes()
            images.append(
                fmt.ImagePredictions(
                    image=_relative(seen.im_file, root),
                    hash=found.hash,
                    width=seen.width,
                    height=seen.height,
                    thumb=found.thumb,
                    gt=gt,
                    pred=pred,
                )
            )
        if unread:
            _warn(f"{unread} {self.split} images could not be read for a thumbnail; listed without one")
        return fmt.Predictions(
            split=self.split,
            class_names=class_names,
            images=sorted(images, key=lambda i: i.image),
            split_digest=split_digest,
            task=str(getattr(validator.args, "task", "detect")),
        )

    def record(self, run: RunHandle, evaluation: Evaluation) -> int | None:
        """Store the predictions as ``predictions.json.gz`` attached to ``evaluation``, the
        thumbnails as its blobs; the number of images recorded, None when none were (not
        attached, over the cap, or a fault: one warning)."""
        if self._validator is None:
            return None
        try:
            if self._fault is not None:
                raise RuntimeError(self._fault)
            found = self.predictions(evaluation.split_digest)
            files = {self._thumbs[s.im_file].result().thumb_file for s in self._seen}
            thumbs = sorted(f for f in files if f is not None)
            with tempfile.TemporaryDirectory(prefix="trialbook-predictions-") as work:
                path = Path(work) / fmt.ARTIFACT_NAME
                path.write_bytes(fmt.encode(found))
                run.log_artifact(path, fmt.ARTIFACT_NAME, evaluation=evaluation, blobs=thumbs)
            return len(found.images)
        except Exception as exc:
            self._failed(exc)
            return None
        finally:
            self.close()

    def close(self) -> None:
        """Unwrap the validator and stop the thumbnail workers (what was seen is dropped)."""
        self.detach()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._seen, self._thumbs = [], {}


def _relative(im_file: str, root: Path | None) -> str:
    """The image's path below the dataset root (POSIX), else as Ultralytics names it."""
    if root is not None:
        try:
            return Path(im_file).resolve().relative_to(root).as_posix()
        except ValueError:
            pass
    return Path(im_file).as_posix()
