#!/usr/bin/env python3
"""Run review UI benchmark: the compare page and its "Where it got worse" section at
5,000 val images, over real HTTP (issue 14: the page with the image section loads in
under 1 s).

    .venv/bin/python bench/review_ui.py                 # 5,000 images, median of 5
    .venv/bin/python bench/review_ui.py --images 500 --reps 9 --fresh

The book is the test suite's review book (``tests/support/review_book.py``) at
``--images`` val images: two runs (``v1_base`` and ``v2_candidate``) with one
``predictions.json.gz`` each (ground truth and every prediction of every image), the
candidate worse on a fifth of them, and 50 distinct thumbnails shared by the images
(their count does not change what is timed). It is built once under
``bench/.work/review-ui-<images>/`` and reused (``--fresh`` rebuilds it).

trialbook's server runs as a subprocess under uvicorn on a free loopback port
(``trialbook.server.app:create_app_from_uri``, as ``bench/ui.py`` starts it). Timed from
this process with httpx, each the median of ``--reps`` calls after two warm-up calls:

* the compare page (HTML) of the two runs, which says whether the review can be made
  and lays out the section, without reading any predictions;
* the review JSON (``GET /api/v1/projects/P/review``) that the page's script loads: both
  predictions files read, every image matched, the 24 worst with their boxes;
* the two together, what a browser waits for before it draws the first thumbnails;
* the run page (HTML) and its most-wrong images (``GET .../runs/R/review``);
* one thumbnail (``GET /api/v1/projects/P/thumbs/DIGEST``);
* with Debian's chromium (``/usr/bin/chromium``, Playwright; ``--no-browser`` skips it):
  the compare page opened until its 24 worst images are drawn, every thumbnail loaded.

The result is a markdown table on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(0, str(BENCH_DIR.parent / "tests"))

import ui  # noqa: E402  (bench/ui.py: starting trialbook's server, timing calls)

WORK_ROOT = BENCH_DIR / ".work"
TARGET_S = 1.0
CHROMIUM = "/usr/bin/chromium"
BROWSER = "compare page in chromium, 24 worst images drawn"
TIMED = ("compare page + review JSON", BROWSER)  # what the target is about
PAGE = 24  # the images the page asks for first
THUMBS = 50


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def build(folder: Path, images: int) -> Path:
    """The review book of ``images`` val images in ``folder`` (made once)."""
    done = folder / "built"
    if done.exists():
        log(f"reusing {folder}")
        return folder / "book"
    shutil.rmtree(folder, ignore_errors=True)
    from support.review_book import make_review_book

    log(f"building a review book of {images:,} val images in {folder} ...")
    t0 = time.perf_counter()
    world = make_review_book(
        folder, images=images, worse=images // 5, better=images // 10, distinct_thumbs=THUMBS
    )
    world.book.close()
    done.write_text("ok\n")
    log(f"built in {time.perf_counter() - t0:.1f} s")
    return folder / "book"


def browser_load(url: str, reps: int) -> tuple[float, list[float]]:
    """Seconds from opening ``url`` in headless chromium to the first page of worst images
    drawn with every thumbnail loaded (the median of ``reps`` loads after two)."""
    from playwright.sync_api import sync_playwright

    shots = "#review-grid figure.shot img"
    drawn = (
        f"() => {{ const i = [...document.querySelectorAll({shots!r})]; "
        f"return i.length === {PAGE} && i.every(x => x.complete && x.naturalWidth > 0); }}"
    )
    times = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": 1440, "height": 4000})  # every thumbnail in view
        for k in range(reps + 2):
            t0 = time.perf_counter()
            page.goto(url)
            page.wait_for_function(drawn, timeout=30_000)
            if k >= 2:
                times.append(time.perf_counter() - t0)
        browser.close()
    return statistics.median(times), times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=5000, help="val images per run (default 5,000)")
    parser.add_argument("--reps", type=int, default=5, help="timed calls per measure (default 5)")
    parser.add_argument("--fresh", action="store_true", help="rebuild the book")
    parser.add_argument("--no-browser", action="store_true", help="skip the page load in chromium")
    args = parser.parse_args(argv)

    import httpx

    from support.review_book import BASELINE, CANDIDATE, PROJECT

    folder = WORK_ROOT / f"review-ui-{args.images}"
    if args.fresh:
        shutil.rmtree(folder, ignore_errors=True)
    book = build(folder, args.images)
    port = ui.free_port()
    base = f"http://127.0.0.1:{port}"
    proc = ui.start_trialbook(book, port)
    try:
        ui.wait_http(f"{base}/api/v1/projects", proc, "trialbook server")
        client = httpx.Client(base_url=base, timeout=60.0)
        api = f"/api/v1/projects/{PROJECT}"
        compare = f"/projects/{PROJECT}/compare?runs={CANDIDATE}&runs={BASELINE}&baseline={BASELINE}"
        review = f"{api}/review?candidate={CANDIDATE}&baseline={BASELINE}&split=val&limit={PAGE}"

        def get(url: str) -> httpx.Response:
            r = client.get(url)
            r.raise_for_status()
            return r

        answer = get(review).json()
        assert answer["image_count"] == args.images, answer["image_count"]
        assert len(answer["images"]) == PAGE and answer["images"][0]["delta"] > 0
        assert 'data-ready="true"' in get(compare).text
        thumb = answer["images"][0]["thumb"]
        measures = {
            "compare page (HTML)": lambda: get(compare),
            f"review JSON (24 worst of {args.images:,}, with boxes)": lambda: get(review),
            "compare page + review JSON": lambda: (get(compare), get(review)),
            "run page (HTML)": lambda: get(f"/projects/{PROJECT}/runs/{CANDIDATE}"),
            "run's most-wrong images JSON": lambda: get(f"{api}/runs/{CANDIDATE}/review?limit={PAGE}"),
            "one thumbnail": lambda: get(f"{api}/thumbs/{thumb}"),
        }
        rows = []
        for name, call in measures.items():
            log(f"timing {name} ...")
            median, times, response = ui.time_call(call, args.reps)
            size = sum(len(r.content) for r in (response if isinstance(response, tuple) else (response,)))
            rows.append((name, median, min(times), max(times), size))
        client.close()
        if Path(CHROMIUM).exists() and not args.no_browser:
            log("timing the page in chromium ...")
            median, times = browser_load(base + compare, args.reps)
            rows.append((BROWSER, median, min(times), max(times), 0))
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    from trialbook import __version__

    print(
        f"\n### Review UI at {args.images:,} val images (trialbook {__version__}, Python "
        f"{platform.python_version()}, {platform.machine()}, median of {args.reps} over loopback HTTP)\n"
    )
    print("| request | median | min | max | bytes | target | met |")
    print("|---|---:|---:|---:|---:|---|:-:|")
    for name, median, low, high, size in rows:
        timed = name in TIMED
        target = f"< {TARGET_S:g} s" if timed else ""
        met = ("✓" if median < TARGET_S else "✗") if timed else ""
        cells = [
            name,
            ui.fmt_ms(median),
            ui.fmt_ms(low),
            ui.fmt_ms(high),
            f"{size:,}" if size else "",
            target,
            met,
        ]
        print("| " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
