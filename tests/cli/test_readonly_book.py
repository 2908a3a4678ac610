"""A book on a read-only folder: the read commands and the web UI work, every write is
refused with one line saying the book is read-only, and nothing is changed.

The commands run in a subprocess for which the folder really is read-only. As an
ordinary user a ``chmod`` does it; root is not bound by permissions, so as root the
subprocess first gives up the capabilities that let root ignore them (from its bounding
set, so that the ``exec`` cannot get them back: it stays root, and can still reach the
Python that lives in root's home) or, where that is not allowed, becomes ``nobody``.
Either way the test checks that the subprocess cannot write there before trusting it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from support.runs import add_run, set_protocol
from trialbook.api import Book

NOBODY = 65534
PR_CAPBSET_DROP = 24
# CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER: what lets root ignore permissions
ROOT_OVERRIDES = (1, 2, 3)


def _bound_by_permissions() -> None:
    """In the child, before ``exec``: from now on file permissions bind it."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if all(libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0 for cap in ROOT_OVERRIDES):
        return
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)


def _preexec() -> Callable[[], None] | None:
    return _bound_by_permissions if os.geteuid() == 0 else None


def _walk_chmod(top: Path, dirs: int, files: int) -> None:
    for folder, subdirs, names in os.walk(top):
        for name in names:
            os.chmod(os.path.join(folder, name), files)
        for name in subdirs:
            os.chmod(os.path.join(folder, name), dirs)
    os.chmod(top, dirs)


class ReadOnlyBook:
    """A filled book at ``folder`` (``root/proj/.trialbook``), read-only to ``run``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.folder = root / "proj" / ".trialbook"
        self.env = {
            **os.environ,
            "TRIALBOOK_USER": "tester",
            "TRIALBOOK_SPOOL": str(root / "spool"),
            "XDG_CACHE_HOME": str(root / "xdg"),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        self.env.pop("TRIALBOOK_URI", None)

    def python(self, code: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", code, *args],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.root,
            preexec_fn=_preexec(),
            timeout=120,
        )

    def tb(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``trialbook ARGS --uri FOLDER`` in the read-only subprocess."""
        code = "import sys; from trialbook.cli.main import main; sys.argv[0] = 'trialbook'; main()"
        return self.python(code, *args, "--uri", str(self.folder))

    def snapshot(self) -> dict[str, bytes]:
        return {
            str(p.relative_to(self.root)): (p.read_bytes() if p.is_file() else b"<dir>")
            for p in sorted(self.root.rglob("*"))
        }


@pytest.fixture
def ro_book(monkeypatch: pytest.MonkeyPatch) -> Iterator[ReadOnlyBook]:
    # outside pytest's root-only temporary folders, so that `nobody` could reach it too
    root = Path(tempfile.mkdtemp(prefix="trialbook-ro-"))
    root.chmod(0o755)
    monkeypatch.setenv("TRIALBOOK_USER", "tester")
    monkeypatch.delenv("TRIALBOOK_URI", raising=False)
    ro = ReadOnlyBook(root)
    for shared in ("spool", "xdg"):
        (root / shared).mkdir(mode=0o777)
        (root / shared).chmod(0o777)
    try:
        book = Book.open(str(ro.folder), create=True)
        set_protocol(book, latency_budget_ms=8.0, device="jetson-orin-nx")
        add_run(book, "v1_base", curve=[0.3, 0.5], val=0.5, per_class={"pallet": 0.4}, test=0.49)
        add_run(
            book,
            "v2_cand",
            parent="v1_base",
            curve=[0.3, 0.56],
            val=0.56,
            per_class={"pallet": 0.52},
            test=0.55,
            note={"hypothesis": "more data helps"},
        )
        from trialbook.demo.story import write_dataset
        from trialbook.services import datasets

        data = write_dataset(root / "data", {"train": 2, "val": 1, "test": 1}, seed=1)
        datasets.tag(book, "pallets", data, "v1")
        book.close()
        assert not (ro.folder / "book.db-wal").exists()  # closed cleanly: all in book.db
        _walk_chmod(root / "proj", 0o555, 0o444)
        yield ro
    finally:
        _walk_chmod(root / "proj", 0o755, 0o644)
        shutil.rmtree(root)


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0 and len(lines) == 1, result
    assert "Traceback" not in result.stderr
    return lines[0]


