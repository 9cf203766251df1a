"""The ``Checker`` every config reader receives: it records located errors and warnings,
collects the secrets to mask in them, interpolates ``${VAR}`` for the walker, and reads
mappings and nested sections (the single-value readers come from ``readers``).

Pure: no I/O. Readers never raise: they record and return ``INVALID``, so one pass over the
file reports every problem, sorted by line, each once.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from streamvisor.config.interpolation import expand
from streamvisor.config.node import INVALID, Invalid, Node, describe
from streamvisor.config.readers import ValueReaders, either
from streamvisor.errors import ConfigError
from streamvisor.policy.redact import Redactor

__all__ = ["Checker", "Field", "order_problem"]

# A nested section's field: (keyword argument, Checker reader method, bounds).
Field = tuple[str, str, dict[str, float]]


@dataclass(slots=True)
class Checker(ValueReaders):
    """Collects located errors, warnings and secrets while the config is read."""

    source: str
    environ: Mapping[str, str]
    errors: list[ConfigError] = field(default_factory=list)
    warnings: list[ConfigError] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)
    files: dict[str, Node] = field(default_factory=dict)

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

    def file_path(self, node: Node, base_dir: str) -> str | Invalid:
        """A file the daemon writes; two keys naming one file are an error (two writers
        would interleave lines, or a file sink would "repair" the checkpoint database)."""
        path = ValueReaders.file_path(self, node, base_dir)
        if isinstance(path, str):
            key = os.path.normcase(os.path.abspath(path))
            config_file = os.path.join(base_dir, os.path.basename(self.source))
            first = self.files.setdefault(key, node)
            if key == os.path.normcase(os.path.abspath(config_file)):
                self.error(node.line, node.path, "this is the config file itself")
            elif first is not node:
                self.error(
                    node.line,
                    node.path,
                    f"the same file as {first.path} (line {first.line}): "
                    "each file needs its own writer",
                )
        return path

    # -- interpolation ---------------------------------------------------------------
    def interpolate(self, text: str, line: int, path: str) -> tuple[str, bool, bool]:
        """Expand ``${VAR}``, ``${VAR:-default}``, ``${VAR:?message}``; ``$${`` is ``${``.

        Returns the text, whether a secret-named variable went into it, and whether an
        error was recorded.
        """
        result = expand(text, self.environ)
        for value in result.secrets:
            self.add_secret(value)
        for message in result.errors:
            self.error(line, path, message)
        return result.text, result.secret, result.broken

    # -- mappings and sections -------------------------------------------------------
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
                message = f"unknown key {key!r} (expected {either(keys)})"
            else:
                message = f"unknown key {key!r}"
            self.error(child.key_line, child.path, message)
        return {key: child for key, child in entries.items() if key in keys}

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
            given = high_key in entries
            message = None if low is None else order_problem(low_key, low, high_key, high, given)
            if message is not None:
                where = entries[high_key if given else low_key]
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


def order_problem(
    low_key: str, low: float, high_key: str, high: float, high_given: bool
) -> str | None:
    """Why a lower bound above its upper bound is wrong, or None when ``high >= low``.

    The message belongs to the key the user gave: ``high_key`` when ``high_given`` (it is
    too small), else ``low_key`` (too big for the default ``high``). The config's sections
    and the command line's options (``--backoff-max``) share it, so both say the same.

    Args:
        low_key: how the lower bound is named, e.g. ``initial`` or ``--backoff-initial``.
        low: its value.
        high_key: how the upper bound is named.
        high: its value (given, or the default).
        high_given: whether the user gave ``high``.
    """
    if high >= low:
        return None
    if high_given:
        return f"must not be less than {low_key} ({low:g}), got {high:g}"
    return f"must not be more than {high_key} ({high:g}), got {low:g}"
