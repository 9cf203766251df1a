"""Load a YAML config into frozen values, reporting every problem with its line.

``load_config`` reads one file; everything else is pure (no network, no actors, no other
files). Problems are collected, never raised one at a time: ``ConfigErrors`` carries all of
them, sorted by line, each formatted ``FILE:LINE: path.to.key: message`` with secrets masked.
How the YAML is walked and how single values are read lives in ``config_schema``.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from streamvisor.cluster.settings import (
    REDIS_SINK_KEYS,
    ClusterConfig,
    RedisStreamsOptions,
    read_cluster,
    read_redis_sink,
    read_redis_url,
    reject_disk_buffers,
)
from streamvisor.config.schema import (
    INVALID,
    Checker,
    Field,
    Invalid,
    Node,
    describe,
    merge_nodes,
    read_document,
)
from streamvisor.config.tracing import TracingConfig, read_tracing
from streamvisor.errors import ConfigError
from streamvisor.policy.backoff import BackoffPolicy, RestartLimit, max_failures_within
from streamvisor.policy.flow import (
    DEFAULT_DISK_MAX_BYTES,
    WHEN_FULL_WORDS,
    BufferSettings,
    WhenFull,
)
from streamvisor.policy.redact import redact_headers, redact_url
from streamvisor.relay.settings import RelayConfig, read_relay_section
from streamvisor.spec import BreakerPolicy, StreamSpec

__all__ = [
    "AdminConfig",
    "CheckpointConfig",
    "Config",
    "ConfigErrors",
    "SinkConfig",
    "load_config",
    "parse_config",
]

STREAM_KEYS = (
    "name",
    "url",
    "method",
    "headers",
    "body",
    "connect_timeout",
    "read_timeout",
    "backoff",
    "max_restarts",
    "max_attempts",
    "breaker",
    "dedup_window",
    "max_event_size",
    "max_redirects",
    "verify",
    "enabled",
    "last_event_id",
    "kind",
    "mcp",
)
TOP_KEYS = (
    "defaults",
    "streams",
    "sinks",
    "checkpoint",
    "admin",
    "relay",
    "tracing",
    "shutdown_timeout",
    "cluster",
)
SINK_TYPES = ("stdout", "file", "webhook", "redis_streams")
SINK_COMMON_KEYS = ("name", "type", "streams", "events", "buffer", "overflow")
SINK_TYPE_KEYS: dict[str, tuple[str, ...]] = {
    "stdout": (),
    "file": ("path", "flush_interval", "fsync"),
    "webhook": ("url", "headers", "timeout", "batch", "rate_limit", "retry", "dead_letter"),
    "redis_streams": REDIS_SINK_KEYS,
}
BUFFER_KEYS = ("type", "max_events", "max_bytes", "when_full", "path")
_SIZE = re.compile(r"(\d+)\s*([KMG]i?B|B)?", re.IGNORECASE)
_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 1 << 10}
_UNITS |= {"MIB": 1 << 20, "GIB": 1 << 30}
HEARTBEAT_FLOOR = 5.0


@dataclass(frozen=True, slots=True, repr=False)
class SinkConfig:
    """One built-in sink. Keys that do not apply to its ``type`` keep their defaults.

    Its ``repr`` masks the URL password and secret header values.
    """

    name: str
    type: str
    streams: tuple[str, ...] | None = None
    events: tuple[str, ...] | None = None
    buffer: BufferSettings = field(default_factory=BufferSettings)
    path: str | None = None
    flush_interval: float = 1.0
    fsync: bool = False
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 10.0
    batch_max_events: int = 100
    batch_max_wait: float = 0.5
    rate: float | None = None
    burst: int | None = None
    retry_initial: float = 0.5
    retry_max: float = 30.0
    retry_attempts: int = 8
    dead_letter: str | None = None
    redis_streams: RedisStreamsOptions | None = None

    def __repr__(self) -> str:
        parts = []
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if name == "url" and value is not None:
                value = redact_url(value)
            elif name == "headers":
                value = redact_headers(value)
            parts.append(f"{name}={value!r}")
        return f"SinkConfig({', '.join(parts)})"


@dataclass(frozen=True, slots=True)
class CheckpointConfig:
    """Where the last delivered ids are stored.

    Attributes:
        path: the SQLite file (absolute or config-relative); "" for the Redis store.
        interval: seconds between checkpoint writes.
        store: ``sqlite`` or ``redis`` (cluster mode needs ``redis``).
        redis: the Redis URL of the ``redis`` store (default: ``cluster.redis``).
        recent_ids: dedup ids saved per stream (None: the whole dedup window).
    """

    path: str = ""
    interval: float = 1.0
    store: str = "sqlite"
    redis: str | None = None
    recent_ids: int | None = None


@dataclass(frozen=True, slots=True)
class AdminConfig:
    """The admin HTTP listener (port 0 picks a free port) and its optional bearer token."""

    host: str
    port: int
    token: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Config:
    """A validated configuration.

    Attributes:
        streams: the upstream streams, in file order.
        sinks: the built-in sinks, in file order.
        checkpoint: the checkpoint store, or None.
        admin: the admin listener, or None.
        relay: the relay (``streamvisor.relay``), or None.
        shutdown_timeout: seconds a graceful stop may take.
        tracing: OpenTelemetry tracing settings, or None (tracing off).
        source: the config path as given.
        secrets: secret values found in the file or its environment (for the log Redactor).
        warnings: problems that do not stop the config from working.
    """

    streams: tuple[StreamSpec, ...]
    sinks: tuple[SinkConfig, ...]
    checkpoint: CheckpointConfig | None
    admin: AdminConfig | None
    shutdown_timeout: float = 10.0
    tracing: TracingConfig | None = None
    cluster: ClusterConfig | None = None
    source: str = "<config>"
    secrets: frozenset[str] = frozenset()
    warnings: tuple[ConfigError, ...] = ()
    relay: RelayConfig | None = None


class ConfigErrors(ConfigError):
    """Every problem found in a config file.

    Attributes:
        errors: the problems, sorted by line; ``str()`` gives one formatted line each.
    """

    def __init__(self, errors: Sequence[ConfigError]) -> None:
        self.errors = list(errors)
        first = self.errors[0]
        super().__init__(first.message, file=first.file, line=first.line, path=first.path)

    def format(self) -> str:
        """All problems, one ``FILE:LINE: path: message`` per line."""
        return "\n".join(error.format() for error in self.errors)


def load_config(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate the config file at ``path``.

    Args:
        path: the YAML file; relative paths inside it resolve against its folder.
        environ: variables for ``${VAR}`` interpolation (``os.environ`` when None).

    Raises:
        ConfigErrors: with every problem found.
    """
    source = os.fspath(path)
    try:
        with open(source, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise ConfigErrors([ConfigError("file not found", file=source)]) from None
    except IsADirectoryError:
        raise ConfigErrors([ConfigError("is a directory, not a file", file=source)]) from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigErrors([ConfigError(f"cannot read: {reason}", file=source)]) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        error = ConfigError("not valid UTF-8 text", file=source, line=line)
        raise ConfigErrors([error]) from None
    base_dir = os.path.dirname(os.path.abspath(source))
    return parse_config(
        text, source=source, base_dir=base_dir, environ=os.environ if environ is None else environ
    )


def parse_config(text: str, *, source: str, base_dir: str, environ: Mapping[str, str]) -> Config:
    """Validate config ``text``; see ``load_config``. ``base_dir`` anchors relative paths."""
    checker = Checker(source=source, environ=environ)
    root = read_document(text, checker)
    config = _Builder(checker, base_dir).build(root) if root is not None else None
    errors = checker.final_errors()
    if errors or config is None:
        raise ConfigErrors(errors)
    return config


@dataclass(slots=True)
class _StreamEntry:
    item: Node
    name: str | None
    fields: dict[str, Node]
    spec: StreamSpec | None


class _Builder:
    def __init__(self, checker: Checker, base_dir: str) -> None:
        self.c = checker
        self.base_dir = base_dir

    # -- top level ---------------------------------------------------------------------
    def build(self, root: Node) -> Config | None:
        c = self.c
        top = c.mapping(root, TOP_KEYS)
        if isinstance(top, Invalid):
            return None
        shutdown = self._optional(top.get("shutdown_timeout"), lambda n: c.number(n, gt=0))
        defaults = self._defaults(top.get("defaults"))
        streams = self._streams(root, top.get("streams"), defaults)
        sinks = self._sinks(top.get("sinks"), streams)
        checkpoint = self._checkpoint(top.get("checkpoint"))
        admin = self._admin(top.get("admin"))
        names = [entry.name for entry in streams if entry.name is not None]
        relay = read_relay_section(c, top.get("relay"), names, self.base_dir)
        tracing = read_tracing(c, top.get("tracing"))
        cluster = self._cluster(top.get("checkpoint"), top.get("cluster"), checkpoint)
        if isinstance(cluster, ClusterConfig):
            reject_disk_buffers(c, top.get("sinks"))
        self._warn_streams(streams, sinks)
        specs = tuple(entry.spec for entry in streams if entry.spec is not None)
        parts = (shutdown, checkpoint, admin, relay, tracing, cluster)
        if c.errors or any(isinstance(v, Invalid) for v in parts):
            return None
        assert not isinstance(checkpoint, Invalid) and not isinstance(admin, Invalid)
        assert not isinstance(relay, Invalid)
        assert not isinstance(tracing, Invalid) and not isinstance(cluster, Invalid)
        if checkpoint is not None and checkpoint.store == "redis" and checkpoint.redis is None:
            assert cluster is not None  # _cluster reported a Redis store without a URL
            checkpoint = dataclasses.replace(checkpoint, redis=cluster.redis)
        return Config(
            streams=specs,
            sinks=tuple(
                _place_disk_buffer(sink, checkpoint, self.base_dir)
                for sink in sinks
                if sink is not None
            ),
            checkpoint=checkpoint,
            admin=admin,
            relay=relay,
            shutdown_timeout=10.0 if shutdown is None else shutdown,
            tracing=tracing,
            cluster=cluster,
            source=c.source,
            secrets=frozenset(c.secrets),
            warnings=tuple(c.final_warnings()),
        )

    @staticmethod
    def _optional(node: Node | None, read: Callable[[Node], Any]) -> Any:
        return None if node is None or node.value is None else read(node)

    def _resolve(self, node: Node) -> str | Invalid:
        text = self.c.string(node)
        return text if isinstance(text, Invalid) else os.path.join(self.base_dir, text)

    # -- streams -----------------------------------------------------------------------
    def _defaults(self, node: Node | None) -> Node | None:
        if node is None or node.value is None:
            return None
        if isinstance(self.c.mapping(node, STREAM_KEYS), Invalid):
            return None
        if "name" in node.value:
            name = node.value["name"]
            self.c.error(name.key_line, name.path, "each stream needs its own name")
        # Check every default once, on its own, so that a bad default is reported even
        # when every stream overrides it.
        self._stream_fields(node.value, partial=True)
        return node

    def _streams(self, root: Node, node: Node | None, defaults: Node | None) -> list[_StreamEntry]:
        c = self.c
        if node is None or node.value is None:
            c.error(root.line, "", "missing required key 'streams'")
            return []
        if not node.is_list:
            c.error(node.line, node.path, f"expected a list of streams, got {describe(node)}")
            return []
        if not node.value:
            c.error(node.line, node.path, "must list at least one stream")
        entries = [self._stream(item, defaults) for item in node.value]
        first: dict[str, Node] = {}
        for entry in entries:
            if entry.name is None:
                continue
            name_node = entry.fields["name"]
            if entry.name in first:
                c.error(
                    name_node.line,
                    name_node.path,
                    f"duplicate stream name {entry.name!r} "
                    f"(first at line {first[entry.name].line})",
                )
            else:
                first[entry.name] = name_node
        return entries

    def _stream(self, item: Node, defaults: Node | None) -> _StreamEntry:
        c = self.c
        if not item.is_mapping:
            c.error(item.line, item.path, f"expected a stream mapping, got {describe(item)}")
            return _StreamEntry(item, None, {}, None)
        if defaults is not None:
            inherited = {k: v for k, v in defaults.value.items() if k != "name"}
            base = Node(inherited, defaults.line, defaults.path, defaults.key_line)
            item = merge_nodes(base, item, whole=("body",))
        fields = c.mapping(item, STREAM_KEYS)
        if isinstance(fields, Invalid):
            return _StreamEntry(item, None, {}, None)
        missing = c.require(item, fields, ("name", "url"))
        kwargs = self._stream_fields(fields, partial=False)
        name_node = fields.get("name")
        name = name_node.value if name_node is not None else None
        name = name if isinstance(name, str) and name.strip() else None
        spec = None
        if isinstance(kwargs, dict) and not missing:
            try:
                spec = StreamSpec(**kwargs)
            except ValueError as exc:
                c.error(item.line, item.path, str(exc))
        return _StreamEntry(item, name, fields, spec)

    def _stream_fields(
        self, fields: Mapping[str, Node], *, partial: bool
    ) -> dict[str, Any] | Invalid:
        c = self.c
        positive = {"gt": 0.0}
        # Defaults alone may be incomplete (initial above the built-in max, fixed by every
        # stream): check their fields, not how they combine.
        order = None if partial else _B_ORD

        def policy(node: Node, cls: Callable[..., Any], fields: Mapping[str, Field]) -> Any:
            values = c.section(node, fields, order=order if cls is BackoffPolicy else None)
            return values if partial else c.build(node, cls, values)

        readers: dict[str, Callable[[Node], Any]] = {
            "name": c.string,
            "url": c.url,
            "method": lambda n: c.choice(n, ("GET", "POST"), upper=True),
            "headers": c.headers,
            "body": c.json_value,
            "connect_timeout": lambda n: c.number(n, **positive),
            "read_timeout": lambda n: c.number(n, **positive),
            "backoff": lambda n: policy(n, BackoffPolicy, _BACKOFF),
            "max_restarts": lambda n: policy(n, RestartLimit, _RESTARTS),
            "max_attempts": lambda n: None if n.value is None else c.integer(n, ge=1),
            "breaker": lambda n: policy(n, BreakerPolicy, _BREAKER),
            "dedup_window": lambda n: c.integer(n, ge=0),
            "max_event_size": lambda n: c.integer(n, ge=64),
            "max_redirects": lambda n: c.integer(n, ge=0),
            "verify": self._verify,
            "enabled": c.boolean,
            "last_event_id": self._last_event_id,
            "kind": lambda n: c.choice(n, ("sse", "mcp")),
            "mcp": self._mcp,
        }
        if partial:
            readers.pop("name")
        kwargs: dict[str, Any] = {}
        ok = True
        for key, child in fields.items():
            if key not in readers:
                continue
            value = readers[key](child)
            if isinstance(value, Invalid):
                ok = False
            else:
                kwargs[key] = value
        return kwargs if ok else INVALID

    def _verify(self, node: Node) -> bool | str | Invalid:
        value = node.value
        if isinstance(value, bool) or node.broken:
            return INVALID if node.broken else value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        if isinstance(value, str) and value.strip():
            return os.path.join(self.base_dir, value)
        self.c.error(node.line, node.path, "expected true, false or a CA bundle path")
        return INVALID

    def _mcp(self, node: Node) -> Any:
        """The ``mcp:`` mapping, checked by the MCP package's reader (errors located)."""
        from streamvisor.upstream.mcp.options import read_options

        if node.value is None:
            return None
        if isinstance(self.c.mapping(node, tuple(node.value or ())), Invalid):
            return INVALID
        plain = self.c.json_value(node)
        if isinstance(plain, Invalid):
            return INVALID

        def report(key: str, message: str) -> None:
            child = node.value.get(key.split("[")[0].split(".")[0])
            line = child.line if isinstance(child, Node) else node.line
            self.c.error(line, f"{node.path}.{key}", message)

        options = read_options(plain, report)
        return INVALID if options is None else options

    def _last_event_id(self, node: Node) -> str | Invalid | None:
        if node.value is None:
            return None
        text = self.c.string(node, empty_ok=True)
        if isinstance(text, str) and re.search(r"[\r\n\x00]", text):
            self.c.error(node.line, node.path, "must not contain line breaks or NUL")
            return INVALID
        return text

    # -- sinks -------------------------------------------------------------------------
    def _sinks(self, node: Node | None, streams: Sequence[_StreamEntry]) -> list[SinkConfig | None]:
        if node is None or node.value is None:
            return []
        if not node.is_list:
            self.c.error(node.line, node.path, f"expected a list of sinks, got {describe(node)}")
            return []
        known = [entry.name for entry in streams if entry.name is not None]
        sinks: list[SinkConfig | None] = []
        first: dict[str, int] = {}
        for item in node.value:
            sink, name_node = self._sink(item, known)
            sinks.append(sink)
            if name_node is None or not isinstance(name_node.value, str):
                continue
            name = name_node.value
            if name in first:
                self.c.error(
                    name_node.line,
                    name_node.path,
                    f"duplicate sink name {name!r} (first at line {first[name]})",
                )
            else:
                first[name] = name_node.line
        return sinks

    def _sink(self, item: Node, known: Sequence[str]) -> tuple[SinkConfig | None, Node | None]:
        c = self.c
        if not item.is_mapping:
            c.error(item.line, item.path, f"expected a sink mapping, got {describe(item)}")
            return None, None
        type_node = item.value.get("type")
        has_type = type_node is not None and type_node.value is not None
        kind = c.string(type_node) if type_node is not None and has_type else INVALID
        if isinstance(kind, str) and kind not in SINK_TYPES:
            assert type_node is not None
            c.error(type_node.line, type_node.path, f"unknown sink type {kind!r} ({_choices()})")
            kind = INVALID
        all_type_keys = tuple(k for keys in SINK_TYPE_KEYS.values() for k in keys)
        if isinstance(kind, str):
            allowed = SINK_COMMON_KEYS + SINK_TYPE_KEYS[kind]
            misplaced = {k: f"{k!r} does not apply to a {kind} sink" for k in all_type_keys}
        else:
            allowed, misplaced = SINK_COMMON_KEYS + all_type_keys, {}
        entries = c.mapping(item, allowed, misplaced=misplaced)
        if isinstance(entries, Invalid):
            return None, None
        required = ["name", "type", *_REQUIRED_SINK_KEYS.get(str(kind), [])]
        missing = c.require(item, entries, required)
        readers = self._sink_readers(known)
        kwargs: dict[str, Any] = {}
        ok = not missing and isinstance(kind, str)
        if kind == "redis_streams":
            own = {k: v for k, v in entries.items() if k in REDIS_SINK_KEYS}
            entries = {k: v for k, v in entries.items() if k not in REDIS_SINK_KEYS}
            options = read_redis_sink(c, own) if not missing else INVALID
            if isinstance(options, RedisStreamsOptions):
                kwargs["redis_streams"] = options
                kwargs["batch_max_events"] = options.batch_count
                kwargs["batch_max_wait"] = options.batch_period
            else:
                ok = False
        for key, child in entries.items():
            if key == "type":
                continue
            value = readers[key](child)
            if isinstance(value, Invalid):
                ok = False
            elif isinstance(value, dict) and key in ("batch", "rate_limit", "retry"):
                kwargs.update(value)
            elif value is not None:
                kwargs[key] = value
        if ok:
            ok = self._buffer_settings(entries, kwargs)
        if not ok:
            return None, entries.get("name")
        if kwargs.get("rate") is not None and kwargs.get("burst") is None:
            kwargs["burst"] = max(1, math.ceil(kwargs["rate"]))
        return SinkConfig(type=str(kind), **kwargs), entries.get("name")

    def _sink_readers(self, known: Sequence[str]) -> dict[str, Callable[[Node], Any]]:
        c = self.c

        def stream_names(node: Node) -> tuple[str, ...] | Invalid:
            items = c.string_list(node)
            if isinstance(items, Invalid):
                return INVALID
            for name, child in items:
                if name not in known:
                    hint = _hint(name, known)
                    c.error(child.line, child.path, f"unknown stream {name!r}{hint}")
            return tuple(name for name, _ in items)

        def events(node: Node) -> tuple[str, ...] | Invalid:
            items = c.string_list(node)
            return items if isinstance(items, Invalid) else tuple(name for name, _ in items)

        return {
            "name": c.string,
            "streams": stream_names,
            "events": events,
            "buffer": self._buffer,
            "overflow": lambda n: c.choice(n, WHEN_FULL_WORDS),
            "path": self._resolve,
            "flush_interval": lambda n: c.number(n, ge=0),
            "fsync": c.boolean,
            "url": c.url,
            "headers": c.headers,
            "timeout": lambda n: c.number(n, gt=0),
            "batch": lambda n: self.c.section(n, _BATCH),
            "rate_limit": self._rate_limit,
            "retry": lambda n: self.c.section(n, _RETRY, order=("initial", "max", 30.0)),
            "dead_letter": self._resolve,
        }

    def _buffer(self, node: Node) -> int | dict[str, Any] | Invalid | None:
        """``buffer: N`` (a memory buffer of N events) or ``buffer: {type, max_events,
        max_bytes, when_full, path}``."""
        c = self.c
        if node.value is None:
            return None
        if not node.is_mapping:
            return c.integer(node, ge=1)
        entries = c.mapping(node, BUFFER_KEYS)
        if isinstance(entries, Invalid):
            return INVALID
        readers: dict[str, Callable[[Node], Any]] = {
            "type": lambda n: c.choice(n, ("memory", "disk")),
            "max_events": lambda n: c.integer(n, ge=1),
            "max_bytes": self._size,
            "when_full": lambda n: c.choice(n, WHEN_FULL_WORDS),
            "path": self._resolve,
        }
        values = {key: readers[key](child) for key, child in entries.items()}
        if any(isinstance(v, Invalid) for v in values.values()):
            return INVALID
        values["_node"] = node
        return values

    def _size(self, node: Node) -> int | Invalid:
        """A size in bytes: an integer, or a string such as ``256MiB`` or ``1 GB``."""
        if isinstance(node.value, str):
            match = _SIZE.fullmatch(node.value.strip())
            if match is None:
                self.c.error(
                    node.line,
                    node.path,
                    f"expected a size in bytes (e.g. 268435456 or 256MiB), got {describe(node)}",
                )
                return INVALID
            value = int(match.group(1)) * _UNITS[(match.group(2) or "").upper()]
            if value < 1:
                self.c.error(node.line, node.path, "must be at least 1 byte")
                return INVALID
            return value
        return self.c.integer(node, ge=1)

    def _buffer_settings(self, entries: Mapping[str, Node], kwargs: dict[str, Any]) -> bool:
        """Fold ``buffer`` and its ``overflow`` shorthand into one ``BufferSettings``."""
        raw = kwargs.pop("buffer", None)
        overflow = kwargs.pop("overflow", None)
        values: dict[str, Any] = {}
        if isinstance(raw, int):
            values["max_events"] = raw
        elif isinstance(raw, dict):
            values = dict(raw)
            node = values.pop("_node")
            if "when_full" in values and overflow is not None:
                self.c.error(
                    entries["overflow"].line,
                    entries["overflow"].path,
                    "give the policy once: buffer.when_full or overflow, not both",
                )
                return False
            if values.get("type") == "disk":
                values.setdefault("max_events", None)
                values.setdefault("max_bytes", DEFAULT_DISK_MAX_BYTES)
                if (overflow or values.get("when_full")) == "drop_oldest":
                    self.c.error(
                        node.line,
                        f"{node.path}.when_full",
                        "a disk buffer cannot drop_oldest (it never rewrites what it "
                        "stored): use block or drop_newest",
                    )
                    return False
        if overflow is not None:
            values["when_full"] = overflow
        if "when_full" in values:
            values["when_full"] = WhenFull(values["when_full"])
        try:
            kwargs["buffer"] = BufferSettings(**values)
        except ValueError as exc:
            where = entries["buffer"]
            self.c.error(where.line, where.path, str(exc))
            return False
        return True

    def _rate_limit(self, node: Node) -> dict[str, Any] | Invalid | None:
        if node.value is None:
            return None
        values = self.c.section(node, _RATE)
        if isinstance(values, dict) and "rate" not in values:
            self.c.error(node.line, node.path, "missing required key 'rate'")
            return INVALID
        return values

    # -- checkpoint and admin ----------------------------------------------------------
    def _checkpoint(self, node: Node | None) -> CheckpointConfig | Invalid | None:
        if node is None or node.value is None:
            return None
        c = self.c
        entries = c.mapping(node, ("path", "interval", "store", "redis", "recent_ids"))
        if isinstance(entries, Invalid):
            return INVALID
        store = self._optional(entries.get("store"), lambda n: c.choice(n, ("sqlite", "redis")))
        if store in (None, "sqlite") and c.require(node, entries, ("path",)):
            return INVALID
        if store == "redis" and "path" in entries:
            where = entries["path"]
            c.error(where.key_line, where.path, "'path' does not apply to the redis store")
            return INVALID
        path = self._resolve(entries["path"]) if "path" in entries else ""
        interval = self._optional(entries.get("interval"), lambda n: c.number(n, gt=0))
        redis = self._optional(entries.get("redis"), lambda n: read_redis_url(c, n))
        recent = self._optional(entries.get("recent_ids"), lambda n: c.integer(n, ge=0))
        if isinstance(path, Invalid) or any(
            isinstance(v, Invalid) for v in (store, interval, redis, recent)
        ):
            return INVALID
        return CheckpointConfig(
            path=path,
            interval=1.0 if interval is None else interval,
            store=store or "sqlite",
            redis=redis,
            recent_ids=recent,
        )

    def _cluster(
        self,
        checkpoint_node: Node | None,
        node: Node | None,
        checkpoint: CheckpointConfig | Invalid | None,
    ) -> ClusterConfig | Invalid | None:
        store = checkpoint if isinstance(checkpoint, CheckpointConfig) else None
        return read_cluster(
            self.c,
            node,
            checkpoint_node,
            store=None if store is None else store.store,
            store_redis=None if store is None else store.redis,
            checkpoint_ok=checkpoint is not INVALID,
        )

    def _admin(self, node: Node | None) -> AdminConfig | Invalid | None:
        if node is None or node.value is None:
            return None
        c = self.c
        entries = c.mapping(node, ("listen", "token"))
        if isinstance(entries, Invalid) or c.require(node, entries, ("listen",)):
            return INVALID
        listen = entries["listen"]
        parsed = c.address(listen)
        token = self._optional(entries.get("token"), c.string)
        if isinstance(parsed, Invalid) or isinstance(token, Invalid):
            return INVALID
        if token is not None:
            c.add_secret(token)
        host, port = parsed
        if not _is_loopback(host) and token is None:
            c.warn(
                listen.line,
                listen.path,
                f"{describe(listen)} is not a loopback address and admin.token is not set: "
                "anyone who can reach it can close and reconnect streams, and /metrics and "
                "/streams are exposed (set admin.token, or use 127.0.0.1)",
            )
        return AdminConfig(host=host, port=port, token=token)

    # -- warnings ----------------------------------------------------------------------
    def _warn_streams(
        self, streams: Sequence[_StreamEntry], sinks: Sequence[SinkConfig | None]
    ) -> None:
        c = self.c
        valid_sinks = [sink for sink in sinks if sink is not None]
        for entry in streams:
            spec = entry.spec
            if spec is None:
                continue
            timeout = entry.fields.get("read_timeout")
            if timeout is not None and spec.read_timeout < HEARTBEAT_FLOOR:
                c.warn(
                    timeout.line,
                    timeout.path,
                    f"{spec.read_timeout:g}s is shorter than typical server heartbeats "
                    "(15-30 s): quiet streams will be reconnected needlessly",
                )
            limit = entry.fields.get("max_restarts")
            if limit is not None and spec.max_restarts.count > 0:
                count, within = spec.max_restarts.count, spec.max_restarts.within
                fit = max_failures_within(spec.backoff, within)
                if fit <= count:
                    c.warn(
                        limit.line,
                        f"{entry.item.path}.max_restarts",
                        f"{count} restarts within {within:g}s cannot be reached by failing "
                        f"connections with this backoff (at most {fit} fit); it only catches "
                        "crash loops and rapid reconnects",
                    )
            if (
                spec.enabled
                and valid_sinks
                and not any(
                    sink.streams is None or spec.name in sink.streams for sink in valid_sinks
                )
            ):
                c.warn(
                    entry.item.line,
                    entry.item.path,
                    f"no sink takes the events of stream {spec.name!r}",
                )


_REQUIRED_SINK_KEYS = {"file": ["path"], "webhook": ["url"], "redis_streams": ["redis"]}

# Nested sections: key -> (keyword argument, Checker reader, bounds).
_BACKOFF: dict[str, Field] = {
    "initial": ("initial", "number", {"ge": 0}),
    "max": ("max", "number", {"ge": 0}),
    "multiplier": ("multiplier", "number", {"ge": 1}),
    "jitter": ("jitter", "number", {"ge": 0, "le": 1}),
    "reset_after": ("reset_after", "number", {"ge": 0}),
    "max_retry_after": ("max_retry_after", "number", {"ge": 0}),
}
_B_ORD = ("initial", "max", BackoffPolicy().max)
_RESTARTS: dict[str, Field] = {
    "count": ("count", "integer", {"ge": 0}),
    "within": ("within", "number", {"gt": 0}),
}
_BREAKER: dict[str, Field] = {
    "failures": ("failures", "integer", {"ge": 0}),
    "cooldown": ("cooldown", "number", {"ge": 0}),
}
_BATCH: dict[str, Field] = {
    "max_events": ("batch_max_events", "integer", {"ge": 1}),
    "max_wait": ("batch_max_wait", "number", {"ge": 0}),
}
_RATE: dict[str, Field] = {
    "rate": ("rate", "number", {"gt": 0}),
    "burst": ("burst", "integer", {"ge": 1}),
}
_RETRY: dict[str, Field] = {
    "initial": ("retry_initial", "number", {"ge": 0}),
    "max": ("retry_max", "number", {"ge": 0}),
    "attempts": ("retry_attempts", "integer", {"ge": 1}),
}


def _place_disk_buffer(
    sink: SinkConfig, checkpoint: CheckpointConfig | None, base_dir: str
) -> SinkConfig:
    """A disk buffer without a path lives next to the checkpoint file (or in the config's
    folder): ``<checkpoint stem>.<sink>.buffer.db``."""
    buffer = sink.buffer
    if buffer.type != "disk" or buffer.path is not None:
        return sink
    if checkpoint is not None and checkpoint.path:
        folder, stem = os.path.split(checkpoint.path)
        stem = os.path.splitext(stem)[0]
    else:
        folder, stem = base_dir, "streamvisor"
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", sink.name)
    path = os.path.join(folder, f"{stem}.{safe}.buffer.db")
    return dataclasses.replace(sink, buffer=dataclasses.replace(buffer, path=path))


def _hint(name: str, options: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _choices() -> str:
    return "expected " + ", ".join(repr(t) for t in SINK_TYPES[:-1]) + f" or {SINK_TYPES[-1]!r}"


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
