"""Benchmark of dataset fingerprinting (trialbook.datasets.build_manifest).

Generates a YOLO dataset of N images (random bytes) with label files, reads it once to
warm the page cache, then measures rounds of (best of ``--repeat`` reported):

1. raw: read + blake3 of every image and label file in one plain loop (the same read
   sizes as trialbook), the machine's single-thread limit;
2. cold build without a stat cache (hashes everything, parses every label);
3. cold tag: a build with a new, empty stat cache (the same, and fills the cache), as
   ``trialbook data tag`` does on a dataset it has not seen;
4. re-check: build_manifest again on the unchanged dataset with that cache.

It prints the three beside each other with the share of the raw rate, and where the cold
tag's time goes (``build_manifest(timings=...)``): listing the source, reading and hashing
(the part the raw loop does too), counting label rows, the stat cache, the manifest.

Targets (issue 15): cold tag at least 80 % of the raw rate at 20k x 50 KB, at least 70 %
with tiny files (under 10 KB: 100k x 2 KB); re-check of 100,000 images under 1 s.

    .venv/bin/python bench/fingerprint.py                       # 20,000 x 50 KB
    .venv/bin/python bench/fingerprint.py --files 100000 --size-kb 2
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import cast

from blake3 import blake3

from trialbook.datasets import build_manifest
from trialbook.datasets.hashing import CHUNK, default_threads

CLASSES = ["pallet", "forklift", "person", "box", "cart"]
HERE = Path(__file__).resolve().parent


def generate(root: Path, files: int, size: int, seed: int = 0) -> None:
    """``files`` images of about ``size`` bytes (90 % train, 10 % val, 5 % backgrounds)
    and a label file of 1-6 detect rows per non-background image."""
    rng = random.Random(seed)
    pool = rng.randbytes(8 << 20)
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
    (root / "data.yaml").write_text(
        "path: .\ntrain: images/train\nval: images/val\nnames:\n"
        + "".join(f"  {i}: {name}\n" for i, name in enumerate(CLASSES))
    )
    n_val = max(1, files // 10)
    for i in range(files):
        split = "val" if i < n_val else "train"
        stem = f"{i:07d}"
        start = rng.randrange(0, len(pool) - size)
        body = i.to_bytes(8, "little") + pool[start : start + size - 8]
        (root / "images" / split / f"{stem}.jpg").write_bytes(body)
        if rng.random() < 0.05:
            continue  # background image: no label file
        rows = [
            f"{rng.randrange(len(CLASSES))} {rng.random():.6f} {rng.random():.6f} "
            f"{rng.random() / 4:.6f} {rng.random() / 4:.6f}"
            for _ in range(rng.randint(1, 6))
        ]
        (root / "labels" / split / f"{stem}.txt").write_text("\n".join(rows) + "\n")


def dataset_files(root: Path) -> list[str]:
    out: list[str] = []
    for kind in ("images", "labels"):
        for split in ("train", "val"):
            folder = root / kind / split
            with os.scandir(folder) as it:
                out.extend(e.path for e in it)
    return sorted(out)


def raw_hash(paths: list[str]) -> tuple[float, int]:
    """Read and hash every file in one plain loop, reading as trialbook does (fstat, then
    the file's size in reads of at most CHUNK bytes); (seconds, bytes)."""
    total = 0
    t0 = time.perf_counter()
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            hasher = blake3()
            done = 0
            while done < size:
                block = os.read(fd, min(CHUNK, size - done))
                if not block:
                    break
                hasher.update(block)
                done += len(block)
            hasher.hexdigest()
            total += done
        finally:
            os.close(fd)
    return time.perf_counter() - t0, total


def measure(fn: Callable[[], tuple[float, object]]) -> tuple[float, object, float]:
    """(seconds, value, CPU seconds of this process) of one run of ``fn``, which returns
    (seconds, value)."""
    cpu = time.process_time()
    seconds, value = fn()
    return seconds, value, time.process_time() - cpu


def best_rounds(
    steps: dict[str, Callable[[], tuple[float, object]]], repeat: int
) -> dict[str, tuple[float, object, float]]:
    """The best of ``repeat`` rounds of each step, as ``measure`` gives it.

    One unmeasured pass of the first step makes sure the page cache holds the dataset;
    then rounds of every step in turn, so that a busy moment of the machine hits all of
    them alike."""
    first = next(iter(steps.values()))
    first()
    runs: dict[str, list[tuple[float, object, float]]] = {}
    for _ in range(repeat):
        for name, fn in steps.items():
            runs.setdefault(name, []).append(measure(fn))
    return {name: min(results, key=lambda r: r[0]) for name, results in runs.items()}


PHASES = ("source", "read+hash", "labels", "cache read", "stat", "cache write", "manifest")


def report(
    args: argparse.Namespace, size: int, files: int, best: dict[str, tuple[float, object, float]]
) -> None:
    """The tables, and whether the targets are met."""
    raw_s, total, raw_cpu = best["raw"]
    nocache_s, nocache_value, nocache_cpu = best["nocache"]
    cold_s, cold_value, cold_cpu = best["cold"]
    recheck_s, recheck_value, recheck_cpu = best["recheck"]
    digest_a, _ = cast("tuple[str, dict[str, float]]", nocache_value)
    digest_b, cold_phases = cast("tuple[str, dict[str, float]]", cold_value)
    digest_c, recheck_phases = cast("tuple[str, dict[str, float]]", recheck_value)
    assert isinstance(total, int)
    assert digest_a == digest_b == digest_c, "digests differ between builds"
    mb = total / 1e6
    raw_rate = mb / raw_s
    print()
    print(
        f"dataset: {args.files} images x {size} B + labels = {files} files, {mb:.1f} MB; "
        f"digest {str(digest_c)[:12]}"
    )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"threads {args.threads or default_threads()}, best of {args.repeat} rounds, "
        f"page cache warm, load average {load:.2f}"
    )
    print()
    print(f"{'measurement':<34}{'time s':>9}{'CPU s':>8}{'MB/s':>8}{'files/s':>10}{'vs raw':>8}")
    rows = [
        ("raw read+blake3, 1 thread", raw_s, raw_cpu),
        ("cold build, no stat cache", nocache_s, nocache_cpu),
        ("cold tag, filling stat cache", cold_s, cold_cpu),
        ("re-check, unchanged, stat cache", recheck_s, recheck_cpu),
    ]
    for label, seconds, cpu in rows:
        rate = mb / seconds
        print(
            f"{label:<34}{seconds:>9.3f}{cpu:>8.2f}{rate:>8.0f}"
            f"{files / seconds:>10.0f}{rate / raw_rate:>7.0%} "
        )
    print()
    print("where the time goes (seconds, share of the build; read+hash beside raw):")
    print(f"{'phase':<14}{'cold tag':>10}{'share':>8}{'re-check':>10}{'share':>8}")
    for phases, seconds in ((cold_phases, cold_s), (recheck_phases, recheck_s)):
        phases["other"] = seconds - sum(phases.get(p, 0.0) for p in PHASES)
    for phase in (*PHASES, "other"):
        c = cold_phases.get(phase, 0.0)
        r = recheck_phases.get(phase, 0.0)
        extra = f"  (raw {raw_s:.3f}: {raw_s / c:.0%} of it)" if phase == "read+hash" and c else ""
        print(f"{phase:<14}{c:>10.3f}{c / cold_s:>7.0%} {r:>10.3f}{r / recheck_s:>7.0%} {extra}")
    overhead = cold_s - cold_phases.get("read+hash", 0.0)
    per_file = overhead / files * 1e6
    print(f"{'not read+hash':<14}{overhead:>10.3f}{overhead / cold_s:>7.0%}  ({per_file:.1f} us a file)")
    print()
    share = (mb / cold_s) / raw_rate
    target = 0.7 if size < 10_000 else 0.8
    print(f"target cold tag >= {target:.0%} of raw: {'met' if share >= target else 'MISSED'} ({share:.0%})")
    if args.files >= 100_000:
        print(
            f"target re-check of {args.files} images ({files} files) < 1 s: "
            f"{'met' if recheck_s < 1 else 'MISSED'} ({recheck_s:.2f} s)"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=20_000, help="number of images")
    parser.add_argument("--size-kb", type=float, default=50.0, help="image size in KB")
    parser.add_argument("--work", type=Path, default=HERE / ".work", help="work folder")
    parser.add_argument("--threads", type=int, default=None, help="hashing threads")
    parser.add_argument(
        "--repeat", type=int, default=3, help="rounds of measurements (the best of each is reported)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the generated data")
    args = parser.parse_args(argv)

    size = int(args.size_kb * 1000)
    root = args.work / f"ds-{args.files}x{args.size_kb:g}kb"
    cache = args.work / f"cache-{args.files}x{args.size_kb:g}kb.sqlite"
    data_yaml = root / "data.yaml"
    if not data_yaml.exists():
        print(f"generating {args.files} images of {size} bytes in {root} ...", flush=True)
        t0 = time.perf_counter()
        generate(root, args.files, size)
        print(f"  generated in {time.perf_counter() - t0:.1f} s", flush=True)
    try:
        paths = dataset_files(root)

        def raw() -> tuple[float, int]:
            return raw_hash(paths)

        def build(cache_path: Path | None) -> tuple[float, tuple[str, dict[str, float]]]:
            phases: dict[str, float] = {}
            t0 = time.perf_counter()
            m = build_manifest(
                data_yaml, cache_path=cache_path, progress=False, threads=args.threads, timings=phases
            )
            return time.perf_counter() - t0, (m.digest, phases)

        def nocache() -> tuple[float, tuple[str, dict[str, float]]]:
            return build(None)

        def cold() -> tuple[float, tuple[str, dict[str, float]]]:
            for suffix in ("", "-wal", "-shm"):
                Path(str(cache) + suffix).unlink(missing_ok=True)
            return build(cache)

        def recheck() -> tuple[float, tuple[str, dict[str, float]]]:
            return build(cache)

        best = best_rounds({"raw": raw, "nocache": nocache, "cold": cold, "recheck": recheck}, args.repeat)
        report(args, size, len(paths), best)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
            for suffix in ("", "-wal", "-shm"):
                Path(str(cache) + suffix).unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
