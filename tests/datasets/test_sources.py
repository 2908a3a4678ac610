"""Resolving a data.yaml or a folder: every form Ultralytics accepts, and the label rule."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from support.datasets import (
    NAMES,
    box,
    make_dataset,
    write_image,
    write_label,
    write_split,
    write_yaml,
)
from trialbook.datasets import IMAGE_EXTENSIONS, build_manifest, label_path_for, resolve_source
from trialbook.datasets.source import label_dir_for, relative_posix
from trialbook.errors import InvalidInput


def _rel(paths: tuple[str, ...], root: Path) -> list[str]:
    return [relative_posix(p, str(root.resolve())) for p in paths]


def test_default_dataset_resolves(dataset: Path) -> None:
    src = resolve_source(dataset)
    root = dataset.parent
    assert src.root == str(root.resolve())
    assert src.config == str(dataset.resolve())
    assert src.class_names == tuple(NAMES)
    assert list(src.splits) == ["train", "val", "test"]
    assert src.splits["train"].definition == ("images/train",)
    assert _rel(src.splits["train"].images, root) == [
        "images/train/a.jpg",
        "images/train/b.png",
        "images/train/c.jpg",
        "images/train/d.jpg",
    ]


def test_folder_with_data_yaml_uses_it(dataset: Path) -> None:
    assert resolve_source(dataset.parent) == resolve_source(dataset)


def test_folder_with_dataset_yaml(tmp_path: Path) -> None:
    config = make_dataset(tmp_path / "ds")
    config.rename(config.with_name("dataset.yaml"))
    src = resolve_source(tmp_path / "ds")
    assert src.config is not None and src.config.endswith("dataset.yaml")


def test_path_absent_means_the_yaml_folder(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    write_split(root, "train", {"a.jpg": [box(0)]})
    write_split(root, "val", {"b.jpg": [box(1)]})
    config = write_yaml(root / "data.yaml", {"train": "images/train", "val": "images/val", "names": NAMES})
    src = resolve_source(config)
    assert src.root == str(root.resolve())
    assert _rel(src.splits["val"].images, root) == ["images/val/b.jpg"]
    assert "test" not in src.splits


def test_path_relative_to_the_yaml_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "data" / "ds"
    write_split(root, "train", {"a.jpg": [box(0)]})
    write_split(root, "val", {"b.jpg": [box(1)]})
    config = write_yaml(
        tmp_path / "configs" / "ds.yaml",
        {"path": "../data/ds", "train": "images/train", "val": "images/val", "names": NAMES},
    )
    monkeypatch.chdir(tmp_path / "data")  # the current folder must not matter
    src = resolve_source(config)
    assert src.root == str(root.resolve())
    assert src.splits["train"].definition == ("images/train",)


def test_path_absolute(tmp_path: Path) -> None:
    root = tmp_path / "somewhere" / "ds"
    write_split(root, "train", {"a.jpg": [box(0)]})
    write_split(root, "val", {"b.jpg": [box(1)]})
    config = write_yaml(
        tmp_path / "elsewhere" / "data.yaml",
        {"path": str(root), "train": "images/train", "val": "images/val", "names": NAMES},
    )
    assert resolve_source(config).root == str(root.resolve())


def test_split_entries_may_be_absolute(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    write_split(root, "train", {"a.jpg": [box(0)]})
    write_split(root, "val", {"b.jpg": [box(1)]})
    config = write_yaml(
        root / "data.yaml",
        {
            "path": str(root),
            "train": str(root / "images" / "train"),
            "val": str(root / "images" / "val"),
            "names": NAMES,
        },
    )
    src = resolve_source(config)
    # Definitions are relative to the root whatever the config says, so a moved dataset
    # keeps its digest.
    assert src.splits["train"].definition == ("images/train",)


def test_split_as_txt_list(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    write_split(root, "all", {"a.jpg": [box(0)], "b.jpg": [box(1)], "c.jpg": [box(2)]})
    (root / "train.txt").write_text("./images/all/a.jpg\nimages/all/b.jpg\n\n")
    (root / "val.txt").write_text(f"{root / 'images' / 'all' / 'c.jpg'}\n")
    config = write_yaml(
        root / "data.yaml", {"path": ".", "train": "train.txt", "val": "val.txt", "names": NAMES}
    )
    src = resolve_source(config)
    assert src.splits["train"].definition == ("train.txt",)
    assert _rel(src.splits["train"].images, root) == ["images/all/a.jpg", "images/all/b.jpg"]
    assert _rel(src.splits["val"].images, root) == ["images/all/c.jpg"]
    m = build_manifest(config)
    assert [e.path for e in m.splits["train"].labels] == ["labels/all/a.txt", "labels/all/b.txt"]


def test_txt_list_dot_slash_is_relative_to_the_list_file(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    write_split(root, "train", {"a.jpg": [box(0)]})
    write_split(root, "val", {"b.jpg": [box(0)]})
    (root / "lists").mkdir()
    (root / "lists" / "train.txt").write_text("./../images/train/a.jpg\n")
    config = write_yaml(root / "data.yaml", {"train": "lists/train.txt", "val": "images/val", "names": NAMES})
    assert _rel(resolve_source(config).splits["train"].images, root) == ["images/train/a.jpg"]


def test_split_as_list_of_folders_and_lists(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    write_split(root, "train", {"a.jpg": [box(0)]})
    write_split(root, "extra", {"b.jpg": [box(1)]})
    write_split(root, "more", {"c.jpg": [box(2)], "d.jpg": [box(2)]})
    write_split(root, "val", {"v.jpg": [box(0)]})
    (root / "more.txt").write_text("images/more/c.jpg\n")
    config = write_yaml(
        root / "data.yaml",
        {
            "path": ".",
            "train": ["images/train", "images/extra", "more.txt"],
            "val": "images/val",
            "names": NAMES,
        },
    )
    src = resolve_source(config)
    assert src.splits["train"].definition == ("images/train", "images/extra", "more.txt")
    assert _rel(src.splits["train"].images, root) == [
        "images/extra/b.jpg",
        "images/more/c.jpg",
        "images/train/a.jpg",
    ]
    m = build_manifest(config)
    assert m.splits["train"].class_instances == (1, 1, 1)


def test_names_as_dict(tmp_path: Path) -> None:
    config = make_dataset(tmp_path / "ds", config={"names": {0: "cat", 1: "dog", 2: "bird"}})
    assert resolve_source(config).class_names == ("cat", "dog", "bird")


def test_names_as_dict_with_string_keys_in_any_order(tmp_path: Path) -> None:
    config = make_dataset(tmp_path / "ds", config={"names": {"2": "bird", "0": "cat", "1": "dog"}, "nc": 3})
    src = resolve_source(config)
    assert src.class_names == ("cat", "dog", "bird")
    assert build_manifest(config) == build_manifest(make_dataset(tmp_path / "other"))


def test_validation_is_accepted_for_val(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    write_split(root, "train", {"a.jpg": [box(0)]})
    write_split(root, "val", {"b.jpg": [box(0)]})
    config = write_yaml(
        root / "data.yaml", {"train": "images/train", "validation": "images/val", "names": NAMES}
    )
    assert list(resolve_source(config).splits) == ["train", "val"]


def test_folder_source_without_yaml(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    write_split(root, "train", {"a.jpg": [box(0)], "b.jpg": None})
    write_split(root, "val", {"c.jpg": [box(1)]})
    (root / "classes.txt").write_text("cat\ndog\n\n")
    src = resolve_source(root)
    assert src.config is None
    assert src.class_names == ("cat", "dog")
    assert list(src.splits) == ["train", "val"]
    assert src.splits["val"].definition == ("images/val",)


def test_folder_source_names_txt_and_test_split(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    for split in ("train", "val", "test"):
        write_split(root, split, {f"{split}.jpg": [box(0)]})
    (root / "names.txt").write_text("pallet\n")
    src = resolve_source(root)
    assert src.class_names == ("pallet",)
    assert list(src.splits) == ["train", "val", "test"]


def test_folder_source_without_names_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    write_split(root, "train", {"a.jpg": [box(0)]})
    write_split(root, "val", {"b.jpg": [box(0)]})
    with pytest.raises(InvalidInput, match=r"no class names found.*classes\.txt"):
        resolve_source(root)


def test_folder_is_walked_recursively_skipping_hidden_and_non_images(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    write_split(root, "train", {"a.jpg": [box(0)]})
    write_image(root / "images" / "train" / "sub" / "deeper" / "b.JPEG")
    write_image(root / "images" / "train" / ".hidden.jpg")
    write_image(root / "images" / "train" / ".cache" / "c.jpg")
    write_image(root / "images" / "train" / "notes.md")
    write_image(root / "images" / "train" / "noext")
    write_split(root, "val", {"v.jpg": [box(0)]})
    config = write_yaml(root / "data.yaml", {"train": "images/train", "val": "images/val", "names": NAMES})
    assert _rel(resolve_source(config).splits["train"].images, root) == [
        "images/train/a.jpg",
        "images/train/sub/deeper/b.JPEG",
    ]


@pytest.mark.parametrize("ext", sorted(IMAGE_EXTENSIONS))
def test_every_ultralytics_image_extension_counts(tmp_path: Path, ext: str) -> None:
    root = tmp_path / "ds"
    write_split(root, "train", {f"x.{ext.upper()}": [box(0)], f"y.{ext}": None})
    write_split(root, "val", {"v.jpg": None})
    config = write_yaml(root / "data.yaml", {"train": "images/train", "val": "images/val", "names": NAMES})
    assert len(resolve_source(config).splits["train"].images) == 2


def test_label_rule_replaces_the_last_images_component() -> None:
    sep = os.sep
    image = sep.join(["", "data", "images", "set", "images", "train", "a.b.jpg"])
    assert label_path_for(image) == sep.join(["", "data", "images", "set", "labels", "train", "a.b.txt"])
    # No images component: the label sits beside the image.
    flat = sep.join(["", "data", "train", "a.png"])
    assert label_path_for(flat) == sep.join(["", "data", "train", "a.txt"])
    # "myimages" is not an images component.
    odd = sep.join(["", "data", "myimages", "a.png"])
    assert label_path_for(odd) == sep.join(["", "data", "myimages", "a.txt"])


@pytest.mark.parametrize(
    "folder",
    [
        ["", "r", "images", "train"],
        ["", "r", "images"],
        ["", "r", "x"],
        ["", "r", "images", "a", "images", "b"],
        ["", "images", "images"],
    ],
)
def test_label_folder_agrees_with_the_label_rule(folder: list[str]) -> None:
    path = os.sep.join(folder)
    assert os.path.dirname(label_path_for(path + os.sep + "img.jpg")) == label_dir_for(path)


def test_labels_beside_images_when_no_images_folder(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    write_image(root / "train" / "a.jpg")
    write_label(root / "train" / "a.txt", [box(1)])
    write_image(root / "val" / "b.jpg")
    config = write_yaml(root / "data.yaml", {"train": "train", "val": "val", "names": NAMES})
    m = build_manifest(config)
    assert [e.path for e in m.splits["train"].labels] == ["train/a.txt"]
    assert m.splits["train"].class_instances == (0, 1, 0)
    assert m.splits["val"].backgrounds == 1


def test_repeated_entries_and_lines_count_once(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    write_split(root, "train", {"a.jpg": [box(0)], "b.jpg": [box(1)]})
    write_split(root, "val", {"v.jpg": [box(0)]})
    (root / "val.txt").write_text("images/val/v.jpg\n./images/val/v.jpg\n")
    config = write_yaml(
        root / "data.yaml",
        {"train": ["images/train", "images/train", "images"], "val": "val.txt", "names": NAMES},
    )
    src = resolve_source(config)
    assert _rel(src.splits["train"].images, root) == [
        "images/train/a.jpg",
        "images/train/b.jpg",
        "images/val/v.jpg",
    ]
    assert _rel(src.splits["val"].images, root) == ["images/val/v.jpg"]
    assert build_manifest(config).splits["train"].class_instances == (2, 1, 0)
