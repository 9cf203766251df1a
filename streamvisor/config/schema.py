"""Schema walking for the config loader: YAML nodes to located values, and typed readers.

``config.py`` decides what the config means; this module knows how to read it: it walks the
``yaml.compose()`` tree (so every value keeps its line and duplicate keys are caught),
interpolates ``${VAR}`` inside string scalars, and offers readers (number, integer, URL,
headers, ...) that record a located ``ConfigError`` instead of raising. Pure: no I/O.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import ipaddress
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final
from urllib.parse import parse_qsl, unquote, urlsplit

import yaml
from yaml.constructor import SafeConstructor

from streamvisor.errors import ConfigError
from streamvisor.policy.redact import (
    MASK,
    Redactor,
    is_secret_header,
    is_secret_name,
    is_secret_param,
    redact_url,
)

__all__ = [
    "INVALID",
    "Checker",
    "Field",
    "Invalid",
    "Node",
    "describe",
    "merge_nodes",
    "read_document",
]

_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"
_MAX_NODES = 100_000
_VAR = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:-|:\?)(.*))?", re.DOTALL)
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


# A nested section's field: (keyword argument, Checker reader method, bounds).
Field = tuple[str, str, dict[str, float]]


class Invalid:
    """Marker for a value that failed validation (the error is already recorded)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "INVALID"


INVALID: Final = Invalid()


@dataclass(slots=True)
class Node:
    """One value from the YAML document, with where it came from.

    Attributes:
        value: a scalar (str, int, float, bool, None, date), ``dict[str, Node]`` or
            ``list[Node]``.
        line: 1-based line of the value.
        path: dotted key path where it was written (``defaults.backoff.max``).
        key_line: line of the key that holds it (the value's line for list items).
        raw: a scalar's source text.
        secret: the value contains a secret (from a secret-named environment variable).
        broken: interpolation failed; the error is recorded, readers stay silent.
    """

    value: Any
    line: int
    path: str
    key_line: int
    raw: str | None = None
    secret: bool = False
    broken: bool = False

    @property
    def is_mapping(self) -> bool:
        return isinstance(self.value, dict)

    @property
    def is_list(self) -> bool:
        return isinstance(self.value, list)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _quote(text: str, limit: int = 60) -> str:
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return repr(text)


def describe(node: Node) -> str:
    """How a value is shown in messages (secrets masked, long strings cut)."""
    value = node.value
    if node.secret:
        return repr(MASK)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, _dt.date):
        return f"a date ({node.raw})"
    return str(value)


