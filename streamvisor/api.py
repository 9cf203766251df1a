"""``Streamvisor``: the Python API (start, subscribe, status, reconnect, close, stop).

A plain object (not an actor) that wires the actor system: the timer, the hub, the
supervisor, and sink actors. It only ever talks to actors with ``tell`` or with ``ask``
and a timeout. It never calls ``ActorRegistry.stop_all()``: the user's actors are theirs.
"""

from __future__ import annotations

import itertools
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

import pykka

from streamvisor.actors.hub import FLUSH_ALL, OVERFLOW_POLICIES, POSITIONS, HubActor
from streamvisor.actors.messages import (
    AddStream,
    Close,
    Publish,
    Reconnect,
    RemoveStream,
    SeedDedup,
    Snapshot,
    StopStreams,
    Subscribe,
    Unsubscribe,
)
from streamvisor.actors.scheduler import Scheduler
from streamvisor.actors.sink import SinkActor
from streamvisor.actors.stream import ConnectionFactory, ConnectionLike
from streamvisor.actors.supervisor import SupervisorActor
from streamvisor.spec import StreamSpec
from streamvisor.states import StreamState

if TYPE_CHECKING:
    from streamvisor.checkpoint import Checkpoint
    from streamvisor.config import Config
    from streamvisor.sinks.base import Sink

log = logging.getLogger(__name__)

_ASK_TIMEOUT = 5.0
Positions = dict[str, tuple[str | None, tuple[tuple[str, str], ...]]]


def _default_connect(spec: StreamSpec, last_event_id: str | None) -> ConnectionLike:
    from streamvisor.connection import Connection, shared_session

    return Connection(spec, last_event_id, session=shared_session())


