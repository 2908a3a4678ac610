"""The run review over HTTP (in process): artifacts served with their real content types,
thumbnails by digest, the review's JSON routes, and pages that say what to do when a run
has no predictions. The book is made with the real API (``support.review_book``)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.http import Api
from support.review_book import (
    BASELINE,
    CANDIDATE,
    EVAL_PLOTS,
    NO_PREDICTIONS,
    OTHER_SPLIT,
    PROJECT,
    TEST_PLOT,
    ReviewWorld,
    make_review_book,
)
from trialbook.core.predictions import ARTIFACT_NAME
from trialbook.server.app import API_PREFIX, create_app

API = f"{API_PREFIX}/projects/{PROJECT}"
REVIEW = f"{API}/review?candidate={CANDIDATE}&baseline={BASELINE}"
COMPARE = f"/projects/{PROJECT}/compare?runs={CANDIDATE}&runs={BASELINE}&baseline={BASELINE}"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReviewWorld]:
    made = make_review_book(tmp_path_factory.mktemp("review"))
    yield made
    made.book.close()


@pytest.fixture(scope="module")
def api(world: ReviewWorld) -> Api:
    return Api(create_app(world.book))


def artifacts(api: Api, run: str) -> dict[str, str]:
    """The run's artifacts, name -> digest."""
    return {a["name"]: a["digest"] for a in api.json(f"{API}/runs/{run}")["artifacts"]}


def island(html: str, name: str) -> Any:
    found = re.search(rf'<script type="application/json" id="{name}">(.*?)</script>', html, re.S)
    assert found, name
    return json.loads(found.group(1))


