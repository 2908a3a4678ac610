"""Dataset sources: a data.yaml or a folder, resolved to class names and per-split images.

The rules are Ultralytics' (``check_det_dataset``, ``get_img_files``, ``img2label_paths``):
a split is a folder (walked recursively, hidden names skipped), a text file listing images,
or a list of those; a label is the image path with its last ``/images/`` component
replaced by ``/labels/`` and its extension by ``.txt``. A data.yaml's ``path:`` is resolved
as the installed Ultralytics resolves it (``datasets.root``: a relative one from the
current folder, then Ultralytics' datasets_dir), and by trialbook's rule (the yaml's
folder) without Ultralytics; a listed image path without ``./`` is read from the dataset
root.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from trialbook.core.text import problem as text_problem
from trialbook.datasets.root import RootChoice, choose_root, entry_path, split_entries
from trialbook.datasets.yamlfile import read_yaml
from trialbook.errors import InvalidInput

SPLITS = ("train", "val", "test")
REQUIRED_SPLITS = ("train", "val")
IMAGE_EXTENSIONS = frozenset(
    {"bmp", "dng", "jpeg", "jpg", "mpo", "png", "tif", "tiff", "webp", "pfm", "heic"}
)
CONFIG_NAMES = ("data.yaml", "dataset.yaml", "data.yml", "dataset.yml")
CLASS_LIST_NAMES = ("classes.txt", "names.txt")

_IMAGE_SUFFIXES = tuple(f".{ext}" for ext in sorted(IMAGE_EXTENSIONS))
_IMAGES_PART = f"{os.sep}images{os.sep}"
_LABELS_PART = f"{os.sep}labels{os.sep}"


@dataclass(frozen=True)
class SplitSource:
    """One split as the source defines it.

    ``definition`` holds the split's entries as paths relative to the dataset root (POSIX
    separators), ``entries`` the same entries as absolute paths (folders or list files), and
    ``folders`` every image of the split as ``{absolute folder: sorted file names}``.
    """

    name: str
    definition: tuple[str, ...]
    entries: tuple[str, ...]
    folders: dict[str, list[str]] = field(repr=False)

    @cached_property
    def images(self) -> tuple[str, ...]:
        """Every image of the split: absolute paths, sorted, without duplicates."""
        return tuple(
            sorted(folder + os.sep + name for folder, names in self.folders.items() for name in names)
        )

    @property
    def image_count(self) -> int:
        return sum(len(names) for names in self.folders.values())


@dataclass(frozen=True)
class DatasetSource:
    """A resolved dataset: its root folder, the config file used (if any), class names,
    splits in ``SPLITS`` order (``test`` only when the source defines one), and warnings
    about where a relative ``path:`` may lead training (``datasets.root``)."""

    root: str
    config: str | None
    class_names: tuple[str, ...]
    splits: dict[str, SplitSource]
    warnings: tuple[str, ...] = ()

    def where_listed(self, split: str, image: str) -> str | None:
        """``file:line`` of the list file that names ``image`` in ``split``, if any.

        Used only to word error messages, so it re-reads the list files."""
        for entry in self.splits[split].entries:
            if not os.path.isfile(entry):
                continue
            for lineno, path in _iter_list_file(entry, self.root):
                if path == image:
                    return f"{entry}:{lineno}"
        return None


def label_path_for(image: str) -> str:
    """The label file Ultralytics reads for ``image`` (an OS path string): the last
    ``/images/`` becomes ``/labels/`` and the extension ``.txt``."""
    head, sep, tail = image.rpartition(_IMAGES_PART)
    path = head + _LABELS_PART + tail if sep else image
    return path.rsplit(".", 1)[0] + ".txt"


def label_dir_for(folder: str) -> str:
    """The folder of the labels of the images directly in ``folder``; equal to
    ``dirname(label_path_for(folder + sep + name))`` for every image ``name``."""
    head, sep, tail = (folder + os.sep).rpartition(_IMAGES_PART)
    path = head + _LABELS_PART + tail if sep else folder + os.sep
    return path[:-1] if len(path) > 1 else path


def label_name_for(image_name: str) -> str:
    """The label file name of an image file name."""
    return image_name.rsplit(".", 1)[0] + ".txt"


def is_image_name(name: str) -> bool:
    """True when ``name`` has one of Ultralytics' image extensions (case-insensitive)."""
    return name.lower().endswith(_IMAGE_SUFFIXES)


