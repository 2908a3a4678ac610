"""The JSON API and the pages in process (httpx.ASGITransport): the demo book, a book of
imported Ultralytics runs, a book with distinctive sealed test numbers."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from support.http import Api
from support.runs import MAP, SEALED_TEXTS, add_run
from trialbook.api import Book
from trialbook.core.entities import RunRecord
from trialbook.server.app import create_app
from trialbook.services.notes import draft_note

V1, V2, V3 = "v1_baseline", "v2_imgsz_1024", "v3_pallets_added_imgsz_640"
API = "/api/v1"


# --------------------------------------------------------------------------- demo book
def test_projects_and_project(demo_api: Api) -> None:
    projects = demo_api.json(f"{API}/projects")["projects"]
    assert [p["name"] for p in projects] == ["pallets"]
    assert projects[0]["runs"] == 3 and projects[0]["note_debt"] == 0
    assert projects[0]["metric"] == MAP and projects[0]["shipped"] is None
    info = demo_api.json(f"{API}/projects/pallets")
    assert info["protocol"]["latency_budget_ms"] == 8.0
    assert {h["field"] for h in info["history"]} >= {"latency_budget_ms", "device"}
    assert all(h["reason"] for h in info["history"])


def test_runs_page_is_ranked_filtered_and_paged(demo_api: Api) -> None:
    page = demo_api.json(f"{API}/projects/pallets/runs", params={"sparkline": "true"})
    assert page["metric"] == MAP and page["total"] == 3 and not page["exploratory"]
    assert [r["name"] for r in page["runs"]] == [V3, V2, V1]
    first = page["runs"][0]
    assert first["rank"] == 1 and first["parent"] == V2 and first["dataset"] == "pallets:v2"
    assert first["epochs"] == 60 and first["pinned"] and not first["note_debt"]
    assert 2 <= len(first["spark"]) <= 48
    assert page["datasets"] == ["pallets:v1", "pallets:v2"]
    two = demo_api.json(f"{API}/projects/pallets/runs", params={"limit": 2, "offset": 1})
    assert [r["name"] for r in two["runs"]] == [V2, V1] and two["total"] == 3
    assert two["runs"][0]["rank"] == 2
    by_data = demo_api.json(f"{API}/projects/pallets/runs", params={"dataset": "pallets:v1"})
    assert [r["name"] for r in by_data["runs"]] == [V2, V1]
    text = demo_api.json(f"{API}/projects/pallets/runs", params={"q": "IMGSZ"})
    assert {r["name"] for r in text["runs"]} == {V2, V3}
    tagged = demo_api.json(
        f"{API}/projects/pallets/runs", params={"tag": "source=trialbook demo (generated curves)"}
    )
    assert tagged["total"] == 3
    assert demo_api.json(f"{API}/projects/pallets/runs", params={"tag": "nope"})["total"] == 0
    status = demo_api.json(f"{API}/projects/pallets/runs", params={"status": ["running"]})
    assert status["total"] == 0
    by_name = demo_api.json(f"{API}/projects/pallets/runs", params={"sort": "name", "order": "asc"})
    assert [r["name"] for r in by_name["runs"]] == [V1, V2, V3]
    worst = demo_api.json(f"{API}/projects/pallets/runs", params={"sort": "best", "order": "asc"})
    assert [r["name"] for r in worst["runs"]] == [V1, V2, V3]
    loss = demo_api.json(f"{API}/projects/pallets/runs", params={"metric": "val/box_loss"})
    assert loss["exploratory"] and loss["direction"] == "min"


def test_errors_are_404_400_409_with_the_message(demo_api: Api) -> None:
    r = demo_api.get(f"{API}/projects/nope/runs")
    assert r.status_code == 404 and r.json()["detail"].startswith("no project named 'nope'")
    r = demo_api.get(f"{API}/projects/pallets/runs/v9_nothing")
    assert r.status_code == 404 and "v9_nothing" in r.json()["detail"]
    r = demo_api.get(f"{API}/projects/pallets/runs", params={"sort": "bogus"})
    assert r.status_code == 400 and "bogus" in r.json()["detail"]
    r = demo_api.get(f"{API}/projects/pallets/compare", params={"runs": [V1], "metric": "lr/pg0"})
    assert r.status_code == 400 and "no better direction" in r.json()["detail"]
    r = demo_api.post(f"{API}/projects/pallets/decisions", json={"candidate": V1, "baseline": V1})
    assert r.status_code == 400 and "same run" in r.json()["detail"]
    r = demo_api.get(f"{API}/datasets/pallets/diff", params={"from": "v1", "to": "v9"})
    assert r.status_code == 404 and "pallets:v9" in r.json()["detail"]
    page = demo_api.get("/projects/nope")
    assert page.status_code == 404 and "no project named" in page.text


def test_run_detail_history_and_since_epoch(demo_api: Api) -> None:
    run = demo_api.json(f"{API}/projects/pallets/runs/{V3}")
    assert run["parent"] == V2 and run["children"] == [] and run["status"] == "finished"
    assert [g["title"] for g in run["groups"]] == ["Metrics", "Train losses", "Val losses", "Learning rates"]
    assert "lr/pg0" in run["groups"][3]["keys"] and MAP in run["groups"][0]["keys"]
    assert run["draft"].startswith("pallet AP 0.36 → 0.58")
    test = next(e for e in run["evaluations"] if e["split"] == "test")
    assert test["sealed"] and test["metrics"] is None and test["per_class_ap"] is None
    parent = demo_api.json(f"{API}/projects/pallets/runs/{V2}")
    assert [c["name"] for c in parent["children"]] == [V3]
    full = demo_api.json(f"{API}/projects/pallets/runs/{V1}/history")
    assert len(full["series"]) == 13 and len(full["series"][MAP]) == 60
    assert full["last_epoch"] == 59
    tail = demo_api.json(
        f"{API}/projects/pallets/runs/{V1}/history", params={"since_epoch": 57, "key": [MAP, "lr/pg0"]}
    )
    assert sorted(tail["series"]) == ["lr/pg0", MAP]
    assert [p[0] for p in tail["series"][MAP]] == [58, 59]
    nothing = demo_api.json(f"{API}/projects/pallets/runs/{V1}/history", params={"since_epoch": 59})
    assert nothing["series"] == {} and nothing["last_epoch"] == 59


def test_compare_data(demo_api: Api) -> None:
    data = demo_api.json(f"{API}/projects/pallets/compare", params={"runs": [V1, V2, V3], "baseline": V1})
    assert data["metric"] == MAP and not data["exploratory"] and data["comparable"]
    assert [r["name"] for r in data["runs"]] == [V3, V2, V1]
    v3 = data["runs"][0]
    assert len(v3["curve"]) == 60 and v3["convergence_epoch"] is not None
    for key in ("best", "final", "epoch_of_best", "epochs_to_95pct", "drop_count", "max_drawdown"):
        assert key in v3
    assert set(data["config_diff"]) == {"batch", "imgsz"}
    assert data["config_diff"]["imgsz"] == {V1: 640, V2: 1024, V3: 640}
    pallet = next(c for c in data["per_class"]["classes"] if c["class"] == "pallet")
    assert pallet["runs"][V3]["delta"] == pytest.approx(0.27)
    assert pallet["runs"][V1]["delta"] is None and not pallet["runs"][V3]["below_floor"]
    matrices = data["confusion"]["matrices"]
    assert [m["run"] for m in matrices] == [V1, V2, V3]
    assert matrices[0]["labels"][-1] == "background" and len(matrices[0]["matrix"]) == 5
    assert [m["comparable_to_baseline"] for m in matrices] == [False, True, True]
    assert MAP in data["keys"] and data["keys"][0] == MAP
    default = demo_api.json(f"{API}/projects/pallets/compare", params={"runs": [V3, V2, V1]})
    assert default["baseline"] == V1  # nothing shipped: the oldest run
    other = demo_api.json(f"{API}/projects/pallets/compare", params={"runs": [V1, V2], "metric": "map50"})
    assert other["exploratory"] and other["metric"] == "metrics/mAP50(B)"
    assert other["warnings"][0].startswith("exploratory")


def test_datasets_and_diff(demo_api: Api) -> None:
    sets = demo_api.json(f"{API}/datasets")["datasets"]
    assert [d["name"] for d in sets] == ["pallets"]
    versions = sets[0]["versions"]
    assert [v["tags"] for v in versions] == [["v1"], ["v2"]]
    train = versions[1]["splits"]["train"]
    assert train["images"] == 72 and {c["name"] for c in train["classes"]} == {
        "pallet",
        "forklift",
        "person",
        "box",
    }
    diff = demo_api.json(f"{API}/datasets/pallets/diff", params={"from": "v1", "to": "v2", "files": 5})
    split = diff["splits"]["train"]
    assert split["added_count"] == 48 and len(split["added"]) == 5
    assert split["classes"][0]["name"] == "pallet" and split["classes"][0]["images_delta"] == 24


def test_plotly_is_served_from_the_package_and_openapi_lists_the_api(demo_api: Api) -> None:
    import plotly

    js = demo_api.get("/static/plotly.min.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    bundled = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    assert js.content == bundled.read_bytes()
    assert demo_api.get("/static/app.js").status_code == 200
    spec = demo_api.json(f"{API}/openapi.json")
    paths = set(spec["paths"])
    for p in (
        "/api/v1/projects",
        "/api/v1/projects/{project}/runs",
        "/api/v1/projects/{project}/compare",
        "/api/v1/projects/{project}/runs/{run}/history",
        "/api/v1/projects/{project}/runs/{run}/note",
        "/api/v1/projects/{project}/decisions",
        "/api/v1/decisions",
        "/api/v1/datasets",
    ):
        assert p in paths, p
    assert all(p.startswith("/api/v1/") for p in paths)
    page = demo_api.get("/")
    assert "cdn" not in page.text.lower() and '<script src="/static/app.js"' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]


def test_pages_render(demo_api: Api) -> None:
    for url, needle in (
        ("/", "pallets"),
        ("/projects/pallets", V3),
        (f"/projects/pallets/compare?runs={V1}&runs={V3}", "Curve analytics"),
        (f"/projects/pallets/runs/{V2}", "imgsz 640 -&gt; 1024"),
        ("/datasets?a=pallets:v1&b=pallets:v2", "48 added"),
        ("/decisions", "Test splits"),
    ):
        r = demo_api.get(url)
        assert r.status_code == 200, (url, r.text[:300])
        assert needle in r.text, url
        assert r.headers["content-type"].startswith("text/html")
    filtered = demo_api.get("/projects/pallets?q=v1&status=finished&dataset=pallets:v1")
    assert V1 in filtered.text and V3 not in filtered.text.split('id="runs"')[1]


def test_notes_get_put_and_history(demo_api: Api) -> None:
    url = f"{API}/projects/pallets/runs/{V1}/note"
    before = demo_api.json(url)
    assert before["note"]["hypothesis"].startswith("A stock yolo11n")
    assert before["draft"].startswith("overall mAP 0.51")
    r = demo_api.put(url, json={"next": "try mosaic off", "hypothesis": None})
    assert r.status_code == 200, r.text
    after = r.json()["note"]
    assert after["next"] == "try mosaic off" and after["hypothesis"] == before["note"]["hypothesis"]
    assert after["version"] == before["note"]["version"] + 1
    bad = demo_api.put(url, json={"next": 3})
    assert bad.status_code == 422


def test_decide_and_decisions(demo_api: Api) -> None:
    r = demo_api.post(f"{API}/projects/pallets/decisions", json={"candidate": V3, "baseline": V2})
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["verdict"] == "WIN" and d["revealed"] and d["test_reveals_used"] == 1
    assert [g["gate"] for g in d["gates"]] == ["improvement", "per_class", "test_set", "latency"]
    listed = demo_api.json(f"{API}/decisions")
    assert len(listed["decisions"]) == 1 and listed["decisions"][0]["candidate"] == V3
    assert listed["test_splits"][0]["reveals_used"] == 1 and not listed["test_splits"][0]["burned"]
    per_project = demo_api.json(f"{API}/projects/pallets/decisions")
    assert per_project["decisions"][0]["id"] == d["id"]
    run = demo_api.json(f"{API}/projects/pallets/runs/{V3}")
    assert run["decisions"][0]["verdict"] == "WIN"
    assert "WIN" in demo_api.get("/decisions").text


# --------------------------------------------------------------------------- sealing, escaping
SEALED_URLS = (
    "/",
    "/projects/pallets",
    "/projects/pallets/compare?runs=v1_base&runs=v2_more_data",
    "/projects/pallets/runs/v2_more_data",
    "/projects/pallets/runs/v1_base",
    "/decisions",
    "/datasets",
    f"{API}/projects",
    f"{API}/projects/pallets",
    f"{API}/projects/pallets/runs?sparkline=true",
    f"{API}/projects/pallets/runs/v2_more_data",
    f"{API}/projects/pallets/runs/v2_more_data/history",
    f"{API}/projects/pallets/runs/v2_more_data/note",
    f"{API}/projects/pallets/compare?runs=v1_base&runs=v2_more_data&baseline=v1_base",
    f"{API}/decisions",
    f"{API}/projects/pallets/decisions",
)


def test_sealed_test_numbers_reach_no_response_before_a_decision(sealed_api: Api) -> None:
    api = sealed_api
    for url in SEALED_URLS:
        r = api.get(url)
        assert r.status_code == 200, (url, r.text[:300])
        leaked = [t for t in SEALED_TEXTS if t in r.text]
        assert not leaked, (url, leaked)
    d = api.post(
        f"{API}/projects/pallets/decisions", json={"candidate": "v2_more_data", "baseline": "v1_base"}
    ).json()
    assert d["revealed"] and "0.5813" in json.dumps(d)
    assert "0.5813" in api.get("/decisions").text
    assert "0.5813" in api.get(f"{API}/decisions").text
    # the evaluations stay sealed everywhere else: only the decision shows its reveal
    detail = api.json(f"{API}/projects/pallets/runs/v2_more_data")
    test = next(e for e in detail["evaluations"] if e["split"] == "test")
    assert test["metrics"] is None and "0.6137" not in json.dumps(detail["evaluations"])
    assert "0.5813" not in api.get(f"{API}/projects/pallets/compare?runs=v1_base&runs=v2_more_data").text


def test_not_comparable_runs_are_flagged(sealed_book: Book, sealed_api: Api) -> None:
    api = sealed_api
    add_run(
        sealed_book,
        "v3_unpinned",
        curve=[0.2, 0.6],
        pinned=False,
        val=0.6,
        per_class={"pallet": 0.3, "box": 0.7},
    )
    data = api.json(
        f"{API}/projects/pallets/compare", params={"runs": ["v1_base", "v3_unpinned"], "baseline": "v1_base"}
    )
    assert not data["comparable"] and data["warnings"][0].startswith("not comparable")
    cell = next(c for c in data["per_class"]["classes"] if c["class"] == "pallet")["runs"]["v3_unpinned"]
    assert cell["below_floor"] and cell["delta"] == pytest.approx(-0.1)
    html = api.get("/projects/pallets/compare?runs=v1_base&runs=v3_unpinned").text
    assert 'class="notice bad">not comparable' in html and 'class="n below"' in html
    assert "UNPINNED" in api.get("/projects/pallets").text


def test_user_text_is_escaped(tmp_path: Path) -> None:
    book = Book.open(str(tmp_path / "xss"), create=True)
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    add_run(
        book,
        "v1_base",
        curve=[0.1, 0.2],
        config={"note": evil, "lr0": 0.01},
        note={"hypothesis": evil, "result": "</textarea><b>bold</b>"},
    )
    add_run(book, "v2_other", curve=[0.1, 0.3], config={"note": "plain", "lr0": 0.02})
    book.store.set_note(book.run("v2_other").id, {"change": evil}, who="tester")
    api = Api(create_app(book))
    for url in (
        "/projects/pallets/runs/v1_base",
        "/projects/pallets/compare?runs=v1_base&runs=v2_other",
        "/projects/pallets/runs/v2_other",
    ):
        html = api.get(url).text
        assert "<script>alert" not in html and "<img src=x" not in html, url
        assert "</textarea><b>" not in html
    html = api.get("/projects/pallets/runs/v1_base").text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    # the JSON island cannot close its <script> element
    island = re.search(r'<script type="application/json" id="page-data">(.*?)</script>', html, re.S)
    assert island and "<" not in island.group(1)
    saved = api.put(f"{API}/projects/pallets/runs/v1_base/note", json={"next": evil}).json()
    assert saved["note"]["next"] == evil  # stored as given; escaped when shown
    book.close()


# --------------------------------------------------------------------------- artifacts, live
def test_artifact_download_is_verified(tmp_path: Path) -> None:
    book = Book.open(str(tmp_path / "art"), create=True)
    rec = add_run(book, "v1_base", curve=[0.1, 0.2])
    weights = tmp_path / "best.pt"
    weights.write_bytes(b"weights " * 1000)
    book.attach(rec).log_artifact(weights)
    api = Api(create_app(book))
    art = api.json(f"{API}/projects/pallets/runs/v1_base")["artifacts"][0]
    url = f"{API}/projects/pallets/runs/v1_base/artifacts/{art['digest']}"
    r = api.get(url)
    assert r.status_code == 200 and r.content == weights.read_bytes()
    assert 'filename="best.pt"' in r.headers["content-disposition"]
    assert api.get(f"{API}/projects/pallets/runs/v1_base/artifacts/{'0' * 64}").status_code == 404
    assert book.blobs is not None
    book.blobs.path_of(art["digest"]).write_bytes(b"tampered")
    bad = api.get(url)
    assert bad.status_code == 500 and "no longer hashes" in bad.json()["detail"]
    book.close()


def test_running_run_status_and_new_epochs(tmp_path: Path) -> None:
    book = Book.open(str(tmp_path / "live"), create=True)
    run = book.start("live", "v1_live", allow_unpinned=True, flush_interval=0.05)
    for e in range(3):
        run.log({MAP: 0.1 * (e + 1)}, epoch=e)
    run.flush()
    api = Api(create_app(book))
    h = api.json(f"{API}/projects/live/runs/v1_live/history", params={"key": MAP})
    assert h["status"] == "running" and h["last_epoch"] == 2
    run.log({MAP: 0.5}, epoch=3)
    run.flush()
    h2 = api.json(f"{API}/projects/live/runs/v1_live/history", params={"key": MAP, "since_epoch": 2})
    assert h2["series"][MAP] == [[3, 0.5]]
    running = api.json(f"{API}/projects/live/runs", params={"status": "running"})
    assert [r["name"] for r in running["runs"]] == ["v1_live"]
    assert api.json(f"{API}/projects")["projects"][0]["running"] == 1
    run.finish()
    assert api.json(f"{API}/projects/live/runs/v1_live/history")["status"] == "finished"
    book.close()


def test_stale_running_run_shows_as_crashed(tmp_path: Path) -> None:
    book = Book.open(str(tmp_path / "stale"), create=True)
    rec = add_run(book, "v1_gone", curve=[0.1], status="running")
    book.store.set_run_status(rec.id, "running", heartbeat_at=time.time() - 3600)
    api = Api(create_app(book))
    crashed = api.json(f"{API}/projects/pallets/runs", params={"status": "crashed"})
    assert [r["status"] for r in crashed["runs"]] == ["crashed"]
    assert api.json(f"{API}/projects/pallets/runs", params={"status": "running"})["total"] == 0
    book.close()


# --------------------------------------------------------------------------- imported runs
def test_imported_ultralytics_runs(tmp_path: Path) -> None:
    import yaml

    from support.ultralytics_files import DETECT, args_yaml, results_csv
    from trialbook.integrations.importers.ultralytics_runs import import_ultralytics

    for name, epochs in (("train", 5), ("train2", 8), ("train3", 3)):
        folder = tmp_path / "runs" / "detect" / name
        (folder / "weights").mkdir(parents=True)
        (folder / "args.yaml").write_text(
            yaml.safe_dump(
                args_yaml(name=name, save_dir=str(folder), epochs=epochs, imgsz=320 * (1 + len(name) % 3)),
                sort_keys=False,
            )
        )
        (folder / "results.csv").write_text(results_csv(DETECT, list(range(1, epochs + 1)), time_column=True))
        (folder / "weights" / "best.pt").write_bytes(f"best {name}".encode())
    book = Book.open(str(tmp_path / "book"), create=True)
    report = import_ultralytics(book, [tmp_path / "runs"])
    assert not report.failed, report.failed
    api = Api(create_app(book))
    projects = api.json(f"{API}/projects")["projects"]
    assert [(p["name"], p["runs"]) for p in projects] == [("detect", 3)]
    page = api.json(f"{API}/projects/detect/runs", params={"sparkline": "true"})
    assert [r["name"] for r in page["runs"]] == ["train2", "train", "train3"]
    assert all(r["legacy_name"] and not r["pinned"] and r["note_debt"] for r in page["runs"])
    detail = api.json(f"{API}/projects/detect/runs/train2")
    assert detail["artifacts"][0]["name"] == "best.pt"
    groups = {g["title"]: g["keys"] for g in detail["groups"]}
    assert list(groups) == ["Metrics", "Train losses", "Val losses", "Learning rates", "Other"]
    assert groups["Other"] == ["time"] and "lr/pg2" in groups["Learning rates"]
    blob = api.get(f"{API}/projects/detect/runs/train2/artifacts/{detail['artifacts'][0]['digest']}")
    assert blob.content == b"best train2"
    data = api.json(f"{API}/projects/detect/compare", params={"runs": ["train", "train2", "train3"]})
    assert [len(r["curve"]) for r in data["runs"]] == [8, 5, 3]
    assert "epochs" in data["config_diff"] and not {"name", "save_dir"} & set(data["config_diff"])
    assert data["comparable"] and data["per_class"]["classes"] == []
    for url in (
        "/",
        "/projects/detect",
        "/projects/detect/runs/train",
        "/projects/detect/compare?runs=train&runs=train2",
        "/datasets",
        "/decisions",
    ):
        r = api.get(url)
        assert r.status_code == 200, (url, r.text[:300])
    assert "UNPINNED" in api.get("/projects/detect").text
    book.close()


# --------------------------------------------------------------------------- the run page's order
def test_run_page_leads_with_numbers_and_folds_the_default_config(tmp_path: Path) -> None:
    book = Book.open(str(tmp_path / "asked"), create=True)
    add_run(book, "v1_base", curve=[0.2, 0.3], val=0.3, per_class={"pallet": 0.3})
    add_run(book, "v2_more", curve=[0.2, 0.4], val=0.4, per_class={"pallet": 0.5}, parent="v1_base")
    draft_note(book, "v2_more", project="pallets", save=True)  # the saved result is the draft
    asked = {"imgsz": 320, "epochs": 3}
    book.store.create_run(
        RunRecord(
            id="asked" + "0" * 27,
            project="pallets",
            name="v3_asked",
            status="finished",
            created_at=time.time(),
            config={**asked, **{f"arg_{i}": i for i in range(40)}},
            env={"python": "3.11", "config_asked": list(asked)},
        )
    )
    api = Api(create_app(book))
    html = api.get("/projects/pallets/runs/v3_asked").text
    order = [
        html.index(f'id="{part}"') for part in ("summary", "note", "evaluations", "curve-groups", "config")
    ]
    assert order == sorted(order)
    shown, folded = html.split('id="config"')[1].split('id="config-rest"')
    assert "<code>imgsz</code>" in shown and "<code>epochs</code>" in shown and "arg_0" not in shown
    assert "40 more config keys at their defaults" in folded and "<code>arg_39</code>" in folded
    assert "config_asked" not in html.split('id="environment"')[1]
    # a run without the list asked for every key: nothing folded
    plain = api.get("/projects/pallets/runs/v1_base").text
    assert 'id="config-rest"' not in plain
    # a draft equal to the saved result stays hidden; one that differs shows
    same = api.get("/projects/pallets/runs/v2_more").text
    assert re.search(r'<p class="draft" id="note-draft-line" hidden>', same)
    api.put(f"{API}/projects/pallets/runs/v2_more/note", json={"result": "worse than hoped"})
    differs = api.get("/projects/pallets/runs/v2_more").text
    assert re.search(
        r'<p class="draft" id="note-draft-line">Drafted result: <span id="note-draft">pallet AP', differs
    )
    book.close()