# --------------------------------------------------------------------------- content types
def test_artifacts_are_served_with_their_real_content_types(tmp_path: Path) -> None:
    world = make_review_book(tmp_path / "types", images=2, extras=False)
    api = Api(create_app(world.book))
    handle = world.book.attach(world.book.run(BASELINE, PROJECT))
    files = {
        "labels.jpg": b"\xff\xd8\xff\xe0 a jpeg",
        "results.csv": b"epoch,map\n0,0.1\n",
        "args.yaml": b"imgsz: 640\n",
        "notes.txt": b"plain text",
        "page.html": b"<script>alert(1)</script>",
        "drawing.svg": b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        "best.pt": b"weights",
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
        handle.log_artifact(tmp_path / name)
    expected = {
        "results.png": ("image/png", "inline"),
        "confusion_matrix.png": ("image/png", "inline"),
        "labels.jpg": ("image/jpeg", "inline"),
        "results.csv": ("text/csv; charset=utf-8", "inline"),
        "args.yaml": ("text/plain; charset=utf-8", "inline"),
        "notes.txt": ("text/plain; charset=utf-8", "inline"),
        "page.html": ("application/octet-stream", "attachment"),
        "drawing.svg": ("application/octet-stream", "attachment"),
        "best.pt": ("application/octet-stream", "attachment"),
        ARTIFACT_NAME: ("application/octet-stream", "attachment"),
    }
    found = artifacts(api, BASELINE)
    for name, (media, disposition) in expected.items():
        r = api.get(f"{API}/runs/{BASELINE}/artifacts/{found[name]}")
        assert r.status_code == 200, (name, r.text)
        assert r.headers["content-type"] == media, name
        assert r.headers["content-disposition"] == f'{disposition}; filename="{name}"', name
        assert r.headers["x-content-type-options"] == "nosniff", name
        assert "immutable" in r.headers["cache-control"], name
        if name in files:
            assert r.content == files[name]
    world.book.close()


# --------------------------------------------------------------------------- thumbnails
def test_thumbnails_are_jpeg_by_digest(world: ReviewWorld, api: Api) -> None:
    digest, path = next(iter(world.thumbs.items()))
    r = api.get(f"{API}/thumbs/{digest}")
    assert r.status_code == 200 and r.content == path.read_bytes()
    assert r.headers["content-type"] == "image/jpeg"
    assert r.headers["cache-control"] == "private, max-age=31536000, immutable"
    assert r.headers["x-content-type-options"] == "nosniff"


def test_a_thumbnail_that_is_not_there_or_not_a_digest(api: Api) -> None:
    unknown = api.get(f"{API}/thumbs/{'0' * 64}")
    assert unknown.status_code == 404 and "0" * 12 in unknown.json()["detail"]
    for bad in ("xyz", "A" * 64, "0" * 63, "..%2F..%2Fetc%2Fpasswd"):
        r = api.get(f"{API}/thumbs/{bad}")
        assert r.status_code in (400, 404), bad
        assert r.headers["content-type"].startswith("application/json"), bad
    assert api.get(f"{API}/thumbs/{'A' * 64}").status_code == 400
    # a blob of the book that is no thumbnail (the predictions file) is not served as one
    predictions = artifacts(api, BASELINE)[ARTIFACT_NAME]
    r = api.get(f"{API}/thumbs/{predictions}")
    assert r.status_code == 404 and "not a thumbnail" in r.json()["detail"]


# --------------------------------------------------------------------------- review JSON
def test_review_json(world: ReviewWorld, api: Api) -> None:
    data = api.json(f"{REVIEW}&limit=5")
    assert {"candidate", "baseline", "split", "iou", "conf", "images", "classes"} <= data.keys()
    assert (data["candidate"], data["baseline"], data["split"]) == (CANDIDATE, BASELINE, "val")
    assert (data["iou"], data["conf"], data["offset"]) == (0.5, 0.25, 0)
    assert data["image_count"] == 12 and data["worse"] == 4 and data["better"] == 2
    assert len(data["images"]) == 5
    first = data["images"][0]
    keys = {"image", "thumb", "width", "height", "candidate", "baseline", "delta", "gt"}
    assert keys | {"candidate_pred", "baseline_pred"} <= first.keys()
    assert set(first["candidate"]) == {"tp", "fp", "fn"}
    deltas = [i["delta"] for i in data["images"]]
    assert deltas == sorted(deltas, reverse=True) and deltas[0] > 0
    truth = world.image(CANDIDATE, first["image"])
    assert first["gt"] == [list(b) for b in truth.gt]
    assert len(first["candidate_pred"]) == world.shown(CANDIDATE, first["image"])
    assert len(first["baseline_pred"]) == world.shown(BASELINE, first["image"])
    assert first["thumb"] in world.thumbs
    assert set(data["classes"]) == {"pallet", "forklift"}
    assert {"gained", "lost", "fp_added", "fp_removed"} <= data["classes"]["pallet"].keys()
    # paging: the next images from an offset, the same order
    every = api.json(f"{REVIEW}&limit=12")["images"]
    page = api.json(f"{REVIEW}&limit=4&offset=4")
    assert page["offset"] == 4 and [i["image"] for i in page["images"]] == [i["image"] for i in every[4:8]]
    # a higher confidence draws fewer boxes
    strict = api.json(f"{REVIEW}&limit=12&conf=0.9")
    assert sum(len(i["candidate_pred"]) for i in strict["images"]) < sum(
        len(i["candidate_pred"]) for i in every
    )


def test_review_json_refusals(api: Api) -> None:
    for query in ("&iou=0", "&conf=1.5", "&limit=-1", f"&limit={10**6}"):
        assert api.get(REVIEW + query).status_code == 422, query
    sealed = api.get(REVIEW + "&split=test")
    assert sealed.status_code == 400 and "sealed" in sealed.json()["detail"]
    missing = api.get(f"{API}/review?candidate={NO_PREDICTIONS}&baseline={BASELINE}")
    assert missing.status_code == 404
    assert f"trialbook yolo val {PROJECT}/{NO_PREDICTIONS} --split val" in missing.json()["detail"]
    other = api.get(f"{API}/review?candidate={OTHER_SPLIT}&baseline={BASELINE}")
    assert other.status_code == 400 and "different val splits" in other.json()["detail"]
    assert api.get(f"{API}/review?candidate=nope&baseline={BASELINE}").status_code == 404


def test_run_review_json(world: ReviewWorld, api: Api) -> None:
    data = api.json(f"{API}/runs/{CANDIDATE}/review?limit=3")
    assert (data["run"], data["split"], data["image_count"], len(data["images"])) == (CANDIDATE, "val", 12, 3)
    errors = [i["counts"]["fp"] + i["counts"]["fn"] for i in data["images"]]
    assert errors == sorted(errors, reverse=True) and errors[0] > 0
    first = data["images"][0]
    assert len(first["pred"]) == world.shown(CANDIDATE, first["image"])
    missing = api.get(f"{API}/runs/{NO_PREDICTIONS}/review")
    assert missing.status_code == 404 and "trialbook yolo val" in missing.json()["detail"]


# --------------------------------------------------------------------------- pages
def test_compare_page_loads_the_review_lazily(api: Api) -> None:
    html = api.get(COMPARE).text
    assert 'id="review" class="review" data-ready="true"' in html
    assert 'id="review-grid"' in html and "thumbs/" not in html  # the images come from the JSON route
    pictures = island(html, "pictures-data")
    assert pictures["review"]["candidate"] == CANDIDATE and pictures["review"]["baseline"] == BASELINE
    plots = pictures["plots"]
    assert plots["common"][:3] == ["results.png", "confusion_matrix.png", "BoxPR_curve.png"]
    assert [p["run"] for p in plots["plots"]["results.png"]] == [CANDIDATE, BASELINE]
    assert all(p["digest"] for p in plots["plots"]["confusion_matrix.png"])
    assert TEST_PLOT not in html


def test_no_predictions_says_the_fix(api: Api) -> None:
    runs = f"runs={NO_PREDICTIONS}&runs={BASELINE}&baseline={BASELINE}"
    page = api.get(f"/projects/{PROJECT}/compare?{runs}")
    assert page.status_code == 200
    message = re.search(r'<p class="notice" id="review-message">(.*?)</p>', page.text, re.S)
    assert message, page.text[-3000:]
    assert f"<code>trialbook yolo val {NO_PREDICTIONS} --split val</code>" in message.group(1)
    assert 'data-ready="false"' in page.text
    run = api.get(f"/projects/{PROJECT}/runs/{NO_PREDICTIONS}")
    assert run.status_code == 200
    assert f"<code>trialbook yolo val {NO_PREDICTIONS} --split val</code>" in run.text
    assert 'id="gallery"' in run.text and "No plots recorded" in run.text
    other = api.get(f"/projects/{PROJECT}/compare?runs={OTHER_SPLIT}&runs={BASELINE}&baseline={BASELINE}")
    assert other.status_code == 200 and "different val splits" in other.text
    one = api.get(f"/projects/{PROJECT}/compare?runs={BASELINE}")
    assert one.status_code == 200 and "compare two or more runs" in one.text


def test_candidate_chosen_on_the_page(api: Api) -> None:
    runs = f"runs={CANDIDATE}&runs={NO_PREDICTIONS}&runs={BASELINE}&baseline={BASELINE}"
    chosen = api.get(f"/projects/{PROJECT}/compare?{runs}&candidate={NO_PREDICTIONS}&iou=0.6&conf=0.3")
    review = island(chosen.text, "pictures-data")["review"]
    assert (review["candidate"], review["iou"], review["conf"], review["ready"]) == (
        NO_PREDICTIONS,
        0.6,
        0.3,
        False,
    )
    assert review["candidates"] == [CANDIDATE, NO_PREDICTIONS]
    default = island(api.get(f"/projects/{PROJECT}/compare?{runs}").text, "pictures-data")["review"]
    assert default["candidate"] == CANDIDATE and default["ready"] is True
    assert api.get(f"/projects/{PROJECT}/compare?{runs}&conf=0").status_code == 422


def test_run_page_gallery_groups_training_and_evaluation_plots(api: Api) -> None:
    html = api.get(f"/projects/{PROJECT}/runs/{CANDIDATE}").text
    groups = re.findall(r'<section class="plot-group" data-source="([^"]+)">(.*?)</section>', html, re.S)
    assert [g for g, _ in groups] == ["training", "val evaluation"]
    assert re.findall(r"<figcaption>([^<]+)</figcaption>", groups[0][1]) == ["results.png"]
    assert re.findall(r"<figcaption>([^<]+)</figcaption>", groups[1][1]) == list(EVAL_PLOTS)
    assert TEST_PLOT not in html  # a sealed evaluation's plot
    assert island(html, "page-data")["images"]["ready"] is True
    assert 'id="run-images-grid"' in html