def resolve_source(source: str | os.PathLike[str], *, path_rule: str | None = None) -> DatasetSource:
    """Resolve a data.yaml file or a dataset folder; raise ``InvalidInput`` naming what is
    wrong and where. ``path_rule``: how a data.yaml's ``path:`` is read, one of
    ``datasets.root.PATH_RULES`` (default: Ultralytics' rule when it is installed)."""
    path = Path(os.path.expanduser(os.fspath(source)))
    try:
        is_dir = path.is_dir()
        is_file = path.is_file()
    except OSError as exc:
        raise InvalidInput(f"cannot read dataset source {path}: {explain_error(exc)}") from None
    if is_dir:
        for name in CONFIG_NAMES:
            if (path / name).is_file():
                return _from_yaml(path / name, path_rule)
        return _from_folder(path)
    if is_file:
        return _from_yaml(path, path_rule)
    raise InvalidInput(f"dataset source {path} does not exist (give a data.yaml or a folder)")


# -- data.yaml -------------------------------------------------------------------------------


def _read_config(config: Path) -> tuple[Path, dict[Any, Any]]:
    config = _resolve(config, f"dataset config {config}")
    try:
        data = read_yaml(config)  # YamlError (an InvalidInput) names the file and line
    except OSError as exc:
        raise InvalidInput(f"cannot read dataset config {config}: {explain_error(exc)}") from None
    if not isinstance(data, dict):
        raise InvalidInput(
            f"{config}: expected a mapping with 'path', 'train', 'val' and 'names', got {type(data).__name__}"
        )
    return config, data


def root_warnings(source: str | os.PathLike[str], *, path_rule: str | None = None) -> list[str]:
    """The warnings about a data.yaml's relative ``path:`` (``datasets.root``), without
    reading its images; ``[]`` for a folder, or a file that cannot be read (resolving the
    source reports that with its own message)."""
    path = Path(os.path.expanduser(os.fspath(source)))
    if path.is_dir():
        path = next((path / n for n in CONFIG_NAMES if (path / n).is_file()), path)
    if not path.is_file():
        return []
    try:
        config, data = _read_config(path)
        return list(choose_root(data, config, path_rule).warnings)
    except InvalidInput:
        return []


def _from_yaml(config: Path, path_rule: str | None = None) -> DatasetSource:
    config, data = _read_config(config)
    names = _class_names(data, config)
    choice = choose_root(data, config, path_rule)
    root = _yaml_root(choice, data, config)
    splits: dict[str, SplitSource] = {}
    for split in SPLITS:
        value = data.get(split)
        if split == "val" and value in (None, "", []):
            value = data.get("validation")  # Ultralytics accepts this spelling too
        if value in (None, "", []):
            if split in REQUIRED_SPLITS:
                raise InvalidInput(
                    f"{config}: no '{split}' split (a folder, a .txt list of images, or a list of those)"
                )
            continue
        splits[split] = _split_from_value(split, value, root, config, choice)
    return DatasetSource(
        root=str(root), config=str(config), class_names=names, splits=splits, warnings=choice.warnings
    )


