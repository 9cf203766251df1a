"""``McpOptions``: the ``mcp:`` mapping of a ``kind: mcp`` stream, and its validation.

Pure: no I/O. ``parse_options`` turns a plain mapping (from YAML or Python) into a frozen
value, raising ``ValueError`` with the key path on the first problem; the config loader
calls ``read_options`` to get every problem with its line instead.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "HANDSHAKE_VERSIONS",
    "LISTEN_MODES",
    "MCP_KEYS",
    "MODERN_VERSIONS",
    "McpOptions",
    "parse_options",
]

HANDSHAKE_VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05")
"""Protocol versions reached through ``initialize`` (newest first)."""
MODERN_VERSIONS = ("2026-07-28",)
"""Protocol versions of the sessionless per-request transport (SEP-2575)."""
KNOWN_VERSIONS = MODERN_VERSIONS + HANDSHAKE_VERSIONS
LISTEN_MODES = ("auto", "get", "subscriptions", "none")

MCP_KEYS = (
    "protocol_versions",
    "client_info",
    "listen",
    "listen_filter",
    "after_initialize",
    "ping_interval",
    "conflict_reinit_after",
    "unresumable_after",
    "persist_session",
    "delete_on_stop",
    "legacy_sse",
)

_DEFAULT_FILTER = (
    ("toolsListChanged", True),
    ("promptsListChanged", True),
    ("resourcesListChanged", True),
)


@dataclass(frozen=True, slots=True)
class McpOptions:
    """How a ``kind: mcp`` stream talks to its server.

    Attributes:
        protocol_versions: versions offered, newest first. A 2026-07-28 entry makes the
            stream probe ``server/discover`` first (basic/versioning: era detection).
        client_info: ``clientInfo`` sent in ``initialize`` (and in 2026 ``_meta``).
        listen: ``auto`` (the era's listening channel), ``get`` (legacy GET only, no 2026
            probe), ``subscriptions`` (2026 ``subscriptions/listen`` only) or ``none``.
        listen_filter: the 2026 ``subscriptions/listen`` filter (JSON text of a mapping).
        after_initialize: ``(method, params JSON)`` requests replayed after every
            (re)initialize, e.g. ``resources/subscribe``.
        ping_interval: seconds between ``ping`` requests while no listening stream is
            open (405, ``listen: none``); 0 disables.
        conflict_reinit_after: consecutive 409s on GET before the session is replaced.
        unresumable_after: resume attempts that bring nothing back before the cursor is
            dropped (and ``mcp/gap`` published).
        persist_session: keep the session on stop (no DELETE) so it can be resumed.
        delete_on_stop: DELETE the session on stop (2025 spec, "Session Management").
        legacy_sse: fall back to the 2024-11-05 HTTP+SSE transport when ``initialize``
            gets 400, 404 or 405 (2025-11-25 transports, "Backwards Compatibility").
    """

    protocol_versions: tuple[str, ...] = KNOWN_VERSIONS
    client_info: tuple[tuple[str, str], ...] = (("name", "streamvisor"), ("version", "0.1"))
    listen: str = "auto"
    listen_filter: str = json.dumps(dict(_DEFAULT_FILTER))
    after_initialize: tuple[tuple[str, str], ...] = ()
    ping_interval: float = 30.0
    conflict_reinit_after: int = 3
    unresumable_after: int = 3
    persist_session: bool = False
    delete_on_stop: bool = True
    legacy_sse: bool = True

    @property
    def handshake_versions(self) -> tuple[str, ...]:
        """The offered versions reached through ``initialize``, newest first."""
        return tuple(v for v in self.protocol_versions if v not in MODERN_VERSIONS)

    @property
    def modern_version(self) -> str | None:
        """The 2026-era version to probe first, or None when the era is not offered or
        ``listen: get`` rules it out."""
        if self.listen == "get":
            return None
        return next((v for v in self.protocol_versions if v in MODERN_VERSIONS), None)

    def client_info_dict(self) -> dict[str, str]:
        return dict(self.client_info)

    def filter_dict(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.listen_filter)
        return value

    def after_initialize_calls(self) -> list[tuple[str, dict[str, Any] | None]]:
        return [(m, json.loads(p) if p else None) for m, p in self.after_initialize]


def parse_options(value: Mapping[str, Any] | McpOptions | None) -> McpOptions:
    """Validate an ``mcp:`` mapping (or pass an ``McpOptions`` through).

    Raises:
        ValueError: ``mcp.KEY: message`` for the first problem found.
    """
    if isinstance(value, McpOptions):
        return value
    if value is None:
        return McpOptions()
    if not isinstance(value, Mapping):
        raise ValueError(f"mcp: expected a mapping, got {type(value).__name__}")
    problems: list[tuple[str, str]] = []
    result = read_options(value, lambda key, msg: problems.append((key, msg)))
    if problems or result is None:
        key, msg = problems[0] if problems else ("", "invalid")
        raise ValueError(f"mcp.{key}: {msg}" if key else f"mcp: {msg}")
    return result


Report = Callable[[str, str], None]


def read_options(value: Mapping[str, Any], report: Report) -> McpOptions | None:
    """Validate a plain ``mcp:`` mapping, calling ``report(key_path, message)`` for every
    problem (key paths relative to ``mcp``). Returns None when anything was reported."""
    kwargs: dict[str, Any] = {}
    before = [0]

    def bad(key: str, msg: str) -> None:
        before[0] += 1
        report(key, msg)

    for key, raw in value.items():
        if key not in MCP_KEYS:
            close = difflib.get_close_matches(str(key), MCP_KEYS, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}?" if close else f"expected {', '.join(MCP_KEYS)}"
            bad(str(key), f"unknown key ({hint})")
            continue
        reader = _READERS[key]
        parsed = reader(key, raw, bad)
        if parsed is not _BAD:
            kwargs[key] = parsed
    if before[0]:
        return None
    return McpOptions(**kwargs)


class _Bad:
    pass


_BAD: Any = _Bad()


def _versions(key: str, raw: Any, bad: Report) -> Any:
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, Sequence) or not items:
        bad(key, "expected a non-empty list of protocol versions")
        return _BAD
    out: list[str] = []
    for i, item in enumerate(items):
        if item not in KNOWN_VERSIONS:
            bad(f"{key}[{i}]", f"unknown protocol version {item!r} ({', '.join(KNOWN_VERSIONS)})")
            return _BAD
        if item not in out:
            out.append(item)
    return tuple(out)


def _client_info(key: str, raw: Any, bad: Report) -> Any:
    if not isinstance(raw, Mapping) or not all(isinstance(v, str | int) for v in raw.values()):
        bad(key, "expected a mapping of strings, e.g. {name: streamvisor, version: '1.0'}")
        return _BAD
    info = {str(k): str(v) for k, v in raw.items()}
    info.setdefault("name", "streamvisor")
    info.setdefault("version", "0.1")
    return tuple(info.items())


def _listen(key: str, raw: Any, bad: Report) -> Any:
    if raw not in LISTEN_MODES:
        bad(key, f"expected one of {', '.join(LISTEN_MODES)}, got {raw!r}")
        return _BAD
    return raw


def _listen_filter(key: str, raw: Any, bad: Report) -> Any:
    if not isinstance(raw, Mapping):
        bad(key, "expected a mapping such as {toolsListChanged: true}")
        return _BAD
    uris = raw.get("resourceSubscriptions")
    if uris is not None and (
        not isinstance(uris, list) or not all(isinstance(u, str) for u in uris)
    ):
        bad(f"{key}.resourceSubscriptions", "expected a list of URIs")
        return _BAD
    return json.dumps(dict(raw), sort_keys=True)


def _after_initialize(key: str, raw: Any, bad: Report) -> Any:
    if not isinstance(raw, list):
        bad(key, "expected a list of {method, params} mappings")
        return _BAD
    out: list[tuple[str, str]] = []
    for i, item in enumerate(raw):
        where = f"{key}[{i}]"
        if not isinstance(item, Mapping) or not isinstance(item.get("method"), str):
            bad(where, "expected a mapping with a 'method' string and optional 'params'")
            return _BAD
        extra = set(item) - {"method", "params"}
        if extra:
            bad(f"{where}.{sorted(extra)[0]}", "unknown key (expected method or params)")
            return _BAD
        params = item.get("params")
        if params is not None and not isinstance(params, Mapping):
            bad(f"{where}.params", "expected a mapping")
            return _BAD
        try:
            text = json.dumps(params, sort_keys=True) if params is not None else ""
        except (TypeError, ValueError):
            bad(f"{where}.params", "must be JSON (strings, numbers, booleans, lists, mappings)")
            return _BAD
        out.append((item["method"], text))
    return tuple(out)


def _number(key: str, raw: Any, bad: Report) -> Any:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        bad(key, f"expected a number of seconds >= 0, got {raw!r}")
        return _BAD
    if raw < 0:
        bad(key, f"must be at least 0, got {raw:g}")
        return _BAD
    return float(raw)


def _count(key: str, raw: Any, bad: Report) -> Any:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        bad(key, f"expected an integer >= 1, got {raw!r}")
        return _BAD
    return raw


def _flag(key: str, raw: Any, bad: Report) -> Any:
    if not isinstance(raw, bool):
        bad(key, f"expected true or false, got {raw!r}")
        return _BAD
    return raw


_READERS: dict[str, Callable[[str, Any, Report], Any]] = {
    "protocol_versions": _versions,
    "client_info": _client_info,
    "listen": _listen,
    "listen_filter": _listen_filter,
    "after_initialize": _after_initialize,
    "ping_interval": _number,
    "conflict_reinit_after": _count,
    "unresumable_after": _count,
    "persist_session": _flag,
    "delete_on_stop": _flag,
    "legacy_sse": _flag,
}
