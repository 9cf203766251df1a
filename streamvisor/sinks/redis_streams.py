"""The ``redis_streams`` sink: events become Redis Stream entries (``XADD``), batched.

Two ways to write, both one pipelined round trip per ``write`` (never one per event):

- **Fenced** (cluster mode, when the sink's Redis is the checkpoint's Redis; see
  ``attach``): per stream, one ``SINK_WRITE`` script per chunk of events checks the writer's
  fencing token, drops ids this sink already holds (a window of ``id + digest`` kept in Redis)
  and appends the rest, and, for streams this sink alone takes, moves the stream's checkpoint
  in the same script. Delivery, dedup and checkpoint commit together, so entries land exactly
  once across failovers and a stale owner's writes are rejected (research note §3, §4.1).
- **Plain** (no cluster, or another Redis): pipelined ``XADD`` with ``MAXLEN ~``;
  at-least-once. On Redis >= 8.6, detected from ``INFO server``, each event with an id is
  sent with ``IDMP <stream> <id + digest>`` so Redis drops repeats itself (Redis docs,
  "Idempotent message processing"). CI runs Redis 7.0, so the IDMP path is checked only
  against a fake client.

Redpanda Connect's ``redis_streams`` output is the model for the keys (``stream`` template,
``maxlen``, batching). Connection failures are retried with backoff (the fenced write is
idempotent for events with ids); after the last attempt ``write`` raises ``SinkError``.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import Any

from streamvisor.cluster.balance import instance_name
from streamvisor.cluster.fence import Fence
from streamvisor.cluster.scripts import Arg, Call, Keys, ScriptRunner
from streamvisor.cluster.settings import RedisStreamsOptions
from streamvisor.cluster.sink_scripts import SINK_WRITE, XADD_BATCH
from streamvisor.policy.dedup import digest
from streamvisor.policy.redact import redact_url
from streamvisor.sinks.base import SinkError
from streamvisor.sse import Event, format_timestamp

__all__ = ["IDMP_VERSION", "RedisStreamsSink"]

log = logging.getLogger(__name__)

IDMP_VERSION = (8, 6)
"""First Redis version with ``XADD ... IDMP`` (Redis docs, XADD)."""
CHUNK = 500  # events per script call: keeps each call's argument list and run time small
_ATTEMPTS = 5
_TEMPLATE_CACHE = 4096


class RedisStreamsSink:
    """Writes events to Redis Streams.

    Args:
        options: the validated sink options.
        name: the sink's name (logs, metrics, the dedup window's key).
        stop_event: set at shutdown; retries stop waiting.
        client: a ``redis.Redis`` (tests); default: one made from ``options.redis``.
    """

    def __init__(
        self,
        options: RedisStreamsOptions,
        *,
        name: str = "redis_streams",
        stop_event: threading.Event | None = None,
        client: Any = None,
    ) -> None:
        self.name = name
        self.max_batch = options.batch_count
        self.max_wait = options.batch_period
        self.options = options
        self.url = options.redis
        if client is None:
            import redis

            client = redis.Redis.from_url(
                options.redis, decode_responses=True, socket_timeout=5.0, health_check_interval=30
            )
        self._client = client
        self._runner = ScriptRunner(client)
        self._stop = stop_event or threading.Event()
        self._getters = [_GETTERS[source] for _, source in options.fields]
        self._fields_json = _dumps([field for field, _ in options.fields])
        self._targets: dict[tuple[str, str], str] = {}
        self._fence: Fence | None = None
        self._keys: Keys | None = None
        self._checkpoints: frozenset[str] = frozenset()
        self._instance = ""
        self._idmp: bool | None = None
        self.written = 0
        self.duplicates = 0
        self.not_owned = 0
        self.fenced_writes: dict[str, int] = {}

    @property
    def fenced(self) -> bool:
        """True once ``attach`` made writes fenced."""
        return self._fence is not None

    def attach(self, fence: Fence, keys: Keys, *, checkpoints: Collection[str] = ()) -> None:
        """Write through the fenced script from now on (call before the first write).

        Args:
            fence: the lease holder (tokens, and whom to tell about a rejected write).
            keys: the cluster's key names (fence keys, checkpoint hashes, dedup windows).
            checkpoints: streams whose checkpoint this sink writes (it is their only sink).
        """
        self._fence = fence
        self._keys = keys
        self._checkpoints = frozenset(checkpoints)
        self._instance = instance_name(fence.member)

    # -- Sink protocol -----------------------------------------------------------------
    def write(self, events: Sequence[Event]) -> None:
        """Append ``events`` in one pipelined round trip (retried on connection errors).

        Raises:
            SinkError: Redis could not be reached after the retries, or refused a command.
        """
        if not events:
            return
        from redis.exceptions import ConnectionError, RedisError, TimeoutError

        delay = 0.1
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                if self._fence is not None:
                    self._write_fenced(events, self._fence)
                else:
                    self._write_plain(events)
                return
            except (ConnectionError, TimeoutError) as exc:
                if attempt == _ATTEMPTS or self._stop.is_set():
                    raise SinkError(self._describe(exc)) from exc
                log.warning("sink %s: %s; retrying in %.1fs", self.name, self._describe(exc), delay)
                self._stop.wait(delay)
                delay = min(delay * 2, 2.0)
            except RedisError as exc:
                raise SinkError(self._describe(exc)) from exc

    def flush(self) -> None:
        """Nothing is buffered between writes."""

    def close(self) -> None:
        """Close the connection pool. Idempotent."""
        self._client.close()

    # -- fenced ------------------------------------------------------------------------
    def _write_fenced(self, events: Sequence[Event], fence: Fence) -> None:
        owners: list[list[str]] = []
        results = self._runner.call_streamed(self._fenced_calls(events, fence, owners))
        self._account(results, owners, fence)

    def _fenced_calls(
        self, events: Sequence[Event], fence: Fence, owners: list[list[str]]
    ) -> Iterator[Call]:
        """``SINK_WRITE`` calls of about CHUNK events each, built one at a time (each is
        sent before the next is built). A part is a run of one SSE stream's events for one
        target key: [token, checkpoint flag, at, last id or false, rows]. ``owners`` gets
        each call's streams, one per part."""
        assert self._keys is not None
        groups = _group(events, self._target)
        last_group = {key[0]: key for key in groups}  # per stream, its last group
        head: list[Arg] = [self.options.dedup_window, self.options.maxlen, fence.member]
        keys: list[str] = []
        parts: list[list[Any]] = []
        size = 0
        for (stream, target), group in groups.items():
            token = fence.token(stream)
            if token is None:  # not ours (any more): the owner re-reads these events
                self.not_owned += len(group)
                continue
            part_keys = [
                self._keys.fence(stream),
                self._keys.sink_window(stream, self.name),
                target,
                self._keys.ckpt(stream),
            ]
            commits = stream in self._checkpoints and last_group[stream] == (stream, target)
            text = str(token)
            for start in range(0, len(group), CHUNK):
                run = group[start : start + CHUNK]
                last = run[-1].last_event_id
                final = commits and start + CHUNK >= len(group)
                rows = [[_member(ev), *self._values(ev, text)] for ev in run]
                if not parts:
                    owners.append([])
                keys += part_keys
                parts.append([token, int(final), run[-1].received_at, _or_false(last), rows])
                owners[-1].append(stream)
                size += len(run)
                if size >= CHUNK:
                    yield SINK_WRITE, keys, [*head, self._fields_json, _dumps(parts)]
                    keys, parts, size = [], [], 0
        if parts:
            yield SINK_WRITE, keys, [*head, self._fields_json, _dumps(parts)]

    def _account(self, results: list[Any], owners: list[list[str]], fence: Fence) -> None:
        failure: Exception | None = None
        fenced: set[str] = set()
        for streams, result in zip(owners, results, strict=True):
            if isinstance(result, Exception):
                failure = failure or result
                continue
            for i, stream in enumerate(streams):
                status, added, dups = (int(x) for x in result[3 * i : 3 * i + 3])
                if status < 0:
                    fenced.add(stream)
                    self.fenced_writes[stream] = self.fenced_writes.get(stream, 0) + 1
                self.written += added
                self.duplicates += dups
        for stream in fenced:
            log.warning(
                "sink %s: write for stream %s rejected: another instance holds a newer lease",
                self.name,
                stream,
                extra={"sink": self.name, "stream": stream},
            )
            fence.fenced(stream)
        if failure is not None:
            raise failure  # the whole write is retried: the dedup window makes that safe

    # -- plain -------------------------------------------------------------------------
    def _write_plain(self, events: Sequence[Event]) -> None:
        if self._idmp is None:
            self._idmp = _server_version(self._client) >= IDMP_VERSION
        for result in self._runner.call_streamed(self._plain_calls(events, self._idmp)):
            if isinstance(result, Exception):
                raise result
            self.written += int(result)

    def _plain_calls(self, events: Sequence[Event], idmp: bool) -> Iterator[Call]:
        head: list[Arg] = [self.options.maxlen, int(idmp), self._fields_json]
        for (stream, target), group in _group(events, self._target).items():
            for start in range(0, len(group), CHUNK):
                rows = [
                    [stream if ev.id else "", _member(ev), *self._values(ev, "")]
                    for ev in group[start : start + CHUNK]
                ]
                yield XADD_BATCH, [target], [*head, _dumps(rows)]

    # -- helpers -----------------------------------------------------------------------
    def _target(self, ev: Event) -> str:
        key = (ev.stream, ev.event)
        target = self._targets.get(key)
        if target is None:
            if len(self._targets) >= _TEMPLATE_CACHE:
                self._targets.clear()
            target = self._targets[key] = self.options.stream.format(
                stream=ev.stream, event=ev.event
            )
        return target

    def _values(self, ev: Event, token: str) -> list[str]:
        return [get(ev, token, self._instance) for get in self._getters]

    def _describe(self, exc: Exception) -> str:
        return f"redis_streams sink {self.name} ({redact_url(self.url)}): {exc}"


