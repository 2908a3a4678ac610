"""The one YAML reader of trialbook: data.yaml, args.yaml / opt.yaml / hyp.yaml, MLflow's
meta.yaml, run config files.

``yaml.safe_load`` builds no objects but plain data, yet it still reads documents that
cost far more than their size: a few lines of aliases (``names: *g`` where ``g`` nests
nine aliases seven deep) stand for millions of strings, which whoever walks the result
(``str()``, flattening a config, JSON) then pays for. This reader refuses, before building
anything:

* a file larger than ``MAX_BYTES``;
* more than ``MAX_ALIASES`` alias nodes (``*name``), an alias of a node that holds itself,
  or aliases that would expand the document by more than ``MAX_EXPANSION`` nodes;
* nesting deeper than ``MAX_DEPTH``;
* a key given twice in one mapping (YAML says keys are unique; PyYAML keeps the last
  silently). A key that overrides one brought in by a merge (``<<: *base``) is fine.

Every refusal is a ``YamlError`` (an ``InvalidInput``) naming the file and, where it
applies, the line. Files must be UTF-8 (a BOM is allowed).
"""

from __future__ import annotations

import os
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from trialbook.errors import InvalidInput

__all__ = [
    "MAX_ALIASES",
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_EXPANSION",
    "YamlError",
    "parse_yaml",
    "read_yaml",
]

MAX_BYTES = 2 * 1024 * 1024
MAX_ALIASES = 100
MAX_EXPANSION = 10_000  # nodes the aliases may add to the document, all together
MAX_DEPTH = 64
_MERGE_TAG = "tag:yaml.org,2002:merge"


class YamlError(InvalidInput):
    """A YAML file that is refused: ``path``, ``line`` (1-based, or None) and what is
    wrong (``problem``, without the path)."""

    def __init__(self, path: str, problem: str, line: int | None = None) -> None:
        self.path = path
        self.problem = problem
        self.line = line
        where = f" (line {line})" if line is not None and f"line {line}" not in problem else ""
        super().__init__(f"{path}: {problem}{where}")


class _Refused(yaml.YAMLError):
    """A limit of this reader, raised from inside the loader (with the line)."""

    def __init__(self, problem: str, line: int | None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.line = line


class _Constructor(SafeConstructor):
    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG:
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:  # unhashable: SafeConstructor says so below
                    continue
                line = key_node.start_mark.line + 1
                if first is not None:
                    raise _Refused(f"key {key!r} is given twice (on line {first} and line {line})", line)
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


if yaml.__with_libyaml__:  # libyaml scans and parses; composing stays in Python (the limits)
    from yaml._yaml import CParser

    class _Base(Composer, CParser, _Constructor, Resolver):
        # Composer first: its Python compose_node (hooked below) replaces CParser's own
        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            Composer.__init__(self)
            _Constructor.__init__(self)
            Resolver.__init__(self)

else:  # pragma: no cover - PyYAML built without libyaml
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _Base(Reader, Scanner, Parser, Composer, _Constructor, Resolver):  # type: ignore[no-redef]
        def __init__(self, stream: str) -> None:
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)
            Composer.__init__(self)
            _Constructor.__init__(self)
            Resolver.__init__(self)


class _Loader(_Base):
    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.alias_count = 0
        self.depth = 0
        self.aliases: list[tuple[int | None, Node]] = []  # (line, the node it stands for)

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        mark = getattr(self.peek_event(), "start_mark", None)
        line = int(mark.line) + 1 if mark is not None else None
        if self.check_event(yaml.AliasEvent):
            self.alias_count += 1
            if self.alias_count > MAX_ALIASES:
                raise _Refused(f"uses more than {MAX_ALIASES} aliases (*name); trialbook reads no more", line)
            node = super().compose_node(parent, index)
            if node is not None:
                self.aliases.append((line, node))
            return node
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise _Refused(f"nests deeper than {MAX_DEPTH} levels", line)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _check_expansion(root: Node, aliases: list[tuple[int | None, Node]]) -> None:
    """Refuse a graph whose aliases would add more than ``MAX_EXPANSION`` nodes once
    expanded, or that holds itself (iterative: no recursion on deep documents)."""
    sizes: dict[int, int] = {}  # node id -> nodes it stands for, aliases expanded
    on_path: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, leaving = stack.pop()
        key = id(node)
        if leaving:
            on_path.discard(key)
            sizes[key] = 1 + sum(sizes[id(c)] for c in _children(node))
            continue
        if key in sizes:
            continue
        if key in on_path:
            line = node.start_mark.line + 1
            raise _Refused("an alias refers to a node that holds it (a recursive document)", line)
        if isinstance(node, ScalarNode):
            sizes[key] = 1
            continue
        on_path.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node) if id(c) not in sizes)
    extra = sizes[id(root)] - len(sizes)
    if extra > MAX_EXPANSION:
        line, node = max(aliases, key=lambda a: sizes.get(id(a[1]), 0))
        which = f"the alias on line {line}" if line is not None else "one alias"
        raise _Refused(
            f"its aliases expand to {sizes[id(root)]} nodes from {len(sizes)} written ({which} alone "
            f"to {sizes[id(node)]}); trialbook reads documents whose aliases add at most "
            f"{MAX_EXPANSION} nodes",
            line,
        )


def _line_of(exc: yaml.YAMLError, text: str) -> int | None:
    if isinstance(exc, _Refused):
        return exc.line
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is not None:
        return int(mark.line) + 1
    position = getattr(exc, "position", None)  # a ReaderError (a character YAML refuses)
    if isinstance(position, int):
        return text.count("\n", 0, position) + 1
    return None


def parse_yaml(text: str, path: str | os.PathLike[str]) -> Any:
    """The one document of ``text`` (read from ``path``, for messages) as plain data
    (``None`` for an empty document), within the limits of the module docstring;
    ``YamlError`` otherwise."""
    where = os.fspath(path)
    if len(text) > MAX_BYTES:
        raise YamlError(where, f"is {len(text)} characters long; trialbook reads YAML of up to {_mib()}")
    loader: _Loader | None = None
    try:
        loader = _Loader(text)
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node, loader.aliases)
        return loader.construct_document(node)
    except _Refused as exc:
        raise YamlError(where, exc.problem, exc.line) from None
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        context = getattr(exc, "context", None)
        if context and problem.startswith("but "):  # "expected a single document ..., but found"
            problem = f"{context}, {problem}"
        raise YamlError(where, f"not valid YAML: {problem}", _line_of(exc, text)) from None
    except RecursionError:  # pragma: no cover - MAX_DEPTH keeps well below the limit
        raise YamlError(where, f"nests deeper than {MAX_DEPTH} levels") from None
    finally:
        if loader is not None:
            loader.dispose()


def read_yaml(path: str | os.PathLike[str]) -> Any:
    """The document of the YAML file ``path`` (see :func:`parse_yaml`). ``YamlError`` for
    a file too large, not UTF-8 or refused; ``OSError`` when it cannot be read."""
    where = os.fspath(path)
    with open(where, "rb") as f:
        data = f.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise YamlError(where, f"is larger than {_mib()}; trialbook reads YAML files of up to {_mib()}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YamlError(where, f"is not UTF-8 text (byte {exc.start})") from None
    return parse_yaml(text, where)


def _mib() -> str:
    return f"{MAX_BYTES // (1024 * 1024)} MiB"
