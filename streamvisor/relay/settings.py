"""The relay's settings, and the reader of the config file's ``relay:`` section.

Pure: no I/O. ``RelayConfig`` is what both the CLI (``streamvisor relay``) and the daemon
(``relay:`` in the YAML) build; ``read_relay_section`` reports every problem through the
config ``Checker`` with its line, as every other section does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from streamvisor.config.schema import INVALID, Checker, Invalid, Node, describe

__all__ = ["STORES", "RelayConfig", "read_relay_section"]

STORES = ("memory", "sqlite")
_KEYS = ("listen", "streams", "history", "client", "auth", "cors")
_HISTORY_KEYS = ("max_events", "max_age", "store", "path")
# Each stream's replay ring preallocates its slots (8 bytes each): a million is 8 MB a stream.
MAX_HISTORY_EVENTS = 1_000_000
_CLIENT_KEYS = ("max_buffer_bytes", "heartbeat", "retry", "max_lifetime")


@dataclass(frozen=True, slots=True)
class RelayConfig:
    """How the relay listens, what it retains and how it treats clients.

    Attributes:
        host: address to bind (IPv4/IPv6 literal or name).
        port: port to bind; 0 picks a free one.
        streams: the stream names served at ``/streams/<name>``; None serves every stream.
        max_events: events retained per stream for replay.
        max_age: seconds an event is retained for replay.
        store: ``memory`` (lost on restart) or ``sqlite`` (replay across relay restarts).
        path: the SQLite file when ``store`` is ``sqlite``.
        max_buffer_bytes: a client whose unsent bytes pass this is disconnected (it resumes
            with Last-Event-ID). Default 256 KiB, as measured in ``research/relay.md``.
        heartbeat: seconds between heartbeat comments (15 s: under the usual proxy idle
            timeouts, as sse-starlette and the MCP SDKs do).
        retry: the reconnection time sent to clients (``retry:``), in seconds.
        max_lifetime: close each client after this many seconds (it resumes); None: never.
        tokens: bearer tokens; when any is set, ``/streams/*`` and ``/metrics`` require one.
        allow_origins: origins allowed by CORS (``*`` for any); empty: no CORS headers.
    """

    host: str = "127.0.0.1"
    port: int = 8080
    streams: tuple[str, ...] | None = None
    max_events: int = 1000
    max_age: float = 300.0
    store: str = "memory"
    path: str | None = None
    max_buffer_bytes: int = 262144
    heartbeat: float = 15.0
    retry: float = 3.0
    max_lifetime: float | None = None
    tokens: tuple[str, ...] = field(default=(), repr=False)
    allow_origins: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 1 <= self.max_events <= MAX_HISTORY_EVENTS:
            raise ValueError(
                f"max_events must be between 1 and {MAX_HISTORY_EVENTS}, got {self.max_events}"
            )
        if not self.max_age > 0 or not self.heartbeat > 0:
            raise ValueError("max_age and heartbeat must be > 0")
        if self.max_buffer_bytes < 1:
            raise ValueError(f"max_buffer_bytes must be >= 1, got {self.max_buffer_bytes}")
        if self.store not in STORES:
            raise ValueError(f"store must be memory or sqlite, got {self.store!r}")
        if self.store == "sqlite" and not self.path:
            raise ValueError("a sqlite store needs a path")


def read_relay_section(
    c: Checker, node: Node | None, known: Sequence[str], base_dir: str
) -> RelayConfig | Invalid | None:
    """Read the ``relay:`` section of a config file.

    Args:
        c: the config checker (errors, warnings and secrets are recorded there).
        node: the section, or None when the file has none.
        known: the configured stream names (``relay.streams`` must name some of them).
        base_dir: folder that a relative ``history.path`` is relative to.

    Returns:
        The settings, ``INVALID`` when a problem was recorded, None without a section.
    """
    if node is None or node.value is None:
        return None
    top = c.mapping(node, _KEYS)
    if isinstance(top, Invalid):
        return INVALID
    values: dict[str, object] = {}
    ok = True

    def keep(name: str, value: object) -> None:
        nonlocal ok
        if isinstance(value, Invalid):
            ok = False
        elif value is not None:
            values[name] = value

    if "listen" in top:
        address = c.address(top["listen"])
        keep("host", address if isinstance(address, Invalid) else address[0])
        keep("port", address if isinstance(address, Invalid) else address[1])
    if "streams" in top:
        keep("streams", _streams(c, top["streams"], known))
    for name, sub in (("history", _HISTORY_KEYS), ("client", _CLIENT_KEYS)):
        if name in top and top[name].value is not None:
            entries = c.mapping(top[name], sub)
            if isinstance(entries, Invalid):
                ok = False
                continue
            for key, child in entries.items():
                keep(key, _value(c, key, child, base_dir))
    if "auth" in top:
        keep("tokens", _list_of(c, top["auth"], "tokens", secret=True))
    if "cors" in top:
        keep("allow_origins", _list_of(c, top["cors"], "allow_origins", secret=False))
    if not ok:
        return INVALID
    if values.get("store") == "sqlite" and not values.get("path"):
        c.error(top["history"].line, top["history"].path, "store 'sqlite' needs a 'path'")
        return INVALID
    return RelayConfig(**values)  # type: ignore[arg-type]


def _value(c: Checker, key: str, node: Node, base_dir: str) -> object:
    if key == "max_events":
        return c.integer(node, ge=1, le=MAX_HISTORY_EVENTS)
    if key == "max_buffer_bytes":
        return c.integer(node, ge=1024)
    if key in ("max_age", "heartbeat"):
        return c.number(node, gt=0)
    if key == "retry":
        return c.number(node, ge=0)
    if key == "max_lifetime":
        return None if node.value is None else c.number(node, gt=0)
    if key == "store":
        return c.choice(node, STORES)
    return c.file_path(node, base_dir)  # path


def _streams(c: Checker, node: Node, known: Sequence[str]) -> tuple[str, ...] | Invalid | None:
    if node.value is None:
        return None
    items = c.string_list(node)
    if isinstance(items, Invalid):
        return INVALID
    for name, child in items:
        if name not in known:
            c.error(child.line, child.path, f"unknown stream {name!r}")
    return tuple(name for name, _ in items)


def _list_of(c: Checker, node: Node, key: str, *, secret: bool) -> tuple[str, ...] | Invalid:
    entries = c.mapping(node, (key,))
    if isinstance(entries, Invalid):
        return INVALID
    child = entries.get(key)
    if child is None or child.value is None:
        c.error(node.line, node.path, f"missing required key {key!r}")
        return INVALID
    items = c.string_list(child)
    if isinstance(items, Invalid):
        return INVALID
    for text, item in items:
        if secret:
            c.add_secret(text)
        elif text != "*" and "://" not in text:
            shown = describe(item)
            c.error(item.line, item.path, f"expected an origin (https://host) or '*', got {shown}")
    return tuple(text for text, _ in items)
