"""The one YAML reader (``trialbook.datasets.yamlfile``) and the data.yaml rules on it:
alias bombs, deep nesting, huge files and duplicate keys are refused at once, naming the
file and line; class names are text, as Ultralytics reads them, and unique."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from support.cli import invoke
from support.datasets import make_dataset
from trialbook.api import Book
from trialbook.datasets import resolve_source
from trialbook.datasets.yamlfile import MAX_ALIASES, MAX_BYTES, MAX_DEPTH, YamlError, parse_yaml, read_yaml
from trialbook.errors import InvalidInput


def alias_bomb(key: str = "names", width: int = 9, depth: int = 7) -> str:
    """``key: *g`` where ``g`` stands for ``width ** depth`` strings (a billion laughs)."""
    lines = [f"a0: &a0 [{', '.join(['lol'] * width)}]"]
    for level in range(1, depth):
        lines.append(f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * width)}]")
    lines.append(f"{key}: *a{depth - 1}")
    return "\n".join(lines) + "\n"


def dataset_yaml(tmp_path: Path, text: str) -> Path:
    """The default dataset, its data.yaml replaced by ``text`` plus its splits."""
    config = make_dataset(tmp_path / "ds")
    config.write_text("path: .\ntrain: images/train\nval: images/val\n" + text)
    return config


# --------------------------------------------------------------------------- the reader
def test_an_alias_bomb_is_refused_at_once_with_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(alias_bomb())
    started = time.monotonic()
    with pytest.raises(YamlError) as err:
        read_yaml(path)
    assert time.monotonic() - started < 2
    assert err.value.path == str(path) and err.value.line == 8  # names: *a6
    assert "aliases expand to" in str(err.value) and str(err.value).startswith(f"{path}: ")


def test_too_many_aliases_deep_nesting_and_recursion_are_refused(tmp_path: Path) -> None:
    many = "a: &a x\nb: [" + ", ".join(["*a"] * (MAX_ALIASES + 1)) + "]\n"
    with pytest.raises(YamlError, match=f"more than {MAX_ALIASES} aliases") as err:
        parse_yaml(many, "many.yaml")
    assert err.value.line == 2
    deep = "x: " + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5) + "\n"
    with pytest.raises(YamlError, match="nests deeper than"):
        parse_yaml(deep, "deep.yaml")
    with pytest.raises(YamlError, match="recursive"):
        parse_yaml("a: &a [1, *a]\n", "self.yaml")
    # a few aliases, and merges, are fine
    doc = parse_yaml(
        "base: &b {lr0: 0.01, imgsz: 640}\nrun:\n  <<: *b\n  imgsz: 1024\nagain: *b\n", "ok.yaml"
    )
    assert doc["run"] == {"lr0": 0.01, "imgsz": 1024} and doc["again"] == {"lr0": 0.01, "imgsz": 640}


def test_a_file_too_large_is_refused_without_parsing(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"# " + b"x" * MAX_BYTES + b"\n")
    with pytest.raises(YamlError, match="larger than 2 MiB"):
        read_yaml(path)


def test_duplicate_keys_name_the_key_and_both_lines(tmp_path: Path) -> None:
    with pytest.raises(YamlError) as err:
        parse_yaml("train: a\nnames: [x]\nval: b\nnames: [y]\n", "data.yaml")
    assert err.value.line == 4
    assert str(err.value) == "data.yaml: key 'names' is given twice (on line 2 and line 4)"
    with pytest.raises(YamlError, match="key 'lr0' is given twice"):
        parse_yaml("hyp:\n  lr0: 0.1\n  lr0: 0.2\n", "opt.yaml")


def test_not_utf8_and_invalid_yaml_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_bytes(b"a: 1\nb: \xff\n")
    with pytest.raises(YamlError, match=r"is not UTF-8 text \(byte 8\)"):
        read_yaml(path)
    path.write_text("a: [1, 2\n")
    with pytest.raises(YamlError, match="not valid YAML") as err:
        read_yaml(path)
    assert err.value.line is not None and isinstance(err.value, InvalidInput)
    path.write_text("\ufeffa: 1\r\nb: two\r\n")
    assert read_yaml(path) == {"a": 1, "b": "two"}
    path.write_text("")
    assert read_yaml(path) is None


# --------------------------------------------------------------------------- data.yaml
def test_data_tag_refuses_an_alias_bomb_in_one_line(sqlite_book: Book, tmp_path: Path) -> None:
    config = dataset_yaml(tmp_path, alias_bomb())
    started = time.monotonic()
    result = invoke("data", "tag", "pallets", str(config), "--tag", "v1", catch_exceptions=False)
    assert time.monotonic() - started < 10
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"Error: {config.resolve()}: its aliases expand to") and "line 11" in line
    assert json.loads(invoke("data", "list", "--json").stdout)["versions"] == []


@pytest.mark.parametrize(
    ("names", "pattern"),
    [
        ("{0: {x: 1}}", r"the name of class 0 must be text, got dict"),
        ("[cat, [a, b]]", r"the name of class 1 must be text, got list"),
        ("[cat, ~]", r"the name of class 1 must be text, got NoneType"),
        ("[cat, no]", r"class 1 must be text, got bool False \(YAML reads yes/no"),
        ("[cat, dog, cat]", r"class name 'cat' is given twice \(class 0 and class 2\)"),
        ("{0: cat, 1: cat}", r"class name 'cat' is given twice"),
        ("{0: cat, true: dog}", r"'names' keys must be class ids"),
        ("cat", r"'names' must be a list or a mapping of class id to name, got str"),
        ("{0: cat, 2: dog}", r"class ids 0\.\.1 without gaps"),
    ],
)
def test_class_names_must_be_unique_text(tmp_path: Path, names: str, pattern: str) -> None:
    config = dataset_yaml(tmp_path, f"names: {names}\n")
    with pytest.raises(InvalidInput, match=pattern) as err:
        resolve_source(config)
    assert str(err.value).startswith(f"{config.resolve()}: ")


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("names: [cat, dog, bird]\n", ("cat", "dog", "bird")),
        ("names: {'2': bird, '0': cat, '1': dog}\n", ("cat", "dog", "bird")),
        ("names: [0, 1, 2]\n", ("0", "1", "2")),  # digits: Ultralytics takes them as names
        ("nc: 3\n", ("class_0", "class_1", "class_2")),  # no names: Ultralytics' class_N
    ],
)
def test_class_names_ultralytics_accepts(tmp_path: Path, text: str, names: tuple[str, ...]) -> None:
    assert resolve_source(dataset_yaml(tmp_path, text)).class_names == names


def test_a_duplicate_key_in_data_yaml_names_the_key_and_line(tmp_path: Path) -> None:
    config = dataset_yaml(tmp_path, "names: [cat, dog, bird]\ntrain: images/val\n")
    with pytest.raises(InvalidInput) as err:
        resolve_source(config)
    assert str(err.value) == f"{config.resolve()}: key 'train' is given twice (on line 2 and line 5)"


def test_a_duplicate_class_in_classes_txt_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    make_dataset(root).unlink()
    (root / "classes.txt").write_text("cat\ndog\ncat\n")
    with pytest.raises(InvalidInput, match=r"classes\.txt: class name 'cat' is given twice"):
        resolve_source(root)