def _class_names(data: dict[Any, Any], config: Path) -> tuple[str, ...]:
    """The class names, as Ultralytics reads them (``check_det_dataset``,
    ``check_class_names``): ``names`` is a list, or a mapping of class id (an integer, or
    its digits as text) to name, with ids 0..n-1; without ``names``, ``nc`` classes named
    ``class_0`` ... Each name is text (an integer is taken as its digits, as Ultralytics
    does); ``nc``, when given, must be the number of names, and no name may repeat."""
    raw = data.get("names")
    nc = data.get("nc")
    if raw is None:
        return _numbered_names(nc, config)
    items = _name_items(raw, config)
    if not items:
        raise InvalidInput(f"{config}: 'names' is empty")
    if len(items) > _MAX_CLASSES:
        raise InvalidInput(
            f"{config}: 'names' has {len(items)} classes; the most trialbook counts is {_MAX_CLASSES}"
        )
    names = [_class_name(i, v, config) for i, v in items]
    _check_unique(names, str(config))
    if nc is not None and (isinstance(nc, bool) or not isinstance(nc, int) or nc != len(names)):
        raise InvalidInput(f"{config}: 'nc' is {nc!r} but 'names' has {len(names)} classes")
    return tuple(names)


_MAX_CLASSES = 100_000


def _numbered_names(nc: Any, config: Path) -> tuple[str, ...]:
    """Without ``names``: ``nc`` classes named ``class_0``, ``class_1`` ... (Ultralytics)."""
    if nc is None:
        raise InvalidInput(
            f"{config}: no 'names' (the class names, as a list or as {{0: name, 1: name, ...}})"
        )
    if isinstance(nc, bool) or not isinstance(nc, int) or nc < 1:
        raise InvalidInput(f"{config}: 'nc' must be a whole number of classes >= 1, got {nc!r}")
    if nc > _MAX_CLASSES:
        raise InvalidInput(f"{config}: 'nc' is {nc}; the most trialbook counts is {_MAX_CLASSES}")
    return tuple(f"class_{i}" for i in range(nc))


def _name_items(raw: Any, config: Path) -> list[tuple[int, Any]]:
    """``(class id, name)`` of a ``names`` list or mapping, by id."""
    if isinstance(raw, list):
        return list(enumerate(raw))
    if not isinstance(raw, dict):
        raise InvalidInput(
            f"{config}: 'names' must be a list or a mapping of class id to name, got "
            f"{type(raw).__name__} {raw!r:.60}"
        )
    items = sorted(((_class_id(k, config), v) for k, v in raw.items()), key=lambda item: item[0])
    ids = [i for i, _ in items]
    if ids != list(range(len(ids))):
        raise InvalidInput(
            f"{config}: 'names' keys must be class ids 0..{len(ids) - 1} without gaps; got {ids[:20]}"
        )
    return items


def _check_unique(names: list[str] | tuple[str, ...], where: str) -> None:
    """``InvalidInput`` naming the first class name given twice, with both class ids."""
    first: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in first:
            raise InvalidInput(
                f"{where}: class name {name!r} is given twice (class {first[name]} and class {i}); "
                "per-class counts need one name per class"
            )
        first[name] = i


def _class_id(key: Any, config: Path) -> int:
    """A key of a ``names`` mapping as a class id: an integer, or its digits as text."""
    if isinstance(key, int) and not isinstance(key, bool):
        return key
    if isinstance(key, str) and key.strip().isdecimal():
        return int(key.strip())
    raise InvalidInput(f"{config}: 'names' keys must be class ids 0, 1, 2, ...; got {key!r:.60}")


