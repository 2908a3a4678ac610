#!/usr/bin/env python3
"""Review benchmark: ``trialbook review`` of two runs over 5,000 val images (issue 14
target: under 2 s).

    .venv/bin/python bench/review.py                 # 5,000 images, ~8 boxes, ~20 predictions each
    .venv/bin/python bench/review.py --images 20000 --reps 5 --keep

The workload: a temporary SQLite book with two runs of one project, each with a val
evaluation and its ``predictions.json.gz`` (``core.predictions.encode``) recorded through
the public API (``run.log_eval``, ``run.log_artifact(path, evaluation=ev)``). Both files
cover the same ``--images`` images (same names, hashes and split digest); each image has
``--boxes`` ground-truth boxes on average (Poisson-ish, 5 classes) and about ``--preds``
predictions above the 0.01 confidence floor: most boxes found (jittered, confidences 0.3 to
0.95), a few duplicates, and low-confidence clutter. Seeded: the same arguments make the
same book. No thumbnails (the review never reads them).

Timed, each the median of ``--reps`` (after one warm-up for the in-process figures):

* **service**: ``services.review.review(book, cand, base)`` in this process (the store
  queries, reading and decoding both gzip files, matching every box, sorting), with the
  decoding and the matching alone beside it (with the garbage collector paused, as the
  service pauses it);
* **CLI**: the whole ``trialbook review CAND --baseline BASE --json --uri BOOK`` process
  (interpreter start, imports, the review, printing the JSON of every image).

The result is a markdown table on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from trialbook.core.predictions import Pred

TARGET_S = 2.0
CLASSES = ["pallet", "forklift", "person", "box", "cart"]


XYXY = tuple[float, float, float, float]


def _box(rng: random.Random) -> XYXY:
    w, h = rng.uniform(0.03, 0.3), rng.uniform(0.03, 0.3)
    x, y = rng.uniform(0, 1 - w), rng.uniform(0, 1 - h)
    return x, y, x + w, y + h


def _jitter(rng: random.Random, b: XYXY, spread: float) -> XYXY:
    x1, y1, x2, y2 = b
    w, h = x2 - x1, y2 - y1
    dx, dy = rng.gauss(0, spread) * w, rng.gauss(0, spread) * h
    return (
        min(1.0, max(0.0, x1 + dx)),
        min(1.0, max(0.0, y1 + dy)),
        min(1.0, max(0.0, x2 + dx + rng.gauss(0, spread) * w)),
        min(1.0, max(0.0, y2 + dy + rng.gauss(0, spread) * h)),
    )


def _predict(r: random.Random, gt: list[tuple[int, XYXY]], recall: float, preds: float) -> list[Pred]:
    """One run's predictions on one image: most boxes found, a few doubled, some poor or
    of the wrong class, and low-confidence clutter up to about ``preds`` in all."""
    out: list[Pred] = []
    for c, b in gt:
        if r.random() < recall:
            out.append((c, r.uniform(0.3, 0.95), *_jitter(r, b, 0.08)))
            if r.random() < 0.1:  # a duplicate
                out.append((c, r.uniform(0.2, 0.6), *_jitter(r, b, 0.12)))
        elif r.random() < 0.5:  # a poor box, or the wrong class
            cls = c if r.random() < 0.5 else r.randrange(len(CLASSES))
            out.append((cls, r.uniform(0.1, 0.5), *_jitter(r, b, 0.4)))
    while len(out) < preds * r.uniform(0.7, 1.3):  # clutter, mostly under the review's 0.25
        out.append((r.randrange(len(CLASSES)), r.uniform(0.01, 0.3) ** 1.5 + 0.01, *_box(r)))
    return out


def build(folder: Path, images: int, boxes: float, preds: float, seed: int) -> tuple[str, str, str]:
    """The book (its URI) and the names of the candidate and the baseline run."""
    from trialbook.api import Book
    from trialbook.core.predictions import ImagePredictions, Predictions, encode, sort_preds

    rng = random.Random(seed)
    scene = []
    for k in range(images):
        n = max(0, round(rng.gauss(boxes, 2.5)))
        gt = [(rng.randrange(len(CLASSES)), _box(rng)) for _ in range(n)]
        scene.append((f"images/val/{k:05d}.jpg", f"{rng.getrandbits(256):064x}", gt))
    book = Book.open(str(folder / "book"), create=True)
    names = ("v2_candidate", "v1_baseline")
    for name, run_seed, recall in ((names[0], seed + 1, 0.82), (names[1], seed + 2, 0.8)):
        r = random.Random(run_seed)
        files = [
            ImagePredictions(
                image=image,
                hash=digest,
                width=1280,
                height=960,
                gt=[(c, *b) for c, b in gt],
                pred=sort_preds(_predict(r, gt, recall, preds)),
            )
            for image, digest, gt in scene
        ]
        p = Predictions(split="val", class_names=CLASSES, images=files, split_digest="a" * 64)
        path = folder / f"{name}.predictions.json.gz"
        path.write_bytes(encode(p))  # coordinates and confidences rounded to 4 places
        with book.start(project="bench_review", name=name, allow_unpinned=True) as run:
            ev = run.log_eval("val", {"metrics/mAP50-95(B)": 0.5})
            run.log_artifact(path, "predictions.json.gz", evaluation=ev)
        print(f"  {name}: {path.stat().st_size / 1e6:.1f} MB predictions", file=sys.stderr)
    uri = book.uri
    book.close()
    return uri, names[0], names[1]


def median_time(fn: Callable[[], object], reps: int, *, warmup: int = 1, paused: bool = False) -> float:
    """The median wall time of ``fn``; ``paused``: with the garbage collector off during
    each call, as the review service has it."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        if paused:
            gc.disable()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
        gc.enable()
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--boxes", type=float, default=8.0, help="ground-truth boxes per image, on average")
    ap.add_argument("--preds", type=float, default=20.0, help="predictions per image, on average")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--keep", action="store_true", help="keep the book (its folder is printed)")
    args = ap.parse_args()

    from trialbook.api import Book
    from trialbook.core.matching import match_image
    from trialbook.services.review import load_predictions, review

    folder = Path(tempfile.mkdtemp(prefix="trialbook-bench-review-"))
    os.environ.setdefault("TRIALBOOK_USER", "bench")
    try:
        print(f"building {args.images:,} images x 2 runs in {folder}", file=sys.stderr)
        t = time.perf_counter()
        uri, cand, base = build(folder, args.images, args.boxes, args.preds, args.seed)
        print(f"  built in {time.perf_counter() - t:.1f} s", file=sys.stderr)

        book = Book.open(uri)
        result = review(book, cand, base)
        boxes = sum(len(i.gt) for i in result.images)
        n_preds = {
            name: sum(len(i.pred) for i in load_predictions(book, book.run(name), "val")[1].images)
            for name in (cand, base)
        }
        kept = sum(len(i.candidate_pred) + len(i.baseline_pred) for i in result.images)

        service = median_time(lambda: review(book, cand, base), args.reps)
        decoded = [load_predictions(book, book.run(n), "val")[1] for n in (cand, base)]
        decode = median_time(
            lambda: [load_predictions(book, book.run(n), "val") for n in (cand, base)], args.reps, paused=True
        )

        def match_all() -> None:
            for p in decoded:
                for i in p.images:
                    match_image(i.gt, i.pred, iou_min=0.5, conf=0.25)

        matching = median_time(match_all, args.reps, paused=True)
        book.close()

        exe = shutil.which("trialbook", path=str(Path(sys.executable).parent)) or "trialbook"
        cmd = [exe, "review", cand, "--baseline", base, "--json", "--uri", uri]

        def cli() -> None:
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)

        whole = median_time(cli, args.reps, warmup=0)
    finally:
        if args.keep:
            print(f"kept {folder}", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)

    print(
        f"\n{args.images:,} images, {boxes:,} ground-truth boxes, {n_preds[cand]:,} + {n_preds[base]:,} "
        f"predictions stored ({kept:,} at conf >= 0.25); median of {args.reps}; "
        f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs\n"
    )
    print("| measure | time | target | met |")
    print("|---|---:|---|:-:|")
    print(
        f"| `review` service (2 runs: load, decode, match, sort) | {service:.3f} s | < {TARGET_S:g} s | "
        f"{'✓' if service < TARGET_S else '✗'} |"
    )
    print(f"| of which reading and decoding both files | {decode:.3f} s |  |  |")
    print(f"| of which matching every box of both runs | {matching:.3f} s |  |  |")
    print(
        f"| `trialbook review --json` (whole process) | {whole:.3f} s | < {TARGET_S:g} s | "
        f"{'✓' if whole < TARGET_S else '✗'} |"
    )


if __name__ == "__main__":
    main()
