"""Builders and helpers shared by the tests, importable as ``support`` from any test
(``pythonpath = ["tests"]`` in pyproject.toml). Fixtures are in the conftest.py files.

- ``support.runs``: books filled with hand-made runs (``add_run``, ``make_run``,
  ``set_protocol``, ``make_sealed_book``) and the digests and numbers they use.
- ``support.cli``: the ``trialbook`` command in process (``make_cli``, ``invoke``,
  ``as_json``, ``cli_json``).
- ``support.http``: the web app in process (``Api``) and served (``ServerThread``).
- ``support.datasets``: small YOLO datasets on disk (images, labels, data.yaml).
- ``support.ultralytics_files``, ``support.mlflow_files``: what Ultralytics and MLflow
  write, for the importers.
- ``support.extras``: skip (or, in CI, fail) without an optional extra.
"""
