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

import logging
import threading
from collections.abc import Collection, Sequence
from typing import Any

from streamvisor.cluster.balance import instance_name
from streamvisor.cluster.fence import Fence
from streamvisor.cluster.scripts import SINK_WRITE, Keys, ScriptRunner
from streamvisor.cluster.settings import RedisStreamsOptions
from streamvisor.dedup import digest
from streamvisor.redact import redact_url
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
        self._fields = options.fields
        self._names = [field for field, _ in options.fields]
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
        assert self._keys is not None
        groups = _group(events, self._target)
        calls = []
        owners: list[str] = []
        last_call: dict[str, int] = {}
        last_id: dict[str, str | None] = {}
        for (stream, target), group in groups.items():
            token = fence.token(stream)
            if token is None:  # not ours (any more): the owner re-reads these events
                self.not_owned += len(group)
                continue
            last_id[stream] = group[-1].last_event_id
            for start in range(0, len(group), CHUNK):
                keys = [
                    self._keys.fence(stream),
                    self._keys.sink_window(stream, self.name),
                    target,
                    self._keys.ckpt(stream),
                ]
                calls.append((SINK_WRITE, keys, group[start : start + CHUNK], token))
                owners.append(stream)
                last_call[stream] = len(calls) - 1
        if not calls:
            return
        prepared = []
        for index, (script, keys, chunk, token) in enumerate(calls):
            stream = owners[index]
            commit = stream in self._checkpoints and last_call[stream] == index
            prepared.append((script, keys, self._args(chunk, token, commit, last_id[stream])))
        results = self._runner.call_many(prepared)
        self._account(results, owners, fence)

    def _args(
        self, chunk: Sequence[Event], token: int, commit: bool, last: str | None
    ) -> list[Any]:
        args: list[Any] = [
            token,
            self.options.dedup_window,
            self.options.maxlen,
            len(self._fields),
            int(commit),
            self._fence.member if self._fence is not None else "",
            chunk[-1].received_at,
            int(last is not None),
            last or "",
            *self._names,
        ]
        for ev in chunk:
            args.append(f"{ev.id}\n{digest(ev.event, ev.data)}" if ev.id else "")
            args.extend(self._values(ev, token))
        return args

    def _account(self, results: list[Any], owners: list[str], fence: Fence) -> None:
        failure: Exception | None = None
        fenced: set[str] = set()
        for stream, result in zip(owners, results, strict=True):
            if isinstance(result, Exception):
                failure = failure or result
                continue
            status, added, dups = (int(x) for x in result)
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
        trim: list[Any] = ["MAXLEN", "~", self.options.maxlen] if self.options.maxlen else []
        pipe = self._client.pipeline(transaction=False)
        for ev in events:
            idmp: list[Any] = []
            if self._idmp and ev.id:
                idmp = ["IDMP", ev.stream, f"{ev.id}\n{digest(ev.event, ev.data)}"]
            values = self._values(ev, None)
            entry = [item for pair in zip(self._names, values, strict=True) for item in pair]
            pipe.execute_command("XADD", self._target(ev), *idmp, *trim, "*", *entry)
        pipe.execute()
        self.written += len(events)

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

    def _values(self, ev: Event, token: int | None) -> list[str]:
        out = []
        for _, source in self._fields:
            if source == "data":
                out.append(ev.data)
            elif source == "id":
                out.append(ev.id or "")
            elif source == "stream":
                out.append(ev.stream)
            elif source == "event":
                out.append(ev.event)
            elif source == "last_event_id":
                out.append(ev.last_event_id or "")
            elif source == "received_at":
                out.append(format_timestamp(ev.received_at))
            elif source == "token":
                out.append("" if token is None else str(token))
            else:  # instance
                out.append(self._instance)
        return out

    def _describe(self, exc: Exception) -> str:
        return f"redis_streams sink {self.name} ({redact_url(self.url)}): {exc}"


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