@dataclass(slots=True)
class Checker:
    """Collects located errors, warnings and secrets while the config is read."""

    source: str
    environ: Mapping[str, str]
    errors: list[ConfigError] = field(default_factory=list)
    warnings: list[ConfigError] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)

    # -- recording -------------------------------------------------------------------
    def error(self, line: int | None, path: str, message: str) -> None:
        self.errors.append(ConfigError(message, file=self.source, line=line, path=path))

    def warn(self, line: int | None, path: str, message: str) -> None:
        self.warnings.append(ConfigError(message, file=self.source, line=line, path=path))

    def add_secret(self, value: str) -> None:
        if value:
            self.secrets.add(value)

    def _final(self, items: Iterable[ConfigError]) -> list[ConfigError]:
        redactor = Redactor(self.secrets)
        seen: dict[tuple[int, str, str], ConfigError] = {}
        for item in items:
            message = redactor.scrub(item.message)
            key = (item.line or 0, item.path, message)
            if key not in seen:
                seen[key] = ConfigError(message, file=item.file, line=item.line, path=item.path)
        return [seen[key] for key in sorted(seen)]

    def final_errors(self) -> list[ConfigError]:
        """Errors without repeats, secrets scrubbed, sorted by line."""
        return self._final(self.errors)

    def final_warnings(self) -> list[ConfigError]:
        """Warnings without repeats, secrets scrubbed, sorted by line."""
        return self._final(self.warnings)

    # -- interpolation ---------------------------------------------------------------
    def interpolate(self, text: str, line: int, path: str) -> tuple[str, bool, bool]:
        """Expand ``${VAR}``, ``${VAR:-default}``, ``${VAR:?message}``; ``$${`` is ``${``.

        Returns the text, whether a secret-named variable went into it, and whether an
        error was recorded.
        """
        if "$" not in text:
            return text, False, False
        out: list[str] = []
        secret = broken = False
        i = 0
        while True:
            j = text.find("$", i)
            if j < 0:
                out.append(text[i:])
                break
            out.append(text[i:j])
            if text.startswith("$${", j):
                out.append("${")
                i = j + 3
                continue
            if not text.startswith("${", j):
                out.append("$")
                i = j + 1
                continue
            end = text.find("}", j + 2)
            match = _VAR.fullmatch(text, j + 2, end) if end >= 0 else None
            if match is None:
                shown = text[j : end + 1] if end >= 0 else text[j:]
                self.error(
                    line,
                    path,
                    f"bad variable reference {_quote(shown)}: use ${{VAR}}, ${{VAR:-default}} "
                    "or ${VAR:?message}, and $${ for a literal ${",
                )
                return text, False, True
            name, op, arg = match.groups()
            value = self.environ.get(name)
            if op == ":-" and not value:
                value = arg
            elif op == ":?" and not value:
                self.error(line, path, f"{name}: {arg}" if arg else f"{name} is not set")
                value, broken = "", True
            elif value is None:
                self.error(line, path, f"environment variable {name} is not set")
                value, broken = "", True
            if is_secret_name(name) and value:
                self.add_secret(value)
                secret = True
            out.append(value)
            i = end + 1
        return "".join(out), secret, broken

    # -- readers ---------------------------------------------------------------------
    def mapping(
        self,
        node: Node,
        keys: Sequence[str],
        *,
        misplaced: Mapping[str, str] | None = None,
    ) -> dict[str, Node] | Invalid:
        """The entries of a mapping with known ``keys``; unknown keys are reported."""
        if node.broken:
            return INVALID
        if not node.is_mapping:
            self.error(node.line, node.path, f"expected a mapping, got {describe(node)}")
            return INVALID
        entries: dict[str, Node] = node.value
        for key, child in entries.items():
            if key in keys:
                continue
            if misplaced and key in misplaced:
                self.error(child.key_line, child.path, misplaced[key])
                continue
            hint = difflib.get_close_matches(key, keys, n=1, cutoff=0.6)
            if hint:
                message = f"unknown key {key!r} (did you mean {hint[0]!r}?)"
            elif len(keys) <= 6:
                message = f"unknown key {key!r} (expected {_either(keys)})"
            else:
                message = f"unknown key {key!r}"
            self.error(child.key_line, child.path, message)
        return {key: child for key, child in entries.items() if key in keys}

    def number(
        self,
        node: Node,
        *,
        gt: float | None = None,
        ge: float | None = None,
        le: float | None = None,
    ) -> float | Invalid:
        """A finite number (ints and numeric strings accepted; bools are not numbers)."""
        if node.broken:
            return INVALID
        value = node.value
        number: float | None = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                number = None
        if number is None:
            self.error(node.line, node.path, f"expected a number, got {describe(node)}")
            return INVALID
        if not math.isfinite(number):
            self.error(node.line, node.path, f"expected a finite number, got {describe(node)}")
            return INVALID
        return self._range(node, number, gt=gt, ge=ge, le=le)

    def integer(
        self, node: Node, *, ge: float | None = None, le: float | None = None
    ) -> int | Invalid:
        """A whole number (integer strings accepted)."""
        if node.broken:
            return INVALID
        value = node.value
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str):
            try:
                number = int(value.strip())
            except ValueError:
                number = None
        if number is None:
            self.error(node.line, node.path, f"expected an integer, got {describe(node)}")
            return INVALID
        checked = self._range(node, number, ge=ge, le=le)
        return INVALID if isinstance(checked, Invalid) else number

    def _range(
        self,
        node: Node,
        number: float,
        *,
        gt: float | None = None,
        ge: float | None = None,
        le: float | None = None,
    ) -> float | Invalid:
        shown = describe(node) if node.secret else f"{number:g}"
        low_ok = (gt is None or number > gt) and (ge is None or number >= ge)
        high_ok = le is None or number <= le
        if low_ok and high_ok:
            return number
        if le is not None and ge is not None:
            message = f"must be between {ge:g} and {le:g}, got {shown}"
        elif not high_ok:
            message = f"must be at most {le:g}, got {shown}"
        elif gt is not None:
            message = f"must be greater than {gt:g}, got {shown}"
        else:
            message = f"must be at least {ge:g}, got {shown}"
        self.error(node.line, node.path, message)
        return INVALID

    def boolean(self, node: Node) -> bool | Invalid:
        """true/false (and the strings true/false/yes/no/on/off/1/0, from env values)."""
        if node.broken:
            return INVALID
        value = node.value
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        self.error(node.line, node.path, f"expected true or false, got {describe(node)}")
        return INVALID

    def string(self, node: Node, *, empty_ok: bool = False) -> str | Invalid:
        """A string; a plain number or date is taken as its source text."""
        if node.broken:
            return INVALID
        value = node.value
        if isinstance(value, str):
            text = value
        elif value is not None and not node.is_mapping and not node.is_list:
            text = node.raw if node.raw is not None else str(value)
        else:
            self.error(node.line, node.path, f"expected a string, got {describe(node)}")
            return INVALID
        if not text.strip() and not empty_ok:
            self.error(node.line, node.path, "must not be empty")
            return INVALID
        return text

    def choice(self, node: Node, options: Sequence[str], *, upper: bool = False) -> str | Invalid:
        """One of ``options`` (compared case-insensitively when ``upper``)."""
        text = self.string(node)
        if isinstance(text, Invalid):
            return INVALID
        wanted = text.strip().upper() if upper else text.strip()
        if wanted in options:
            return wanted
        hint = difflib.get_close_matches(wanted, options, n=1, cutoff=0.6)
        extra = f" (did you mean {hint[0]!r}?)" if hint else ""
        self.error(
            node.line, node.path, f"expected {_either(options)}, got {describe(node)}{extra}"
        )
        return INVALID

    def string_list(self, node: Node) -> list[tuple[str, Node]] | Invalid:
        """A non-empty list of non-empty strings (a single string is a list of one)."""
        if node.broken:
            return INVALID
        items = node.value if node.is_list else [node]
        if node.is_list and not items:
            self.error(node.line, node.path, "must not be empty (leave the key out for all)")
            return INVALID
        result: list[tuple[str, Node]] = []
        ok = True
        for item in items:
            text = self.string(item)
            if isinstance(text, Invalid):
                ok = False
            else:
                result.append((text, item))
        return result if ok else INVALID

    def url(self, node: Node) -> str | Invalid:
        """An http(s) URL with a host; its password and secret query values become secrets."""
        text = self.string(node)
        if isinstance(text, Invalid):
            return INVALID
        text = text.strip()
        try:
            parts = urlsplit(text)
            host = parts.hostname
            _ = parts.port  # raises ValueError on a bad port
        except ValueError:
            self.error(node.line, node.path, f"not a valid URL: {self._shown_url(node, text)}")
            return INVALID
        if parts.password:
            self.add_secret(parts.password)
            self.add_secret(unquote(parts.password))
        for name, value in parse_qsl(parts.query, keep_blank_values=False):
            if is_secret_param(name):
                self.add_secret(value)
        if parts.scheme.lower() not in ("http", "https"):
            self.error(
                node.line,
                node.path,
                f"expected an http:// or https:// URL, got {self._shown_url(node, text)}",
            )
            return INVALID
        if not host:
            self.error(node.line, node.path, f"URL has no host: {self._shown_url(node, text)}")
            return INVALID
        return text

    def _shown_url(self, node: Node, text: str) -> str:
        return repr(MASK) if node.secret else _quote(redact_url(text))

    def headers(self, node: Node) -> dict[str, str] | Invalid:
        """A mapping of header name to string value. Values are never shown in messages."""
        if node.broken:
            return INVALID
        if not node.is_mapping:
            self.error(node.line, node.path, f"expected a mapping, got {describe(node)}")
            return INVALID
        result: dict[str, str] = {}
        ok = True
        for name, child in node.value.items():
            if not _HEADER_NAME.fullmatch(name):
                self.error(child.key_line, child.path, f"{name!r} is not a valid header name")
                ok = False
                continue
            value = child.value
            if child.broken:
                ok = False
                continue
            if isinstance(value, str):
                text = value
            elif value is None or child.is_mapping or child.is_list:
                kind = "null" if value is None else "a mapping" if child.is_mapping else "a list"
                self.error(child.line, child.path, f"expected a string value, got {kind}")
                ok = False
                continue
            else:
                text = child.raw if child.raw is not None else str(value)
            if "\r" in text or "\n" in text:
                self.error(child.line, child.path, "header value must not contain line breaks")
                ok = False
                continue
            if is_secret_header(name):
                self.add_secret(text)
                scheme, _, credentials = text.strip().partition(" ")
                if credentials and scheme.isalpha():
                    self.add_secret(credentials.strip())
            result[name] = text
        return result if ok else INVALID

    def address(self, node: Node) -> tuple[str, int] | Invalid:
        """``HOST:PORT`` or ``[IPv6]:PORT`` (port 0 to 65535)."""
        text = self.string(node)
        if isinstance(text, Invalid):
            return INVALID
        parsed = _parse_address(text.strip())
        if isinstance(parsed, str):
            self.error(node.line, node.path, parsed)
            return INVALID
        return parsed

    # -- composite readers -----------------------------------------------------------
    def require(self, parent: Node, entries: Mapping[str, Node], keys: Sequence[str]) -> bool:
        """Report each of ``keys`` that is absent or null; True when any is missing."""
        missing = [key for key in keys if key not in entries or entries[key].value is None]
        for key in missing:
            self.error(parent.line, parent.path, f"missing required key {key!r}")
        return bool(missing)

    def section(
        self,
        node: Node,
        fields: Mapping[str, Field],
        *,
        order: tuple[str, str, float] | None = None,
    ) -> dict[str, Any] | Invalid:
        """Read a nested mapping; ``fields`` maps a key to (keyword, reader, bounds).

        ``order`` = (low key, high key, default high): the high value must not be below the
        low one (``backoff.max >= backoff.initial``).
        """
        entries = self.mapping(node, tuple(fields))
        if isinstance(entries, Invalid):
            return INVALID
        values: dict[str, Any] = {}
        ok = True
        for key, child in entries.items():
            name, reader, bounds = fields[key]
            value = getattr(self, reader)(child, **bounds)
            if isinstance(value, Invalid):
                ok = False
            else:
                values[name] = value
        if ok and order is not None:
            low_key, high_key, high_default = order
            low = values.get(fields[low_key][0])
            high = values.get(fields[high_key][0], high_default)
            if low is not None and high < low:
                if high_key in entries:
                    where = entries[high_key]
                    message = f"must not be less than {low_key} ({low:g}), got {high:g}"
                else:
                    where = entries[low_key]
                    message = f"must not be more than {high_key} ({high:g}), got {low:g}"
                self.error(where.line, where.path, message)
                ok = False
        return values if ok else INVALID

    def build(self, node: Node, cls: Callable[..., Any], values: Any) -> Any:
        """``cls(**values)``, its ValueError turned into an error at ``node``."""
        if isinstance(values, Invalid):
            return INVALID
        try:
            return cls(**values)
        except ValueError as exc:
            self.error(node.line, node.path, str(exc))
            return INVALID

    def json_value(self, node: Node) -> Any:
        """The plain value of a subtree that must be JSON (a request body)."""
        if node.broken:
            return INVALID
        if isinstance(node.value, dict):
            parts = {key: self.json_value(child) for key, child in node.value.items()}
            return INVALID if any(isinstance(v, Invalid) for v in parts.values()) else parts
        if isinstance(node.value, list):
            items = [self.json_value(child) for child in node.value]
            return INVALID if any(isinstance(v, Invalid) for v in items) else items
        if isinstance(node.value, str | int | float | bool) or node.value is None:
            return node.value
        self.error(node.line, node.path, f"a JSON value cannot hold {describe(node)}; quote it")
        return INVALID


