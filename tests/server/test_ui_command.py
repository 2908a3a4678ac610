"""``trialbook ui`` as a user runs it, and the templates and static files in the wheel."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import httpx
from click.testing import CliRunner

from trialbook.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]
SERVER = ROOT / "src" / "trialbook" / "server"


def test_ui_command_serves_the_book_on_loopback(tmp_path: Path) -> None:
    import trialbook as tb

    book = tb.init(tmp_path)
    with book.start("pallets", "v1_base", allow_unpinned=True) as run:
        run.log({"metrics/mAP50-95(B)": 0.5}, epoch=0)
    book.close()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = Path(sys.executable).with_name("trialbook")
    proc = subprocess.Popen(
        [str(exe), "ui", "--port", str(port), "--uri", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 30
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/api/v1/projects/pallets/runs", timeout=2)
                break
            except httpx.HTTPError:
                assert proc.poll() is None and time.time() < deadline, proc.communicate()
                time.sleep(0.1)
        assert r.status_code == 200 and r.json()["runs"][0]["name"] == "v1_base"
        assert "v1_base" in httpx.get(f"http://127.0.0.1:{port}/projects/pallets").text
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=15)
    assert f"http://127.0.0.1:{port}/" in err


def test_ui_help() -> None:
    result = CliRunner().invoke(cli, ["ui", "--help"])
    assert result.exit_code == 0
    assert "--host" in result.output and "127.0.0.1" in result.output and "5210" in result.output


def test_the_wheel_carries_templates_and_static_files(tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(ROOT / "src", src, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "-w",
            str(tmp_path / "dist"),
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
    )
    wheel = next((tmp_path / "dist").glob("trialbook-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        f"trialbook/server/{p.relative_to(SERVER).as_posix()}"
        for folder in ("templates", "static")
        for p in (SERVER / folder).iterdir()
        if p.is_file()
    }
    assert expected and expected <= names, sorted(expected - names)
