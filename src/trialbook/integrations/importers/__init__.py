"""Importers: runs recorded elsewhere, brought into a book with one command.

* ``ultralytics_runs.import_ultralytics``: Ultralytics run folders (``results.csv`` and
  ``args.yaml``; YOLOv5 ``opt.yaml``), every task;
* ``mlflow_store.import_mlflow``: an MLflow file store (``mlruns/``) or SQLite database;
* ``tensorboard_events.import_tensorboard``: scalar event files (needs the ``tensorboard``
  extra).

Every importer parses a source completely before writing anything, so a source that
cannot be read leaves nothing behind; it is reported with its path (and line) and the
other sources go on. A point a book cannot hold (an epoch or step beyond
``core.metrics.MAX_EPOCH``, or below 0) is left out and reported with its path and line
(or step), and the rest of its run is imported. Each run is written in one transaction:
a write that fails leaves no run behind. Importing the same source twice changes nothing: each imported run
carries an ``import.source`` tag, and a source already in the book is skipped.
``common.ImportReport`` says what was imported, skipped and what failed.
"""

from trialbook.integrations.importers.common import ImportedRun, ImportProblem, ImportReport, SkippedRun

__all__ = ["ImportProblem", "ImportReport", "ImportedRun", "SkippedRun"]
