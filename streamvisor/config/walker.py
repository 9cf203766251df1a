"""YAML text to a tree of located ``Node`` values, and the deep merge of two such trees.

The tree comes from ``yaml.compose()`` rather than ``yaml.safe_load()`` so that every value
keeps its line, duplicate keys are reported (PyYAML keeps the last one silently), and merge
keys (``<<: *base``), aliases and tags are handled here, once. String scalars are
interpolated (``${VAR}``) as they are met. A document is capped at 100,000 values so that an
alias bomb ("billion laughs") is an error, not an out-of-memory.

Pure: no I/O; the only module of the config package that knows PyYAML.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace

import yaml
from yaml.constructor import SafeConstructor

from streamvisor.config.checker import Checker
from streamvisor.config.node import Node, describe, join_path

__all__ = ["merge_nodes", "read_document"]

_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"
_MAX_NODES = 100_000
_MAX_DEPTH = 100
_TOO_DEEP = f"nested too deeply (more than {_MAX_DEPTH} levels)"


def read_document(text: str, checker: Checker) -> Node | None:
    """Parse ``text`` into a Node tree; None after recording a fatal problem."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or "invalid YAML"
        if exc.context:
            problem = f"{exc.context}, {problem}"
        if mark is not None:
            problem += f" (column {mark.column + 1})"
        checker.error(line, "", f"YAML syntax error: {problem}")
        return None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        checker.error(line, "", f"YAML syntax error: {exc.reason} (character {exc.character!r})")
        return None
    except yaml.YAMLError as exc:
        checker.error(None, "", f"YAML error: {exc}")
        return None
    except RecursionError:  # PyYAML's composer recurses once per nesting level
        checker.error(_too_deep_line(text), "", _TOO_DEEP)
        return None
    if root is None:
        checker.error(1, "", "the file is empty")
        return None
    walker = _Walker(checker)
    tree = walker.walk(root, "", root.start_mark.line + 1)
    if walker.too_big:  # the rest of the tree is cut off: its errors would be noise
        return None
    if not tree.is_mapping:
        checker.error(tree.line, "", f"the top level must be a mapping, got {describe(tree)}")
        return None
    return tree


def _too_deep_line(text: str) -> int | None:
    """The line where nesting first passes ``_MAX_DEPTH`` (the parser does not recurse)."""
    depth = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > _MAX_DEPTH and event.start_mark is not None:
                    return int(event.start_mark.line) + 1
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError:
        pass
    return None


def merge_nodes(
    base: Node, override: Node, *, whole: Iterable[str] = (), fold: Callable[[str], str] = str
) -> Node:
    """Deep-merge two mapping nodes: ``override`` wins; nested mappings merge key by key.

    Keys in ``whole`` are replaced as a whole (never merged). ``fold`` maps a key to the
    form compared (``str.lower`` for HTTP headers).
    """
    if not (base.is_mapping and override.is_mapping):
        return override
    result: dict[str, Node] = {}
    folded: dict[str, str] = {}
    for key, child in base.value.items():
        result[key] = child
        folded[fold(key)] = key
    for key, child in override.value.items():
        existing = folded.get(fold(key))
        if existing is not None:
            previous = result.pop(existing)
            if key not in whole and previous.is_mapping and child.is_mapping:
                sub_fold = str.lower if key == "headers" else str
                child = merge_nodes(previous, child, fold=sub_fold)
        result[key] = child
        folded[fold(key)] = key
    return replace(override, value=result)


class _Walker:
    def __init__(self, checker: Checker) -> None:
        self.checker = checker
        self.constructor = SafeConstructor()
        self.active: set[int] = set()
        self.count = 0
        self.too_big = False
        self.depth = 0
        self.too_deep = False

    def walk(self, node: yaml.Node, path: str, key_line: int) -> Node:
        line = node.start_mark.line + 1
        self.count += 1
        if self.count > _MAX_NODES:
            if not self.too_big:
                self.checker.error(line, "", "document too large (too many values or aliases)")
                self.too_big = True
            return Node(None, line, path, key_line, broken=True)
        if id(node) in self.active:
            self.checker.error(line, path, "recursive YAML alias")
            return Node(None, line, path, key_line, broken=True)
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, line, path, key_line)
        if self.depth >= _MAX_DEPTH:
            if not self.too_deep:  # once, and without its path: hundreds of "[0]"
                self.checker.error(line, "", _TOO_DEEP)
                self.too_deep = True
            return Node(None, line, path, key_line, broken=True)
        self.active.add(id(node))
        self.depth += 1
        try:
            if isinstance(node, yaml.SequenceNode):
                items = [
                    self.walk(child, f"{path}[{i}]", child.start_mark.line + 1)
                    for i, child in enumerate(node.value)
                ]
                return Node(items, line, path, key_line)
            assert isinstance(node, yaml.MappingNode)
            return Node(self._mapping(node, path), line, path, key_line)
        finally:
            self.depth -= 1
            self.active.discard(id(node))

    def _mapping(self, node: yaml.MappingNode, path: str) -> dict[str, Node]:
        entries: dict[str, Node] = {}
        merged: list[Node] = []
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            if key_node.tag == _MERGE_TAG:
                merged.append(self.walk(value_node, path, key_line))
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.checker.error(key_line, path, "keys must be plain strings")
                continue
            key = str(key_node.value)
            child = self.walk(value_node, join_path(path, key), key_line)
            if key in entries:
                first = entries[key].key_line
                self.checker.error(
                    key_line, join_path(path, key), f"duplicate key {key!r} (first at line {first})"
                )
                continue
            entries[key] = child
        # YAML merge keys (``<<: *base``): explicit keys win, earlier merges win.
        for source in merged:
            sources = source.value if source.is_list else [source]
            for item in sources:
                if not isinstance(item.value, dict):
                    self.checker.error(item.line, path, "'<<' must merge a mapping")
                    continue
                for key, child in item.value.items():
                    entries.setdefault(key, replace(child, path=join_path(path, key)))
        return entries

    def _scalar(self, node: yaml.ScalarNode, line: int, path: str, key_line: int) -> Node:
        raw = str(node.value)
        if node.tag == _STR_TAG:
            text, secret, broken = self.checker.interpolate(raw, line, path)
            return Node(text, line, path, key_line, raw=raw, secret=secret, broken=broken)
        try:
            value = self.constructor.construct_object(node)
        except yaml.constructor.ConstructorError:
            self.checker.error(line, path, f"unsupported YAML tag {node.tag!r}")
            return Node(None, line, path, key_line, raw=raw, broken=True)
        except ValueError:
            value = raw  # e.g. a timestamp-shaped string that is not a real date
        return Node(value, line, path, key_line, raw=raw)