def _member(ev: Event) -> str:
    """The dedup key of an event: its id and a digest of its content ('' without an id)."""
    return f"{ev.id}\n{digest(ev.event, ev.data)}" if ev.id else ""


def _or_false(value: str | None) -> str | bool:
    return False if value is None else value  # JSON false: Lua's cjson makes null truthy


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


_GETTERS: dict[str, Callable[[Event, str, str], str]] = {
    "stream": lambda ev, token, instance: ev.stream,
    "id": lambda ev, token, instance: ev.id or "",
    "event": lambda ev, token, instance: ev.event,
    "data": lambda ev, token, instance: ev.data,
    "last_event_id": lambda ev, token, instance: ev.last_event_id or "",
    "received_at": lambda ev, token, instance: format_timestamp(ev.received_at),
    "token": lambda ev, token, instance: token,
    "instance": lambda ev, token, instance: instance,
}


def _group(events: Sequence[Event], target: Any) -> dict[tuple[str, str], list[Event]]:
    groups: dict[tuple[str, str], list[Event]] = {}
    for ev in events:
        groups.setdefault((ev.stream, target(ev)), []).append(ev)
    return groups


def _server_version(client: Any) -> tuple[int, ...]:
    """The server's ``redis_version`` as a tuple of ints ((0,) when unreadable)."""
    text = str(client.info("server").get("redis_version", "0"))
    parts = []
    for part in text.split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)