def test_the_folder_really_is_read_only_to_the_commands(ro_book: ReadOnlyBook) -> None:
    code = (
        "import sys\n"
        "try:\n    open(sys.argv[1], 'w')\nexcept PermissionError:\n    print('refused')\n"
        "else:\n    print('written')\n"
    )
    result = ro_book.python(code, str(ro_book.folder / "probe"))
    assert result.stdout.strip() == "refused", result


def test_read_commands_work_on_a_read_only_book(ro_book: ReadOnlyBook) -> None:
    before = ro_book.snapshot()

    def ok(*args: str) -> Any:
        result = ro_book.tb(*args)
        assert result.returncode == 0, result
        assert "Traceback" not in result.stderr
        return result.stdout

    table = json.loads(ok("runs", "--json"))
    assert sorted(r["name"] for r in table["runs"]) == ["v1_base", "v2_cand"]
    assert json.loads(ok("show", "v2_cand", "--json"))["name"] == "v2_cand"
    assert "v1_base" in ok("runs")
    listed = json.loads(ok("data", "list", "--json"))
    assert "pallets" in json.dumps(listed) and "v1" in json.dumps(listed)
    assert "v2_cand" in ok("export", "--project", "pallets")
    assert json.loads(ok("decisions", "--json"))["decisions"] == []
    assert "more data" in ok("notes", "search", "more", "data")
    assert ro_book.snapshot() == before


def test_writes_to_a_read_only_book_are_refused_in_one_line(ro_book: ReadOnlyBook) -> None:
    before = ro_book.snapshot()
    for args in (
        ("note", "v1_base", "--hypothesis", "x"),
        ("decide", "v2_cand", "--baseline", "v1_base"),
        ("project", "set", "pallets", "--noise", "0.01", "--reason", "r"),
    ):
        line = _one_line(ro_book.tb(*args))
        assert f"the book at {ro_book.folder} is read-only" in line, (args, line)
    assert ro_book.snapshot() == before


def test_compare_works_on_a_read_only_book(ro_book: ReadOnlyBook) -> None:
    result = ro_book.tb("compare", "v1_base", "v2_cand", "--json")
    assert result.returncode == 0, result


_UI = """
import json, sys
import anyio, httpx
from trialbook.api import Book
from trialbook.server.app import create_app

app = create_app(Book.open(sys.argv[1]))

async def go():
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        out = {}
        for url in sys.argv[2:]:
            r = await client.get(url)
            out[url] = [r.status_code, r.text[:20000]]
        r = await client.put("/api/v1/projects/pallets/runs/v1_base/note", json={"text": "x"})
        out["PUT note"] = [r.status_code, r.text]
        return out

print(json.dumps(anyio.run(go)))
"""


def test_the_ui_works_on_a_read_only_book(ro_book: ReadOnlyBook) -> None:
    pytest.importorskip("fastapi")
    before = ro_book.snapshot()
    pages = [
        "/",
        "/projects/pallets",
        "/projects/pallets/runs/v2_cand",
        "/projects/pallets/compare?runs=v1_base&runs=v2_cand",
        "/api/v1/projects/pallets/runs",
        "/api/v1/projects/pallets/compare?runs=v1_base&runs=v2_cand",
        "/api/v1/datasets",
    ]
    result = ro_book.python(_UI, str(ro_book.folder), *pages)
    assert result.returncode == 0, result
    out = json.loads(result.stdout)
    for url in pages:
        status, text = out[url]
        assert status == 200, (url, status, text[:500])
    assert "v2_cand" in out["/api/v1/projects/pallets/runs"][1]
    status, text = out["PUT note"]
    assert status >= 400 and "read-only" in text, (status, text)
    assert ro_book.snapshot() == before
