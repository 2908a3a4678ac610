"""``import trialbook`` stays quick (issue 15; ``bench/startup.py`` times it): it imports
no framework and no module that only some calls need. What a run records about where it
ran (``_capture``: package versions from their metadata, the platform, git) is read when
a run starts, as before. Each check runs in a fresh interpreter of this venv."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

# Not imported by ``import trialbook``: the adapters' frameworks, and what only a run's
# start (importlib.metadata), a noise estimate (statistics), a remote book's outbox
# (sqlite3), an artifact (blake3) or a store's answer (the entities' dataclasses) needs.
NOT_AT_IMPORT = (
    "sqlalchemy",
    "httpx",
    "click",
    "rich",
    "yaml",
    "importlib.metadata",
    "statistics",
    "fastapi",
    "sqlite3",
    "blake3",
    "trialbook.core.entities",
    "psutil",
    "pynvml",
    "trialbook.system",
)


def fresh_python(code: str) -> object:
    """What ``code``, run by a new interpreter of this venv, prints as JSON."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_trialbook_imports_nothing_heavy() -> None:
    code = (
        "import json, sys\n"
        "before = set(sys.modules)\n"
        "import trialbook\n"
        f"print(json.dumps(sorted(m for m in {list(NOT_AT_IMPORT)!r} if m in set(sys.modules) - before)))\n"
    )
    assert fresh_python(code) == []


def test_the_check_sees_a_module_that_is_imported() -> None:
    """The check above can fail: a module that is imported is reported."""
    code = (
        "import json, sys\n"
        "before = set(sys.modules)\n"
        "import trialbook, statistics\n"
        "print(json.dumps(sorted(m for m in ['statistics'] if m in set(sys.modules) - before)))\n"
    )
    assert fresh_python(code) == ["statistics"]


def test_a_run_still_records_the_installed_package_versions(tmp_path: Path) -> None:
    """``tb.start`` reads the versions (and so imports importlib.metadata) at the run's
    start; the run records them as before: trialbook's own, and each watched package
    that is installed, at its installed version."""
    code = (
        "import json, sys\n"
        "import trialbook as tb\n"
        "read_at_import = 'importlib.metadata' in sys.modules\n"
        f"tb.init({str(tmp_path)!r}).close()\n"
        f"run = tb.start('p', 'v1_base', allow_unpinned=True, uri={str(tmp_path / '.trialbook')!r})\n"
        "run.finish()\n"
        f"book = tb.Book.open({str(tmp_path / '.trialbook')!r})\n"
        "env = book.run('v1_base', 'p').env\n"
        "print(json.dumps({'read_at_import': read_at_import, 'packages': env['packages'], "
        "'python': env['python'], 'hostname': env['hostname']}))\n"
    )
    found = fresh_python(code)
    assert isinstance(found, dict)
    assert found["read_at_import"] is False
    assert found["packages"]["trialbook"] == metadata.version("trialbook")
    from trialbook import _capture

    installed = {}
    for name in _capture.WATCHED_PACKAGES:
        try:
            installed[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    assert found["packages"] == installed == _capture.package_versions()
    assert found["python"] == ".".join(map(str, sys.version_info[:3])) and found["hostname"]