def _parse_address(text: str) -> tuple[str, int] | str:
    bad = f"expected HOST:PORT such as 127.0.0.1:9108 or [::1]:9108, got {text!r}"
    if text.startswith("["):
        host, sep, port_text = text[1:].partition("]:")
        if not sep:
            return bad
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return f"{host!r} is not an IPv6 address"
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or not host:
            return bad
        if ":" in host:
            return f"an IPv6 address needs brackets, as in [::1]:9108; got {text!r}"
        if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?", host):
            return f"{host!r} is not a valid host name or address"
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        return f"port must be a number from 0 to 65535, got {port_text!r}"
    return host, int(port_text)


def _either(options: Sequence[str]) -> str:
    quoted = [repr(option) for option in options]
    if len(quoted) == 1:
        return quoted[0]
    return ", ".join(quoted[:-1]) + " or " + quoted[-1]


# -- document -> Node tree ---------------------------------------------------------------


class _Walker:
    def __init__(self, checker: Checker) -> None:
        self.checker = checker
        self.constructor = SafeConstructor()
        self.active: set[int] = set()
        self.count = 0
        self.too_big = False

    def walk(self, node: yaml.Node, path: str, key_line: int) -> Node:
        line = node.start_mark.line + 1
        self.count += 1
        if self.count > _MAX_NODES:
            if not self.too_big:
                self.checker.error(line, path, "document too large (too many values or aliases)")
                self.too_big = True
            return Node(None, line, path, key_line, broken=True)
        if id(node) in self.active:
            self.checker.error(line, path, "recursive YAML alias")
            return Node(None, line, path, key_line, broken=True)
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, line, path, key_line)
        self.active.add(id(node))
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
            child = self.walk(value_node, _join(path, key), key_line)
            if key in entries:
                first = entries[key].key_line
                self.checker.error(
                    key_line, _join(path, key), f"duplicate key {key!r} (first at line {first})"
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
                    entries.setdefault(key, replace(child, path=_join(path, key)))
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
    if root is None:
        checker.error(1, "", "the file is empty")
        return None
    tree = _Walker(checker).walk(root, "", root.start_mark.line + 1)
    if not tree.is_mapping:
        checker.error(tree.line, "", f"the top level must be a mapping, got {describe(tree)}")
        return None
    return tree


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
