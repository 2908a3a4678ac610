"""trialbook: an experiment tracker for computer-vision training, Ultralytics YOLO first.

    import trialbook as tb
    tb.init()
    with tb.start(project="pallets", name="v1_baseline", dataset="pallets:v1") as run:
        run.log({"metrics/mAP50-95(B)": 0.51}, epoch=0)

Importing trialbook never imports torch, ultralytics, fastapi, tensorboard, boto3 or pandas.
"""

from trialbook.api import Book, Run, TrackingWarning, init, locate, start
from trialbook.errors import (
    BookNotFound,
    Conflict,
    IntegrityError,
    InvalidInput,
    NotFound,
    SchemaOutOfDate,
    TrialbookError,
)

__version__ = "0.1.0"

__all__ = [
    "Book",
    "BookNotFound",
    "Conflict",
    "IntegrityError",
    "InvalidInput",
    "NotFound",
    "Run",
    "SchemaOutOfDate",
    "TrackingWarning",
    "TrialbookError",
    "__version__",
    "init",
    "locate",
    "start",
]
