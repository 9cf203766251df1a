"""The ``cluster:`` section, the Redis checkpoint keys and the ``redis_streams`` sink keys:
frozen values and the readers ``config.py`` calls. Pure: no I/O (the default instance name,
which needs the host name, is made by the daemon at start).

Every reader records located errors on the ``Checker`` (``FILE:LINE: path: message``) and
returns ``INVALID`` instead of raising, like the rest of the config loader.
"""

from __future__ import annotations

import importlib.util
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from streamvisor.config.schema import INVALID, Checker, Field, Invalid, Node, describe
from streamvisor.policy.redact import redact_url

__all__ = [
    "CLUSTER_KEYS",
    "FIELD_SOURCES",
    "REDIS_SINK_KEYS",
    "ClusterConfig",
    "RedisStreamsOptions",
    "read_cluster",
    "read_redis_sink",
    "read_redis_url",
    "reject_disk_buffers",
    "same_redis",
]

CLUSTER_KEYS = (
    "redis",
    "instance",
    "lease_ttl",
    "claim_interval",
    "key_prefix",
    "max_moves_per_round",
)
REDIS_SINK_KEYS = ("redis", "stream", "fields", "maxlen", "batch", "dedup_window")
FIELD_SOURCES = (
    "stream",
    "id",
    "event",
    "data",
    "last_event_id",
    "received_at",
    "token",
    "instance",
)
"""What a ``redis_streams`` entry field may hold: an Event attribute, the writer's fencing
``token``, or the writing ``instance``'s name."""
DEFAULT_FIELDS = (("stream", "stream"), ("id", "id"), ("event", "event"), ("data", "data"))
_TEMPLATE_NAMES = frozenset({"stream", "event"})
_REDIS_SCHEMES = ("redis", "rediss", "unix")
MIN_LEASE_TTL = 1.0  # below this a GC pause or a slow Redis call loses leases needlessly


@dataclass(frozen=True, slots=True, repr=False)
class ClusterConfig:
    """The ``cluster:`` section.

    Attributes:
        redis: the coordinating Redis URL (``redis://``, ``rediss://`` or ``unix://``).
        instance: this daemon's name; None means ``<hostname>-<pid>``, chosen at start.
        lease_ttl: lease and heartbeat lifetime, seconds (failover takes at most about
            ``lease_ttl + claim_interval``).
        claim_interval: seconds between balance rounds (survey, release, claim).
        key_prefix: prefix of every key, so several clusters can share one Redis.
        max_moves_per_round: at most this many claims and this many releases per round.
    """

    redis: str
    instance: str | None = None
    lease_ttl: float = 3.0
    claim_interval: float = 0.5
    key_prefix: str = "streamvisor:"
    max_moves_per_round: int = 16

    def __repr__(self) -> str:
        return (
            f"ClusterConfig(redis={redact_url(self.redis)!r}, instance={self.instance!r}, "
            f"lease_ttl={self.lease_ttl!r}, claim_interval={self.claim_interval!r}, "
            f"key_prefix={self.key_prefix!r}, max_moves_per_round={self.max_moves_per_round!r})"
        )


@dataclass(frozen=True, slots=True, repr=False)
class RedisStreamsOptions:
    """A ``redis_streams`` sink (Redpanda Connect's ``redis_streams`` output is the model).

    Attributes:
        redis: the Redis URL the entries go to.
        stream: key template; ``{stream}`` and ``{event}`` are replaced per event.
        fields: (entry field, source) pairs; sources are listed in ``FIELD_SOURCES``.
        maxlen: trim each Redis stream to about this many entries (``MAXLEN ~``); 0 keeps all.
        batch_count: at most this many events per write (one pipelined round trip).
        batch_period: seconds the driver may hold events before writing them.
        dedup_window: ids remembered per SSE stream in Redis by the fenced write (cluster
            mode), to drop what a new owner re-reads after a failover.
    """

    redis: str
    stream: str = "sse:{stream}"
    fields: tuple[tuple[str, str], ...] = DEFAULT_FIELDS
    maxlen: int = 0
    batch_count: int = 1000
    batch_period: float = 0.05
    dedup_window: int = 1000

    def __repr__(self) -> str:
        return (
            f"RedisStreamsOptions(redis={redact_url(self.redis)!r}, stream={self.stream!r}, "
            f"fields={self.fields!r}, maxlen={self.maxlen!r}, batch_count={self.batch_count!r}, "
            f"batch_period={self.batch_period!r}, dedup_window={self.dedup_window!r})"
        )


