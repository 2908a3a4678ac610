"""Bad input: every error names the file (and, for labels, the line) and writes nothing."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from support.datasets import NAMES, box, make_dataset, write_image, write_split, write_yaml
from trialbook.datasets import build_manifest, resolve_source
from trialbook.errors import InvalidInput

needs_symlinks = pytest.mark.skipif(
    not hasattr(os, "symlink") or os.name == "nt", reason="needs POSIX symlinks"
)
needs_permissions = pytest.mark.skipif(
    os.name == "nt" or os.geteuid() == 0, reason="needs POSIX permissions and a non-root user"
)


def _refused(source: Path, pattern: str) -> str:
    with pytest.raises(InvalidInput) as info:
        build_manifest(source)
    message = str(info.value)
    assert re.search(pattern, message), message
    return message


def _label(dataset: Path, text: str, name: str = "a.txt", split: str = "train") -> Path:
    path = dataset.parent / "labels" / split / name
    path.write_text(text)
    return path


def test_missing_source(tmp_path: Path) -> None:
    _refused(tmp_path / "nope.yaml", r"nope\.yaml does not exist")


def test_unparsable_yaml(tmp_path: Path) -> None:
    config = tmp_path / "data.yaml"
    config.write_text("names: [a, b\ntrain: x\n")
    message = _refused(config, r"data\.yaml: not valid YAML")
    assert "line" in message


def test_yaml_that_is_not_a_mapping(tmp_path: Path) -> None:
    config = tmp_path / "data.yaml"
    config.write_text("- a\n- b\n")
    _refused(config, r"data\.yaml: expected a mapping")


def test_yaml_without_names(tmp_path: Path) -> None:
    config = make_dataset(tmp_path / "ds", config={"names": None})
    _refused(config, r"data\.yaml: no 'names'")


@pytest.mark.parametrize(
    ("names", "pattern"),
    [
        ({0: "a", 2: "c"}, r"class ids 0\.\.1 without gaps"),
        ({"x": "a"}, r"'names' keys must be class ids"),
        ("cat", r"'names' must be a list or a mapping"),
        ([], r"'names' is empty"),
    ],
)
def test_bad_names(tmp_path: Path, names: object, pattern: str) -> None:
    _refused(make_dataset(tmp_path / "ds", config={"names": names}), pattern)


def test_nc_disagreeing_with_names(tmp_path: Path) -> None:
    _refused(make_dataset(tmp_path / "ds", config={"nc": 5}), r"'nc' is 5 but 'names' has 3 classes")


@pytest.mark.parametrize("split", ["train", "val"])
def test_missing_required_split_entry(tmp_path: Path, split: str) -> None:
    config = make_dataset(tmp_path / "ds")
    write_yaml(
        config,
        {
            k: v
            for k, v in {"path": ".", "train": "images/train", "val": "images/val", "names": NAMES}.items()
            if k != split
        },
    )
    _refused(config, rf"data\.yaml: no '{split}' split")


def test_missing_split_folder_names_split_and_path(tmp_path: Path) -> None:
    config = make_dataset(tmp_path / "ds", config={"val": "images/validation"})
    message = _refused(config, r"split 'val' entry 'images/validation'")
    assert str((tmp_path / "ds" / "images" / "validation").resolve()) in message
    assert "does not exist" in message


def test_missing_dataset_path(tmp_path: Path) -> None:
    config = make_dataset(tmp_path / "ds", config={"path": "../elsewhere"})
    _refused(config, r"dataset path '\.\./elsewhere' is .*elsewhere, which is not a folder")


def test_split_without_images(tmp_path: Path) -> None:
    config = make_dataset(tmp_path / "ds")
    (tmp_path / "ds" / "images" / "empty").mkdir()
    write_yaml(config, {"train": "images/train", "val": "images/empty", "names": NAMES})
    _refused(config, r"split 'val' has no images in .*images/empty")


def test_folder_source_missing_val(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    write_split(root, "train", {"a.jpg": [box(0)]})
    (root / "classes.txt").write_text("cat\n")
    with pytest.raises(InvalidInput, match=r"split 'val' folder .*images/val does not exist"):
        resolve_source(root)


def test_folder_source_without_images_train(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInput, match=r"no data\.yaml and no images/train folder"):
        resolve_source(tmp_path / "empty")


def test_label_line_that_is_not_numbers(dataset: Path) -> None:
    path = _label(dataset, "0 0.5 0.5 0.2 0.2\n1 0.5 zero 0.2 0.2\n")
    message = _refused(dataset, re.escape(f"{path.resolve()}:2: label line is not numbers"))
    assert "'zero' is not a number" in message
    assert "'1 0.5 zero 0.2 0.2'" in message


def test_label_line_with_too_few_numbers(dataset: Path) -> None:
    path = _label(dataset, "\n\n0 0.5 0.5\n")
    _refused(dataset, re.escape(f"{path.resolve()}:3: label line has 3 numbers"))


def test_label_class_id_outside_names(dataset: Path) -> None:
    path = _label(dataset, "0 0.5 0.5 0.2 0.2\n7 0.5 0.5 0.2 0.2\n", name="b.txt")
    message = _refused(
        dataset, re.escape(f"{path.resolve()}:2: class id 7 is outside the 3 class names (valid ids 0..2)")
    )
    assert "'7 0.5 0.5 0.2 0.2'" in message


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("-1 0.5 0.5 0.2 0.2\n", r":1: class id -1 is negative"),
        ("1.5 0.5 0.5 0.2 0.2\n", r":1: class id 1\.5 is not a whole number"),
        ("0 0.5 0.5 0.2 nan\n", r":1: label line is not numbers \('nan'"),
        ("0,0.5,0.5,0.2,0.2\n", r":1: label line is not numbers"),
    ],
)
def test_other_bad_label_rows(dataset: Path, text: str, pattern: str) -> None:
    _label(dataset, text)
    _refused(dataset, r"labels/train/a\.txt" + pattern)


def test_whole_number_class_ids_written_as_floats_are_accepted(dataset: Path) -> None:
    _label(dataset, "1.0 0.5 0.5 0.2 0.2\r\n\r\n2 0.5 0.5 0.2 0.2")
    assert build_manifest(dataset).splits["train"].class_instances == (0, 2, 1)


def test_several_problems_are_reported_together(dataset: Path) -> None:
    _label(dataset, "x\n", name="a.txt")
    _label(dataset, "0 0 0\n", name="e.txt", split="val")
    message = _refused(dataset, r"labels/train/a\.txt:1")
    assert "1 more problem" in message


def test_label_file_not_utf8_is_still_named(dataset: Path) -> None:
    path = dataset.parent / "labels" / "train" / "a.txt"
    path.write_bytes(b"0 0.5 \xff 0.2 0.2\n")
    _refused(dataset, re.escape(f"{path.resolve()}:1: label line is not numbers"))


def test_image_listed_but_missing_names_the_list_line(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    write_split(root, "train", {"a.jpg": [box(0)]})
    (root / "val.txt").write_text("images/train/a.jpg\nimages/train/gone.jpg\n")
    config = write_yaml(root / "data.yaml", {"train": "images/train", "val": "val.txt", "names": NAMES})
    message = _refused(config, r"cannot read image .*gone\.jpg: no such file")
    assert f"listed at {(root / 'val.txt').resolve()}:2" in message


def test_label_path_that_is_a_folder(dataset: Path) -> None:
    (dataset.parent / "labels" / "train" / "c.txt").mkdir()
    _refused(dataset, r"labels/train/c\.txt is not a regular file")


def test_folder_named_like_an_image(dataset: Path) -> None:
    (dataset.parent / "images" / "train" / "odd.jpg").mkdir()
    _refused(dataset, r"images/train/odd\.jpg is not a regular file")


def test_unreadable_image_simulated(dataset: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    image = str((dataset.parent / "images" / "train" / "b.png").resolve())
    real_open = os.open

    def deny(path: str, *args: object, **kw: object) -> int:
        if path == image:
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", deny)
    _refused(dataset, rf"cannot read {re.escape(image)}: Permission denied")


@needs_permissions
def test_unreadable_image(dataset: Path) -> None:
    image = dataset.parent / "images" / "train" / "a.jpg"
    image.chmod(0)
    try:
        _refused(dataset, rf"cannot read {re.escape(str(image.resolve()))}: Permission denied")
    finally:
        image.chmod(0o644)


@needs_permissions
def test_unreadable_folder(dataset: Path) -> None:
    folder = dataset.parent / "images" / "val"
    folder.chmod(0)
    try:
        _refused(dataset, r"cannot read folder .*images/val: Permission denied")
    finally:
        folder.chmod(0o755)


@needs_symlinks
def test_directory_symlink_loop(dataset: Path) -> None:
    folder = dataset.parent / "images" / "train" / "sub"
    folder.mkdir()
    (folder / "back").symlink_to(dataset.parent / "images" / "train")
    message = _refused(dataset, r"symlink loop: .*images/train/sub/back leads back to")
    assert message.endswith(str((dataset.parent / "images" / "train").resolve()))


@needs_symlinks
def test_file_symlink_loop(dataset: Path) -> None:
    train = dataset.parent / "images" / "train"
    (train / "x.jpg").symlink_to(train / "y.jpg")
    (train / "y.jpg").symlink_to(train / "x.jpg")
    _refused(dataset, r"images/train/x\.jpg: symlink loop")


@needs_symlinks
def test_symlink_loop_in_the_config_path(tmp_path: Path) -> None:
    config = make_dataset(tmp_path / "ds", config={"val": "loop/val"})
    (tmp_path / "ds" / "loop").symlink_to(tmp_path / "ds" / "loop")
    _refused(config, r"symlink loop")


@needs_symlinks
def test_symlinked_images_are_followed(tmp_path: Path) -> None:
    config = make_dataset(tmp_path / "ds")
    elsewhere = write_image(tmp_path / "store" / "z.jpg", b"zzz")
    (tmp_path / "ds" / "images" / "val" / "z.jpg").symlink_to(elsewhere)
    m = build_manifest(config)
    assert "images/val/z.jpg" in [e.path for e in m.splits["val"].images]


@needs_symlinks
def test_broken_symlink_image(dataset: Path) -> None:
    (dataset.parent / "images" / "train" / "gone.jpg").symlink_to(dataset.parent / "nothing")
    _refused(dataset, r"cannot read image .*images/train/gone\.jpg: no such file")


def test_nothing_written_on_failure(dataset: Path, tmp_path: Path) -> None:
    _label(dataset, "oops\n")
    before = sorted(p for p in tmp_path.rglob("*"))
    with pytest.raises(InvalidInput):
        build_manifest(dataset)
    assert sorted(p for p in tmp_path.rglob("*")) == before