class Streamvisor:
    """Supervised SSE streams with deduplicated fan-out to subscriber actors.

    Args:
        streams: the streams to run.
        dedup_window: default dedup window size (each stream's ``dedup_window`` wins).
        checkpoints: per stream, where to resume (Last-Event-ID and dedup seed).
        connect: connection factory (tests inject scripted connections).
        rng: random source for backoff jitter.
        on_state: called (in the supervisor's thread) on every stream state change.
    """

    def __init__(
        self,
        streams: Iterable[StreamSpec] = (),
        *,
        dedup_window: int = 4096,
        checkpoints: dict[str, Checkpoint] | None = None,
        connect: ConnectionFactory | None = None,
        rng: random.Random | None = None,
        on_state: Callable[[str, StreamState], None] | None = None,
    ) -> None:
        self._specs: dict[str, StreamSpec] = {}
        for spec in streams:
            if spec.name in self._specs:
                raise ValueError(f"duplicate stream name {spec.name!r}")
            self._specs[spec.name] = spec
        self._dedup_window = dedup_window
        self._checkpoints = dict(checkpoints or {})
        from streamvisor.upstream.mcp.registry import McpStreams

        self._mcp = McpStreams(self._publish_extra)  # kind: mcp sessions, sv.call
        self._connect = connect or self._mcp.connector(_default_connect)
        self._rng = rng
        self._on_state = on_state
        self._scheduler = Scheduler()
        self._hub: pykka.ActorRef[Any] | None = None
        self._supervisor: pykka.ActorRef[Any] | None = None
        self._pending: list[Subscribe] = []
        self._sinks: dict[str, pykka.ActorRef[Any]] = {}
        self._sink_objects: dict[str, Sink] = {}
        self._names = itertools.count(1)
        self._lock = threading.Lock()
        self._started = False
        self._stopped = False
        self.final_positions: Positions = {}

    @classmethod
    def from_config(cls, path: str | os.PathLike[str], **kwargs: Any) -> Streamvisor:
        """Build from a YAML config file: its streams and its sinks.

        Raises:
            ConfigError: the file is missing or invalid (every problem listed).
        """
        from streamvisor.config import load_config

        config = load_config(path)
        return cls.from_loaded(config, **kwargs)

    @classmethod
    def from_loaded(
        cls, config: Config, *, stop_event: threading.Event | None = None, **kwargs: Any
    ) -> Streamvisor:
        """Build from an already loaded ``Config``.

        Args:
            config: the validated config.
            stop_event: set when stopping, so sinks that wait (webhook retries) give up.
            **kwargs: passed to ``Streamvisor()``.
        """
        from streamvisor.sinks import build_sink

        sv = cls(config.streams, **kwargs)
        for sink_config in config.sinks:
            sv.add_sink(
                build_sink(sink_config, stop_event),
                streams=sink_config.streams,
                events=sink_config.events,
                buffer=sink_config.buffer,
                overflow=sink_config.overflow,
            )
        return sv

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> Streamvisor:
        """Start the actors and connect every enabled stream. Returns self."""
        with self._lock:
            if self._started:
                return self
            self._started = True
        self._scheduler.start()
        schedule = self._scheduler.call_later
        self._hub = HubActor.start(schedule, self._dedup_window)
        self._supervisor = SupervisorActor.start(
            self._hub, schedule, self._connect, rng=self._rng, on_state=self._on_state
        )
        for sub in self._pending:
            self._hub.tell(sub)
        self._pending.clear()
        for spec in self._specs.values():
            checkpoint = self._checkpoints.get(spec.name)
            self._hub.tell(
                SeedDedup(
                    spec.name,
                    tuple(checkpoint.recent) if checkpoint is not None else (),
                    spec.dedup_window,
                )
            )
            self._supervisor.tell(
                AddStream(spec, checkpoint.last_event_id if checkpoint is not None else None)
            )
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop in order: streams, then hub drain, then our sinks. Idempotent.

        User subscriber actors are not stopped (they are the caller's); they receive
        every event the hub had accepted before this returns.
        """
        with self._lock:
            if self._stopped or not self._started:
                self._stopped = True
                return
            self._stopped = True
        deadline = time.monotonic() + timeout
        hub, supervisor = self._hub, self._supervisor
        assert hub is not None and supervisor is not None
        try:
            refs: list[Any] = _ask(supervisor, StopStreams(), _remaining(deadline))
            for ref in refs:
                ref.actor_stopped.wait(_remaining(deadline))
            supervisor.stop(block=True, timeout=_remaining(deadline))
        except (pykka.Timeout, pykka.ActorDeadError):
            log.warning("streams did not stop within %.1fs", timeout)
        try:
            _ask(hub, FLUSH_ALL, _remaining(deadline))
            for name, ref in self._sinks.items():
                try:
                    ref.stop(block=True, timeout=_remaining(deadline))
                except pykka.Timeout:
                    log.warning("sink %s did not finish writing within the deadline", name)
            self.final_positions = _ask(hub, POSITIONS, _remaining(deadline))
            hub.stop(block=True, timeout=_remaining(deadline))
        except (pykka.Timeout, pykka.ActorDeadError):
            log.warning("hub did not drain within %.1fs", timeout)
        self._mcp.close(timeout=min(2.0, _remaining(deadline)))  # DELETE MCP sessions
        self._scheduler.stop()

    def __enter__(self) -> Streamvisor:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- subscribers -------------------------------------------------------------------
    def subscribe(
        self,
        ref: pykka.ActorRef[Any],
        *,
        streams: Sequence[str] | None = None,
        events: Sequence[str] | None = None,
        buffer: int = 10000,
        overflow: str = "drop_oldest",
        name: str | None = None,
    ) -> str:
        """Deliver events to a pykka actor, one ``Event`` per message.

        Args:
            ref: the subscriber actor.
            streams: only these streams (default: all).
            events: only these event types (default: all).
            buffer: events held for this subscriber while it is busy.
            overflow: when the buffer is full: ``drop_oldest``, ``drop_newest`` or
                ``disconnect`` (it is told ``SubscriberOverflow`` and removed).
            name: a name for status output (default: generated).

        Returns:
            The subscriber's name (for ``unsubscribe``).
        """
        return self._subscribe(ref, streams, events, buffer, overflow, name, batch=False)

    def add_sink(
        self,
        sink: Sink,
        *,
        streams: Sequence[str] | None = None,
        events: Sequence[str] | None = None,
        buffer: int = 10000,
        overflow: str = "drop_newest",
    ) -> str:
        """Run a built-in sink (stdout, file, webhook, ...) as a batching subscriber."""
        ref = SinkActor.start(sink, self._scheduler.call_later, lambda: self._hub)
        name = self._subscribe(ref, streams, events, buffer, overflow, sink.name, batch=True)
        self._sinks[name] = ref
        self._sink_objects[name] = sink
        return name

    def _subscribe(
        self,
        ref: pykka.ActorRef[Any],
        streams: Sequence[str] | None,
        events: Sequence[str] | None,
        buffer: int,
        overflow: str,
        name: str | None,
        *,
        batch: bool,
    ) -> str:
        if overflow not in OVERFLOW_POLICIES:
            raise ValueError(f"overflow must be one of {', '.join(OVERFLOW_POLICIES)}")
        name = name or f"subscriber-{next(self._names)}"
        msg = Subscribe(
            name,
            ref,
            frozenset(streams) if streams is not None else None,
            frozenset(events) if events is not None else None,
            buffer,
            overflow,
            batch,
        )
        with self._lock:
            if self._hub is None:
                self._pending.append(msg)
                return name
        self._hub.tell(msg)
        return name

    def unsubscribe(self, name: str) -> None:
        """Stop delivering to a subscriber."""
        if self._hub is not None:
            self._hub.tell(Unsubscribe(name))
        self._pending = [p for p in self._pending if p.name != name]

    # -- commands and status -----------------------------------------------------------
    def add_stream(self, spec: StreamSpec, last_event_id: str | None = None) -> None:
        """Start supervising another stream."""
        if spec.name in self._specs:
            raise ValueError(f"duplicate stream name {spec.name!r}")
        self._specs[spec.name] = spec
        if self._started and not self._stopped:
            # The hub keeps the stream's dedup window across remove/add (reload).
            assert self._supervisor is not None
            self._supervisor.tell(AddStream(spec, last_event_id))
        elif last_event_id is not None:
            from streamvisor.checkpoint import Checkpoint

            self._checkpoints[spec.name] = Checkpoint(last_event_id)

    def remove_stream(self, name: str) -> bool:
        """Stop a stream and forget it."""
        self._specs.pop(name, None)
        return bool(self._ask_supervisor(RemoveStream(name)))

    def reconnect(self, name: str) -> bool:
        """Drop the stream's connection and reconnect now, resuming from its last id."""
        return bool(self._ask_supervisor(Reconnect(name)))

    def close(self, name: str) -> bool:
        """End a stream for good (state ``closed``)."""
        return bool(self._ask_supervisor(Close(name)))

    def _ask_supervisor(self, message: Any) -> Any:
        if self._supervisor is None or self._stopped:
            return False
        try:
            return _ask(self._supervisor, message, _ASK_TIMEOUT)
        except pykka.ActorDeadError:
            return False

    def status(self) -> dict[str, Any]:
        """Each stream's state, last_event_id, counters and last error (redacted), and
        each subscriber's queue depth and drops."""
        streams: dict[str, Any] = {}
        subscribers: dict[str, Any] = {}
        if self._supervisor is not None and self._hub is not None and not self._stopped:
            try:
                streams = _ask(self._supervisor, Snapshot(), _ASK_TIMEOUT)
                hub = _ask(self._hub, Snapshot(), _ASK_TIMEOUT)
            except pykka.ActorDeadError:
                hub = {"streams": {}, "subscribers": {}}
            subscribers = hub["subscribers"]
            for name, info in streams.items():
                extra = hub["streams"].get(name, {})
                live_id = extra.pop("last_event_id", None)
                info.update(extra)
                if live_id is not None:
                    info["last_event_id"] = live_id
                info.setdefault("events", 0)
                info.setdefault("dedup_dropped", 0)
                info.setdefault("reused_ids", 0)
                info.setdefault("subscribers", {})
                mcp = self._mcp.status(name)
                if mcp is not None:
                    info["mcp"] = mcp
        else:
            for name, spec in self._specs.items():
                streams[name] = {"state": StreamState.DISCONNECTED.value, "url": spec.url}
        return {"streams": streams, "subscribers": subscribers}

    def call(
        self,
        stream: str,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        timeout: float = 30.0,
        idempotent: bool = False,
    ) -> Any:
        """Send a JSON-RPC request on a ``kind: mcp`` stream's session; return its result.

        Progress and log notifications on the call's answer stream are published as the
        stream's events. See ``streamvisor.upstream.mcp.invoke`` for the rules.

        Raises:
            KeyError: no ``kind: mcp`` stream of that name.
            McpCallError: a JSON-RPC error, or an answer that could not be resumed
                (``McpTimeoutError``, also a ``TimeoutError``, after ``timeout`` seconds).
        """
        return self._mcp.call(
            stream,
            method,
            params,
            timeout=timeout,
            idempotent=idempotent,
            spec=self._specs.get(stream),
        )

    def _publish_extra(self, stream: str, events: Sequence[Any]) -> None:
        if self._hub is not None:
            self._hub.tell(Publish(stream, list(events)))

    def positions(self) -> Positions:
        """Checkpoint positions: per stream, the Last-Event-ID every sink has written."""
        if self._hub is None or self._stopped:
            return dict(self.final_positions)
        result: Positions = _ask(self._hub, POSITIONS, _ASK_TIMEOUT)
        return result

    @property
    def sinks(self) -> dict[str, Sink]:
        """The built-in sinks by name."""
        return dict(self._sink_objects)


def _ask(ref: pykka.ActorRef[Any], message: Any, timeout: float) -> Any:
    """Ask from outside the actor system, always with a timeout (never from an actor)."""
    return ref.ask(message, block=True, timeout=timeout)


def _remaining(deadline: float) -> float:
    return max(deadline - time.monotonic(), 0.01)