def same_redis(a: str, b: str) -> bool:
    """Whether two Redis URLs name the same server and database (credentials ignored)."""

    def where(url: str) -> tuple[str, str, int, str]:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        if scheme == "unix":
            return scheme, parts.path, 0, parts.query
        db = parts.path.strip("/") or "0"
        return scheme, (parts.hostname or "").lower(), parts.port or 6379, db

    try:
        return where(a) == where(b)
    except ValueError:
        return False


def read_redis_url(c: Checker, node: Node) -> str | Invalid:
    """A ``redis://``, ``rediss://`` or ``unix://`` URL; its password becomes a secret."""
    text = c.string(node)
    if isinstance(text, Invalid):
        return INVALID
    text = text.strip()
    shown = repr("***") if node.secret else repr(redact_url(text))
    try:
        parts = urlsplit(text)
        _ = parts.port  # raises ValueError on a bad port
    except ValueError:
        c.error(node.line, node.path, f"not a valid Redis URL: {shown}")
        return INVALID
    if parts.password:
        c.add_secret(parts.password)
        c.add_secret(unquote(parts.password))
    if parts.scheme.lower() not in _REDIS_SCHEMES:
        c.error(
            node.line,
            node.path,
            f"expected a redis://, rediss:// or unix:// URL, got {shown}",
        )
        return INVALID
    if parts.scheme.lower() != "unix" and not parts.hostname:
        c.error(node.line, node.path, f"Redis URL has no host: {shown}")
        return INVALID
    if importlib.util.find_spec("redis") is None:
        c.error(
            node.line,
            node.path,
            "the Redis client is not installed: pip install 'streamvisor[cluster]' "
            "(in a source checkout: pip install '.[cluster]')",
        )
        return INVALID
    return text


_CLUSTER_FIELDS: dict[str, Field] = {
    "lease_ttl": ("lease_ttl", "number", {"ge": MIN_LEASE_TTL}),
    "claim_interval": ("claim_interval", "number", {"gt": 0}),
    "max_moves_per_round": ("max_moves_per_round", "integer", {"ge": 1}),
}


def read_cluster(
    c: Checker,
    node: Node | None,
    checkpoint_node: Node | None,
    *,
    store: str | None,
    store_redis: str | None,
    checkpoint_ok: bool,
) -> ClusterConfig | Invalid | None:
    """The ``cluster:`` section (None when absent), checked against the checkpoint section:
    cluster mode needs the Redis store on the cluster's Redis (the fencing tokens live there),
    and a Redis store outside cluster mode needs its own URL.

    Args:
        c: the checker.
        node: the ``cluster`` node, or None.
        checkpoint_node: the ``checkpoint`` node, or None.
        store: ``checkpoint.store`` ("sqlite" or "redis"), None without a valid section.
        store_redis: ``checkpoint.redis``.
        checkpoint_ok: False when the checkpoint section had errors (no follow-on errors).
    """
    cluster = _cluster(c, node) if node is not None else None
    if store == "redis" and store_redis is None and cluster is None:
        assert checkpoint_node is not None
        c.error(
            checkpoint_node.line,
            checkpoint_node.path,
            "the redis store needs a Redis URL: add 'redis: redis://HOST:PORT'",
        )
        return INVALID
    if not isinstance(cluster, ClusterConfig):
        return cluster
    assert node is not None
    if store == "redis" and store_redis is not None and not same_redis(store_redis, cluster.redis):
        assert checkpoint_node is not None
        where = checkpoint_node.value["redis"]
        c.error(
            where.line,
            where.path,
            "in cluster mode the checkpoint store must be the cluster's Redis "
            "(the fencing tokens live there); leave it out",
        )
        return INVALID
    if store != "redis" and checkpoint_ok:
        c.error(
            node.key_line,
            node.path,
            "cluster mode needs a shared checkpoint: add 'checkpoint: {store: redis}'",
        )
        return INVALID
    return cluster


