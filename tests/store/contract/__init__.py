"""The store contract: one suite, one file per aggregate of ``store.base``, run on every
home by the ``store`` fixture of ``tests/store/conftest.py``. Builders in ``support.runs``."""
