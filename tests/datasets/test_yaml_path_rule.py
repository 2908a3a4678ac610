"""A data.yaml's ``path:`` resolved as Ultralytics resolves it (``datasets.root``), with
trialbook's rule (the yaml's folder) without Ultralytics, and warnings only where the
fingerprinted files may not be the trained ones."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from support.datasets import NAMES, box, write_split, write_yaml
from support.extras import require_ultralytics
from trialbook.datasets import build_manifest, resolve_source
from trialbook.datasets.root import PATH_RULES, choose_root
from trialbook.datasets.source import root_warnings
from trialbook.errors import InvalidInput


def _dataset(root: Path, label: int = 0) -> Path:
    write_split(root, "train", {"a.jpg": [box(label)]})
    write_split(root, "val", {"b.jpg": [box(label)]})
    return root


def _yaml(path: Path, root: str | None) -> Path:
    data: dict[str, object] = {"train": "images/train", "val": "images/val", "names": list(NAMES)}
    return write_yaml(path, data if root is None else {"path": root, **data})


def test_a_relative_path_from_the_current_folder_is_the_one_ultralytics_trains_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the layout: `path: shapes`, the dataset beside the folder training starts in
    work = tmp_path / "work"
    _dataset(work / "shapes")
    config = _yaml(work / "configs" / "shapes.yaml", "shapes")
    monkeypatch.chdir(work)
    src = resolve_source(config, path_rule="ultralytics")
    assert src.root == str((work / "shapes").resolve()) and src.warnings == ()
    # trialbook's rule reads it from the yaml's folder, where there is nothing; it then uses
    # the folder Ultralytics started here would read, and says so
    src = resolve_source(config, path_rule="trialbook")
    assert src.root == str((work / "shapes").resolve())
    assert len(src.warnings) == 1 and "as Ultralytics started here reads it" in src.warnings[0]


def test_two_folders_that_both_hold_the_splits_are_warned_about(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    _dataset(work / "shapes", label=0)
    _dataset(work / "configs" / "shapes", label=1)
    config = _yaml(work / "configs" / "data.yaml", "shapes")
    monkeypatch.chdir(work)
    ours = build_manifest(resolve_source(config, path_rule="ultralytics"))
    theirs = build_manifest(resolve_source(config, path_rule="trialbook"))
    assert ours.digest != theirs.digest  # other files: the rule decides which are trained
    absolute = _yaml(tmp_path / "absolute.yaml", str(work / "shapes"))  # the folder from the current one
    assert ours.digest == build_manifest(absolute).digest
    warnings = root_warnings(config, path_rule="ultralytics")
    assert len(warnings) == 1
    assert str((work / "shapes").resolve()) in warnings[0] and "other files" in warnings[0]
    assert len(root_warnings(config, path_rule="trialbook")) == 1


def test_path_dot_is_the_current_folder_for_ultralytics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ds = _dataset(tmp_path / "ds")
    config = _yaml(ds / "data.yaml", ".")
    monkeypatch.chdir(ds)  # training started in the yaml's folder: both rules agree, no warning
    assert resolve_source(config, path_rule="ultralytics").warnings == ()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # Ultralytics started here finds no splits: the yaml's folder
    src = resolve_source(config, path_rule="ultralytics")
    assert src.root == str(ds.resolve())
    assert "could not train on this yaml from here" in src.warnings[0]
    assert resolve_source(config, path_rule="trialbook").warnings == ()  # elsewhere holds no splits


def test_no_path_or_an_absolute_one_never_warns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ds = _dataset(tmp_path / "ds")
    _dataset(tmp_path / "ds" / "ds")
    monkeypatch.chdir(tmp_path)
    for root in (None, str(ds)):
        config = _yaml(ds / "data.yaml", root)
        for rule in PATH_RULES:
            src = resolve_source(config, path_rule=rule)
            assert (src.root, src.warnings) == (str(ds.resolve()), ())


def test_a_missing_root_names_both_folders_tried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ds = tmp_path / "ds"
    write_split(ds, "train", {"a.jpg": [box(0)]})  # no val anywhere
    config = _yaml(ds / "data.yaml", ".")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InvalidInput) as err:
        resolve_source(config, path_rule="ultralytics")
    message = str(err.value)
    # the folder holding more of the splits is the one named, with the other one tried
    assert (
        f"split 'val' entry 'images/val' is {ds.resolve() / 'images' / 'val'}, which does not exist"
        in message
    )
    assert str(tmp_path) in message and "make `path:` absolute" in message
    with pytest.raises(InvalidInput, match="path rule must be one of ultralytics, trialbook"):
        choose_root({"path": "x"}, config, "cwd")
    with pytest.raises(InvalidInput, match="'path' must be a folder, got 3"):
        choose_root({"path": 3}, config, "trialbook")


def test_list_entries_have_no_parent_fallback_under_ultralytics(tmp_path: Path) -> None:
    ds = _dataset(tmp_path / "ds")
    data = {"path": str(ds), "train": "../images/train", "val": ["../images/val"], "names": list(NAMES)}
    config = write_yaml(ds / "data.yaml", data)
    assert resolve_source(config, path_rule="trialbook").splits["val"].definition == ("images/val",)
    with pytest.raises(
        InvalidInput, match=r"split 'val' entry '\.\./images/val' is .*, which does not exist"
    ):
        resolve_source(config, path_rule="ultralytics")
    data["val"] = "../images/val"  # as text, Ultralytics falls back to root / images/val
    write_yaml(config, data)
    assert resolve_source(config, path_rule="ultralytics").splits["train"].definition == ("images/train",)


# -- against the installed Ultralytics, for real ------------------------------------------------

_PARITY = textwrap.dedent(
    """
    import json, os, sys
    from pathlib import Path
    from ultralytics.data.utils import check_det_dataset
    from trialbook.datasets import resolve_source

    out = []
    for cwd, config in json.loads(sys.argv[1]):
        os.chdir(cwd)
        data = check_det_dataset(config, autodownload=False)
        src = resolve_source(config)  # the default rule: Ultralytics' when it is installed
        for split in ("train", "val"):
            theirs = data[split] if isinstance(data[split], list) else [data[split]]
            theirs = [str(Path(p).resolve()) for p in theirs]
            out.append([config, split, theirs, list(src.splits[split].entries)])
    print(json.dumps(out))
    """
)


def test_the_roots_are_the_ones_ultralytics_resolves(tmp_path: Path) -> None:
    require_ultralytics()
    cfg = tmp_path / "ycfg"
    (cfg / "Ultralytics").mkdir(parents=True)
    (cfg / "Ultralytics" / "Arial.ttf").write_bytes(b"")  # so its font check needs no download
    env = {**os.environ, "YOLO_CONFIG_DIR": str(cfg), "YOLO_OFFLINE": "1"}
    datasets_dir = tmp_path / "datasets"
    setup = f"from ultralytics.utils import SETTINGS; SETTINGS.update(datasets_dir={str(datasets_dir)!r})"
    subprocess.run([sys.executable, "-c", setup], env=env, check=True, capture_output=True, timeout=120)

    work = tmp_path / "work"
    _dataset(work / "shapes")
    _dataset(datasets_dir / "stored")
    ds = _dataset(tmp_path / "ds")
    cases = [
        (work, _yaml(work / "configs" / "a.yaml", "shapes")),  # relative, from the current folder
        (work, _yaml(work / "configs" / "b.yaml", "stored")),  # relative, under datasets_dir
        (ds, _yaml(ds / "c.yaml", ".")),
        (work, _yaml(ds / "d.yaml", None)),  # no path: the yaml's folder
        (work, _yaml(ds / "e.yaml", str(ds))),
        (
            work,
            write_yaml(
                ds / "f.yaml",
                {"path": "../ds", "train": ["images/train"], "val": "../images/val", "names": list(NAMES)},
            ),
        ),
    ]
    args = json.dumps([[str(c), str(y)] for c, y in cases])
    done = subprocess.run(
        [sys.executable, "-c", _PARITY, args], env=env, capture_output=True, text=True, timeout=240, cwd=work
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(rows) == 2 * len(cases)
    for config, split, theirs, ours in rows:
        assert ours == theirs, (config, split)