def _cluster(c: Checker, node: Node) -> ClusterConfig | Invalid | None:
    if node.value is None:
        return None
    entries = c.mapping(node, CLUSTER_KEYS)
    if isinstance(entries, Invalid) or c.require(node, entries, ("redis",)):
        return INVALID
    values: dict[str, Any] = {}
    ok = True
    for key, child in entries.items():
        value: Any
        if key == "redis":
            value = read_redis_url(c, child)
        elif key in ("instance", "key_prefix"):
            value = c.string(child)
        else:
            _, reader, bounds = _CLUSTER_FIELDS[key]
            value = getattr(c, reader)(child, **bounds)
        if isinstance(value, Invalid):
            ok = False
        else:
            values[key] = value
    if not ok:
        return INVALID
    config = ClusterConfig(**values)
    if config.claim_interval > config.lease_ttl / 2:
        where = entries.get("claim_interval", node)
        c.error(
            where.line,
            where.path if "claim_interval" in entries else f"{node.path}.claim_interval",
            f"must be at most half of lease_ttl ({config.lease_ttl / 2:g}s), "
            f"got {config.claim_interval:g}",
        )
        return INVALID
    return config


def reject_disk_buffers(c: Checker, sinks: Node | None) -> None:
    """Report every ``buffer: {type: disk}`` of a sink: in cluster mode the checkpoint may
    pass events a disk buffer holds, and when their stream moves to another instance they
    would be stranded on this machine's disk."""
    if sinks is None or not sinks.is_list:
        return
    for item in sinks.value:
        buffer = item.value.get("buffer") if item.is_mapping else None
        kind = buffer.value.get("type") if buffer is not None and buffer.is_mapping else None
        if kind is not None and kind.value == "disk":
            c.error(
                kind.line,
                kind.path,
                "disk buffers are not supported in cluster mode (buffered events would be "
                "stranded here when their stream moves); use a memory buffer",
            )


_BATCH: dict[str, Field] = {
    "count": ("batch_count", "integer", {"ge": 1}),
    "period": ("batch_period", "number", {"ge": 0}),
}


def read_redis_sink(c: Checker, entries: Mapping[str, Node]) -> RedisStreamsOptions | Invalid:
    """The ``redis_streams``-specific keys of one sink (``REDIS_SINK_KEYS``; ``redis`` is
    required, which the caller has checked)."""
    values: dict[str, Any] = {}
    ok = True
    for key, child in entries.items():
        value: Any
        if key == "redis":
            value = read_redis_url(c, child)
        elif key == "stream":
            value = _template(c, child)
        elif key == "fields":
            value = _fields(c, child)
        elif key == "maxlen":
            value = c.integer(child, ge=0)
        elif key == "dedup_window":
            value = c.integer(child, ge=1)
        else:  # batch
            section = c.section(child, _BATCH)
            if isinstance(section, dict):
                values.update(section)
                continue
            value = section
        if isinstance(value, Invalid):
            ok = False
        else:
            values[key] = value
    return RedisStreamsOptions(**values) if ok and "redis" in values else INVALID


def _template(c: Checker, node: Node) -> str | Invalid:
    text = c.string(node)
    if isinstance(text, Invalid):
        return INVALID
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    except ValueError as exc:
        c.error(node.line, node.path, f"not a valid key template ({exc}); write {{{{ for {{")
        return INVALID
    unknown = sorted(names - _TEMPLATE_NAMES)
    if unknown:
        c.error(
            node.line,
            node.path,
            f"unknown placeholder {{{unknown[0]}}} (expected {{stream}} or {{event}})",
        )
        return INVALID
    return text


def _fields(c: Checker, node: Node) -> tuple[tuple[str, str], ...] | Invalid:
    if not node.is_mapping:
        c.error(node.line, node.path, f"expected a mapping of field: source, got {describe(node)}")
        return INVALID
    if not node.value:
        c.error(node.line, node.path, "must name at least one field")
        return INVALID
    result: list[tuple[str, str]] = []
    ok = True
    for name, child in node.value.items():
        source = c.choice(child, FIELD_SOURCES)
        if isinstance(source, Invalid):
            ok = False
        else:
            result.append((name, source))
    return tuple(result) if ok else INVALID
