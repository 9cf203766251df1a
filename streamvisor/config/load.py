"""Load a YAML config into frozen values, reporting every problem with its line.

``load_config`` reads one file (with ``source``: a regular file of 10 MiB at most);
everything else is pure (no network, no actors, no other files). Problems are collected,
never raised one at a time: ``ConfigErrors`` carries all of them, sorted by line, each
formatted ``FILE:LINE: path.to.key: message`` with secrets masked. This module reads the
file, walks the top level and the small ``checkpoint:`` and ``admin:`` sections, and puts
the sections together; the other sections have their own modules (``streams``, ``sinks``,
``relay.settings``, ``cluster.settings``, ``tracing``), the YAML is walked by ``walker``
and single values are read by the ``Checker``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from streamvisor.cluster.settings import (
    ClusterConfig,
    read_cluster,
    read_redis_url,
    reject_disk_buffers,
)
from streamvisor.config.buffers import place_disk_buffer
from streamvisor.config.checker import Checker
from streamvisor.config.checks import warn_streams
from streamvisor.config.model import AdminConfig, CheckpointConfig, Config, SinkConfig
from streamvisor.config.node import INVALID, Invalid, Node, describe
from streamvisor.config.sinks import read_sinks
from streamvisor.config.source import read_source
from streamvisor.config.streams import read_defaults, read_streams
from streamvisor.config.tracing import read_tracing
from streamvisor.config.walker import read_document
from streamvisor.errors import ConfigError
from streamvisor.relay.settings import read_relay_section

__all__ = [
    "AdminConfig",
    "CheckpointConfig",
    "Config",
    "ConfigErrors",
    "SinkConfig",
    "load_config",
    "parse_config",
]

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
        path: the YAML file, a regular file of at most ``MAX_CONFIG_BYTES`` (10 MiB);
            relative paths inside it resolve against its folder.
        environ: variables for ``${VAR}`` interpolation (``os.environ`` when None).

    Raises:
        ConfigErrors: with every problem found.
    """
    source = os.fspath(path)
    try:
        data = read_source(source)
    except ConfigError as exc:
        raise ConfigErrors([exc]) from None
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
    config = _build(checker, root, base_dir) if root is not None else None
    errors = checker.final_errors()
    if errors or config is None:
        raise ConfigErrors(errors)
    return config


def _build(c: Checker, root: Node, base_dir: str) -> Config | None:
    """The ``Config`` of a document's top-level mapping; None when anything is wrong."""
    top = c.mapping(root, TOP_KEYS)
    if isinstance(top, Invalid):
        return None
    shutdown = _optional(top.get("shutdown_timeout"), lambda n: c.number(n, gt=0))
    defaults = read_defaults(c, top.get("defaults"), base_dir)
    streams = read_streams(c, root, top.get("streams"), defaults, base_dir)
    names = [entry.name for entry in streams if entry.name is not None]
    sinks = read_sinks(c, top.get("sinks"), names, base_dir)
    checkpoint = _checkpoint(c, top.get("checkpoint"), base_dir)
    admin = _admin(c, top.get("admin"))
    relay = read_relay_section(c, top.get("relay"), names, base_dir)
    tracing = read_tracing(c, top.get("tracing"))
    store = checkpoint if isinstance(checkpoint, CheckpointConfig) else None
    cluster = read_cluster(
        c,
        top.get("cluster"),
        top.get("checkpoint"),
        store=None if store is None else store.store,
        store_redis=None if store is None else store.redis,
        checkpoint_ok=checkpoint is not INVALID,
    )
    if isinstance(cluster, ClusterConfig):
        reject_disk_buffers(c, top.get("sinks"))
    warn_streams(c, streams, sinks)
    specs = tuple(entry.spec for entry in streams if entry.spec is not None)
    parts = (shutdown, checkpoint, admin, relay, tracing, cluster)
    if c.errors or any(isinstance(v, Invalid) for v in parts):
        return None
    assert not isinstance(checkpoint, Invalid) and not isinstance(admin, Invalid)
    assert not isinstance(relay, Invalid)
    assert not isinstance(tracing, Invalid) and not isinstance(cluster, Invalid)
    if checkpoint is not None and checkpoint.store == "redis" and checkpoint.redis is None:
        assert cluster is not None  # read_cluster reported a Redis store without a URL
        checkpoint = dataclasses.replace(checkpoint, redis=cluster.redis)
    return Config(
        streams=specs,
        sinks=tuple(
            place_disk_buffer(sink, checkpoint, base_dir) for sink in sinks if sink is not None
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


def _optional(node: Node | None, read: Callable[[Node], Any]) -> Any:
    return None if node is None or node.value is None else read(node)


def _checkpoint(c: Checker, node: Node | None, base_dir: str) -> CheckpointConfig | Invalid | None:
    if node is None or node.value is None:
        return None
    entries = c.mapping(node, ("path", "interval", "store", "redis", "recent_ids"))
    if isinstance(entries, Invalid):
        return INVALID
    store = _optional(entries.get("store"), lambda n: c.choice(n, ("sqlite", "redis")))
    if store in (None, "sqlite") and c.require(node, entries, ("path",)):
        return INVALID
    if store == "redis" and "path" in entries:
        where = entries["path"]
        c.error(where.key_line, where.path, "'path' does not apply to the redis store")
        return INVALID
    path = c.file_path(entries["path"], base_dir) if "path" in entries else ""
    interval = _optional(entries.get("interval"), lambda n: c.number(n, gt=0))
    redis = _optional(entries.get("redis"), lambda n: read_redis_url(c, n))
    recent = _optional(entries.get("recent_ids"), lambda n: c.integer(n, ge=0))
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


def _admin(c: Checker, node: Node | None) -> AdminConfig | Invalid | None:
    if node is None or node.value is None:
        return None
    entries = c.mapping(node, ("listen", "token"))
    if isinstance(entries, Invalid) or c.require(node, entries, ("listen",)):
        return INVALID
    listen = entries["listen"]
    parsed = c.address(listen)
    token = _optional(entries.get("token"), c.string)
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


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