def _class_name(class_id: int, value: Any, config: Path) -> str:
    """A class name: text, or an integer (Ultralytics takes ``7`` as ``"7"``); anything
    else is refused, naming the class."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        hint = (
            " (YAML reads yes/no/on/off/true/false unquoted as a boolean: quote the name)"
            if isinstance(value, bool)
            else " (quote it if it is a name)"
            if value is None or isinstance(value, float)
            else ""
        )
        raise InvalidInput(
            f"{config}: the name of class {class_id} must be text, got {type(value).__name__} "
            f"{value!r:.60}{hint}"
        )
    why = text_problem(value)
    if why is not None:
        raise InvalidInput(f"{config}: the name of class {class_id} {value!r:.60} {why}")
    if not value.strip():
        raise InvalidInput(f"{config}: the name of class {class_id} is empty")
    return value


def _yaml_root(choice: RootChoice, data: dict[Any, Any], config: Path) -> Path:
    raw = data.get("path")
    root = _resolve(choice.root, f"{config}: dataset path {raw!r}")
    if not root.is_dir():
        raise InvalidInput(f"{config}: dataset path {raw!r} is {root}, which is not a folder{choice.hint}")
    return root


def _split_from_value(split: str, value: Any, root: Path, config: Path, choice: RootChoice) -> SplitSource:
    listed = isinstance(value, list)
    entries: list[str] = []
    for raw in split_entries(value):
        if not isinstance(raw, str) or not raw:
            raise InvalidInput(f"{config}: split '{split}' entry {raw!r} is not a path")
        path = entry_path(raw, root, choice.rule, listed=listed)
        path = _resolve(path, f"{config}: split '{split}' entry {raw!r}")
        try:
            os.stat(path)
        except OSError as exc:
            why = (
                "which does not exist"
                if isinstance(exc, FileNotFoundError)
                else f"which cannot be read: {explain_error(exc)}"
            )
            raise InvalidInput(
                f"{config}: split '{split}' entry {raw!r} is {path}, {why}{choice.hint}"
            ) from None
        entries.append(str(path))
    return _make_split(split, entries, root)


# -- plain folder ----------------------------------------------------------------------------


def _from_folder(folder: Path) -> DatasetSource:
    root = _resolve(folder, f"dataset folder {folder}")
    images = root / "images"
    if not (images / "train").is_dir():
        raise InvalidInput(
            f"dataset folder {root} has no data.yaml and no images/train folder; give a "
            "data.yaml, or lay the folder out as images/{train,val[,test]} + labels/..."
        )
    names = _class_list(root)
    if names is None:
        raise InvalidInput(
            f"dataset folder {root}: no class names found; add a data.yaml with 'names', or a "
            "classes.txt with one class name per line (class 0 first)"
        )
    splits: dict[str, SplitSource] = {}
    for split in SPLITS:
        path = images / split
        if not path.is_dir():
            if split in REQUIRED_SPLITS:
                raise InvalidInput(f"dataset folder {root}: split '{split}' folder {path} does not exist")
            continue
        splits[split] = _make_split(split, [str(_resolve(path, str(path)))], root)
    return DatasetSource(root=str(root), config=None, class_names=names, splits=splits)


def _class_list(root: Path) -> tuple[str, ...] | None:
    """The class names of the first class list file (``classes.txt``, ``names.txt``) in
    ``root``, one per line; ``None`` when there is none."""
    for candidate in CLASS_LIST_NAMES:
        path = root / candidate
        if not path.is_file():
            continue
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"cannot read class names {path}: {explain_error(exc)}") from None
        names = tuple(line.strip() for line in lines if line.strip())
        if not names:
            raise InvalidInput(f"class names file {path} is empty")
        _check_unique(names, str(path))
        return names
    return None


# -- listing images --------------------------------------------------------------------------


def _make_split(split: str, entries: list[str], root: Path) -> SplitSource:
    found: dict[str, list[str]] = {}
    repeated: set[str] = set()  # folders that may hold a name twice
    for entry in entries:
        if os.path.isdir(entry):
            repeated.update(_walk_images(entry, found))
        else:
            for _, path in _iter_list_file(entry, str(root)):
                folder, _, name = path.rpartition(os.sep)
                found.setdefault(folder, []).append(name)
                repeated.add(folder)
    if not found:
        where = ", ".join(entries)
        raise InvalidInput(
            f"split '{split}' has no images in {where} (image extensions: "
            f"{', '.join(sorted(IMAGE_EXTENSIONS))})"
        )
    # Sorted, without duplicates (a folder listed twice, a list naming an image twice).
    folders = {
        folder: sorted(set(names) if folder in repeated else names) for folder, names in sorted(found.items())
    }
    definition = tuple(relative_posix(entry, str(root)) for entry in entries)
    return SplitSource(name=split, definition=definition, entries=tuple(entries), folders=folders)


# A folder to walk, with the (device, inode) of it and its ancestors, to catch loops.
_Walk = tuple[str, dict[tuple[int, int], str]]


def _walk_images(folder: str, out: dict[str, list[str]]) -> set[str]:
    """Add every image under ``folder`` to ``out`` as ``{folder: names}`` (recursive,
    symlinks followed, hidden names skipped as glob does) and return the folders that
    were already there; raise on a symlink loop."""
    top = _stat_folder(folder)
    seen_before: set[str] = set()
    stack: list[_Walk] = [(folder, {(top.st_dev, top.st_ino): folder})]
    while stack:
        path, ancestors = stack.pop()
        try:
            names = os.listdir(path)
        except OSError as exc:
            raise InvalidInput(f"cannot read folder {path}: {explain_error(exc)}") from None
        images = [n for n in names if n.endswith(_IMAGE_SUFFIXES) or n.lower().endswith(_IMAGE_SUFFIXES)]
        if len(images) < len(names):  # other names: find the subfolders among them
            stack += _subfolders(path, ancestors)
        # A folder named like an image is taken as one, as glob does; reading it then
        # fails with a clear error.
        images = [n for n in images if not n.startswith(".")]
        if images:
            if path in out:
                seen_before.add(path)
            out.setdefault(path, []).extend(images)
    return seen_before


def _subfolders(path: str, ancestors: dict[tuple[int, int], str]) -> list[_Walk]:
    """The folders in ``path`` not named like images nor hidden, sorted, each with its
    ancestors; raise on a symlink loop."""
    try:
        with os.scandir(path) as it:
            subs = [
                e.path
                for e in it
                if not e.name.startswith(".") and not e.name.lower().endswith(_IMAGE_SUFFIXES) and e.is_dir()
            ]
    except OSError as exc:
        raise InvalidInput(f"cannot read folder {path}: {explain_error(exc)}") from None
    found: list[_Walk] = []
    for sub in sorted(subs):
        st = _stat_folder(sub)
        key = (st.st_dev, st.st_ino)
        if key in ancestors:
            raise InvalidInput(f"symlink loop: {sub} leads back to {ancestors[key]}")
        found.append((sub, {**ancestors, key: sub}))
    return found


def _stat_folder(folder: str) -> os.stat_result:
    try:
        return os.stat(folder)
    except OSError as exc:
        raise InvalidInput(f"cannot read folder {folder}: {explain_error(exc)}") from None


def _iter_list_file(listing: str, root: str) -> Iterator[tuple[int, str]]:
    """(line number, absolute image path) for each image named in a list file.

    ``./x`` is relative to the list file's folder (as in Ultralytics), any other relative
    path to the dataset root; lines whose extension is not an image's are skipped."""
    try:
        with open(listing, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read image list {listing}: {explain_error(exc)}") from None
    here = os.path.dirname(listing)
    for lineno, line in enumerate(lines, 1):
        text = line.strip()
        if not text or not is_image_name(text):
            continue
        text = os.path.expanduser(text)
        if text.startswith("./"):
            path = os.path.join(here, text[2:])
        elif os.path.isabs(text):
            path = text
        else:
            path = os.path.join(root, text)
        yield lineno, os.path.normpath(path)


# -- helpers ---------------------------------------------------------------------------------


def relative_posix(path: str, root: str) -> str:
    """``path`` relative to ``root`` with '/' separators (``..`` when outside the root)."""
    prefix = root if root.endswith(os.sep) else root + os.sep
    if path.startswith(prefix):
        rel = path[len(prefix) :]
    elif path == root:
        rel = "."
    else:
        try:
            rel = os.path.relpath(path, root)
        except ValueError:  # another drive on Windows
            rel = path
    return rel.replace(os.sep, "/") if os.sep != "/" else rel


def _resolve(path: Path, what: str) -> Path:
    try:
        return path.resolve()
    except RuntimeError:  # Python < 3.13 reports a symlink loop this way
        raise InvalidInput(f"symlink loop: {what} ({path})") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read {what} ({path}): {explain_error(exc)}") from None


def explain_error(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        if exc.errno == errno.ELOOP:
            return "symlink loop"
        if exc.strerror:
            return exc.strerror
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 text ({exc.reason} at byte {exc.start})"
    return str(exc)
