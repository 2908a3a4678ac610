"""Per-image predictions of one evaluation: the file format, checked once on each side.

One evaluation's predictions are one artifact, ``predictions.json.gz``, attached to that
evaluation (``Artifact.evaluation_id``), so a sealed (test) evaluation's predictions are
sealed with it. Gzipped JSON::

    {"format": "trialbook.predictions/1",
     "split": "val", "split_digest": "...", "task": "detect",
     "class_names": ["pallet", "forklift"],
     "conf_floor": 0.01,
     "images": [
        {"image": "images/val/0001.jpg",      # the file's path below the dataset root
         "hash": "<blake3 hex of the image file>",
         "width": 640, "height": 480,         # the original image, pixels
         "thumb": "<blob digest of the thumbnail JPEG>" | null,
         "gt":   [[cls, x1, y1, x2, y2], ...],          # boxes as fractions of width/height
         "pred": [[cls, conf, x1, y1, x2, y2], ...]}    # conf >= conf_floor, best first
     ]}

Boxes are ``xyxy`` fractions of the original image (0..1), so they draw over a thumbnail
of any size. Classes are indices into ``class_names``. Thumbnails are blobs of the book's
blob store (content-addressed: the same image gives the same thumbnail, stored once).

Nothing here reads files: ``encode``/``decode`` turn a ``Predictions`` into bytes and back.
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from trialbook.errors import InvalidInput

FORMAT = "trialbook.predictions/1"
ARTIFACT_NAME = "predictions.json.gz"
CONF_FLOOR = 0.01  # predictions below this confidence are not kept
MAX_IMAGES = 20_000  # default cap (TRIALBOOK_PREDICTIONS_MAX_IMAGES)
THUMB_SIZE = 256  # longest side of a thumbnail, pixels

Box = tuple[int, float, float, float, float]  # cls, x1, y1, x2, y2
Pred = tuple[int, float, float, float, float, float]  # cls, conf, x1, y1, x2, y2


@dataclass(frozen=True)
class ImagePredictions:
    image: str
    hash: str
    width: int
    height: int
    thumb: str | None = None
    gt: list[Box] = field(default_factory=list)
    pred: list[Pred] = field(default_factory=list)


@dataclass(frozen=True)
class Predictions:
    split: str
    class_names: list[str]
    images: list[ImagePredictions]
    split_digest: str | None = None
    task: str = "detect"
    conf_floor: float = CONF_FLOOR

    @property
    def thumbs(self) -> list[str]:
        """The distinct thumbnail digests the images refer to."""
        return sorted({i.thumb for i in self.images if i.thumb})


def _r(v: float) -> float:
    """``v`` to 4 places, half up by arithmetic (about twice as fast as ``round``, which
    formats each float; the same numbers but for exact ties)."""
    return math.floor(float(v) * 1e4 + 0.5) / 1e4


def _image_json(i: ImagePredictions) -> dict[str, Any]:
    return {
        "image": i.image,
        "hash": i.hash,
        "width": i.width,
        "height": i.height,
        "thumb": i.thumb,
        "gt": [[int(c), _r(a), _r(b), _r(d), _r(e)] for c, a, b, d, e in i.gt],
        "pred": [[int(c), _r(s), _r(a), _r(b), _r(d), _r(e)] for c, s, a, b, d, e in i.pred],
    }


def encode(p: Predictions) -> bytes:
    """The gzipped JSON of ``p`` (coordinates and confidences rounded to 4 places)."""
    body = {
        "format": FORMAT,
        "split": p.split,
        "split_digest": p.split_digest,
        "task": p.task,
        "class_names": list(p.class_names),
        "conf_floor": p.conf_floor,
        "images": [_image_json(i) for i in p.images],
    }
    return gzip.compress(json.dumps(body, separators=(",", ":")).encode(), compresslevel=6, mtime=0)


def _numbers(row: Any, n: int, where: str) -> list[float]:
    if not isinstance(row, list) or len(row) != n:
        raise InvalidInput(f"{where}: expected a list of {n} numbers, got {row!r:.80}")
    out = []
    for v in row:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise InvalidInput(f"{where}: {v!r} is not a finite number")
        out.append(float(v))
    return out


def _class(v: float, n_classes: int, where: str) -> int:
    if v != int(v) or not 0 <= int(v) < n_classes:
        raise InvalidInput(f"{where}: class {v!r} is not an index into the {n_classes} class names")
    return int(v)


def decode(data: bytes, *, where: str = ARTIFACT_NAME) -> Predictions:
    """The ``Predictions`` in ``data``; ``InvalidInput`` naming ``where`` and the image
    when it is not this format."""
    try:
        body = json.loads(gzip.decompress(data))
    except (OSError, EOFError, ValueError) as exc:
        raise InvalidInput(f"{where} is not gzipped JSON ({exc})") from exc
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise InvalidInput(f"{where} is not a {FORMAT} file")
    names = body.get("class_names")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise InvalidInput(f"{where}: class_names must be a list of names")
    images: list[ImagePredictions] = []
    for k, raw in enumerate(body.get("images") or []):
        at = f"{where}, image {k}"
        if not isinstance(raw, dict) or not isinstance(raw.get("image"), str):
            raise InvalidInput(f"{at}: not an image entry")
        at = f"{where}, image {raw['image']!r}"
        gt: list[Box] = []
        for row in raw.get("gt") or []:
            c, *xy = _numbers(row, 5, at)
            gt.append((_class(c, len(names), at), *xy))  # type: ignore[arg-type]
        pred: list[Pred] = []
        for row in raw.get("pred") or []:
            c, s, *xy = _numbers(row, 6, at)
            pred.append((_class(c, len(names), at), s, *xy))  # type: ignore[arg-type]
        images.append(
            ImagePredictions(
                image=raw["image"],
                hash=str(raw.get("hash") or ""),
                width=int(raw.get("width") or 0),
                height=int(raw.get("height") or 0),
                thumb=raw.get("thumb") or None,
                gt=gt,
                pred=pred,
            )
        )
    return Predictions(
        split=str(body.get("split") or ""),
        class_names=list(names),
        images=images,
        split_digest=body.get("split_digest") or None,
        task=str(body.get("task") or "detect"),
        conf_floor=float(body.get("conf_floor") or 0.0),
    )


def sort_preds(preds: Sequence[Pred]) -> list[Pred]:
    """Predictions best first (by confidence), as they are stored."""
    return sorted(preds, key=lambda p: -p[1])
