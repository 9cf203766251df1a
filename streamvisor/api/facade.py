"""``Streamvisor``: the Python API (start, subscribe, status, reconnect, close, stop).

A plain object (not an actor) that wires the actor system: the timer, the hub (subscriber
registry and books), the supervisor, and sink actors with their buffers. It only ever talks
to actors with ``tell`` or with ``ask`` and a timeout. It never calls
``ActorRegistry.stop_all()``: the user's actors are theirs.

Flow control (DESIGN.md, "every event delivered"): each subscriber and sink has a bounded
buffer; by default (``when_full="block"``) a full one pauses the streams feeding it, so
nothing is lost; ``drop_newest``, ``drop_oldest`` and ``disconnect`` are for live-only views.
"""

from __future__ import annotations

import dataclasses
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

from streamvisor.actors.hub import Hub, Positions
from streamvisor.actors.messages import (
    AddStream,
    Close,
    Drain,
    Reconnect,
    RemoveStream,
    Snapshot,
    StopStreams,
)
from streamvisor.actors.outlets import ActorOutlet, ListenerOutlet, SinkOutlet
from streamvisor.actors.scheduler import Scheduler
from streamvisor.actors.sink import SinkActor
from streamvisor.actors.stream import ConnectionFactory
from streamvisor.actors.supervisor import SupervisorActor
from streamvisor.buffers import DiskBuffer, MemoryBuffer, SinkBuffer
from streamvisor.policy.flow import BufferSettings, WhenFull
from streamvisor.policy.redact import redact_url
from streamvisor.spec import StreamSpec
from streamvisor.sse import Event
from streamvisor.states import StreamState
from streamvisor.status import Status, StreamStatus

if TYPE_CHECKING:
    from streamvisor.api.iterator import EventStream
    from streamvisor.checkpoint.store import Checkpoint
    from streamvisor.config.load import Config
    from streamvisor.daemon.tracing import AttemptObserver
    from streamvisor.sinks.base import Sink

log = logging.getLogger(__name__)

_ASK_TIMEOUT = 5.0


def _default_connector() -> ConnectionFactory:
    # One per Streamvisor: each stream's cookie jar lives here (made at its first cookie).
    from streamvisor.upstream.connector import HTTPConnector

    return HTTPConnector()


class Streamvisor:
    """Supervised SSE streams with deduplicated fan-out to subscriber actors.

    Args:
        streams: the streams to run.
        dedup_window: default dedup window size (each stream's ``dedup_window`` wins).
        checkpoints: per stream, where to resume (Last-Event-ID and dedup seed).
        connect: connection factory (tests inject scripted connections); by default an
            ``HTTPConnector``: one shared connection pool, one cookie jar per stream.
        rng: random source for backoff jitter.
        on_state: called (in the supervisor's thread) on every stream state change.
        observer: told about every connection attempt (``streamvisor.daemon.tracing``); None: off.
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
        observer: AttemptObserver | None = None,
    ) -> None:
        self._specs: dict[str, StreamSpec] = {}
        for spec in streams:
            if spec.name in self._specs:
                raise ValueError(f"duplicate stream name {spec.name!r}")
            self._specs[spec.name] = spec
        self._dedup_window = dedup_window
        self._checkpoints = dict(checkpoints or {})
        from streamvisor.upstream.mcp.registry import McpStreams

        self._mcp = McpStreams()  # kind: mcp sessions and sv.call
        # kind: mcp streams get an MCP session connection; every other kind goes to
        # ``connect`` (or the default per-stream-cookie connector).
        self._connect = self._mcp.connector(
            connect if connect is not None else _default_connector()
        )
        self._observer = observer
        if observer is not None:
            self._connect = observer.wrap_connect(self._connect)
        self._rng = rng
        self._state_listeners: list[Callable[[str, StreamState], None]] = []
        if on_state is not None:
            self._state_listeners.append(on_state)
        self._last_errors: dict[str, str] = {}
        self._scheduler = Scheduler()
        self._hub = Hub(dedup_window)
        self._supervisor: pykka.ActorRef[Any] | None = None
        self._sinks: dict[str, pykka.ActorRef[Any]] = {}
        self._buffers: dict[str, SinkBuffer] = {}
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
        from streamvisor.config.load import load_config

        config = load_config(path)
        return cls.from_loaded(config, **kwargs)

    @classmethod
    def from_loaded(
        cls,
        config: Config,
        *,
        stop_event: threading.Event | None = None,
        wrap_sink: Callable[[Sink], Sink] | None = None,
        **kwargs: Any,
    ) -> Streamvisor:
        """Build from an already loaded ``Config``.

        Args:
            config: the validated config.
            stop_event: set when stopping, so sinks that wait (webhook retries) give up.
            wrap_sink: applied to each built sink (cluster mode fences or gates them).
            **kwargs: passed to ``Streamvisor()``.
        """
        from streamvisor.policy.resume import resume_point
        from streamvisor.sinks import build_sink

        wrap = wrap_sink or (lambda sink: sink)
        built = [(wrap(build_sink(sc, stop_event)), sc) for sc in config.sinks]
        checkpoints = dict(kwargs.pop("checkpoints", None) or {})
        lids = {name: cp.last_event_id for name, cp in checkpoints.items()}
        recovered: list[dict[str, Any] | None] = []
        for sink, sink_config in built:
            recover = getattr(sink, "recover", None)
            held = recover(lids) if recover is not None else None  # the sink skips these
            # A disk buffer may hold events past the file: resume from the checkpoint.
            recovered.append(held if sink_config.buffer.type == "memory" else None)
        for spec in config.streams:
            held = [
                None if r is None else r.get(spec.name)
                for (_, sc), r in zip(built, recovered, strict=True)
                if sc.streams is None or spec.name in sc.streams
            ]
            point = resume_point(checkpoints.get(spec.name), held, spec.dedup_window)
            if point is not None:
                checkpoints[spec.name] = point
        sv = cls(config.streams, checkpoints=checkpoints, **kwargs)
        for sink, sink_config in built:
            sv.add_sink(
                sink,
                streams=sink_config.streams,
                events=sink_config.events,
                buffer=sink_config.buffer,
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
        self._supervisor = SupervisorActor.start(
            self._hub,
            schedule,
            self._connect,
            rng=self._rng,
            on_state=self._dispatch_state,
            last_errors=self._last_errors,
            observer=self._observer,
        )
        for spec in self._specs.values():
            checkpoint = self._checkpoints.get(spec.name)
            if checkpoint is not None:
                self._hub.seed(spec.name, spec.dedup_window, checkpoint.recent)
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
        supervisor = self._supervisor
        assert supervisor is not None
        try:
            refs: list[Any] = _ask(supervisor, StopStreams(), _remaining(deadline))
            for ref in refs:
                ref.actor_stopped.wait(_remaining(deadline))
            supervisor.stop(block=True, timeout=_remaining(deadline))
        except (pykka.Timeout, pykka.ActorDeadError):
            log.warning("streams did not stop within %.1fs", timeout)
        for name, ref in self._sinks.items():
            try:
                ref.stop(block=True, timeout=_remaining(deadline))
            except pykka.Timeout:
                log.warning("sink %s did not finish writing within the deadline", name)
            except pykka.ActorDeadError:
                pass
        self.final_positions = self._hub.positions()
        for buffer in self._buffers.values():
            try:
                buffer.close()
            except Exception:
                log.exception("closing a sink buffer failed")
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
        when_full: str | WhenFull = "block",
        overflow: str | None = None,
        batch: bool = False,
        name: str | None = None,
    ) -> str:
        """Deliver events to a pykka actor: one ``Event`` per message, or with ``batch=True``
        one ``EventBatch`` (the events of one read of one stream) per message.

        Args:
            ref: the subscriber actor.
            streams: only these streams (default: all).
            events: only these event types (default: all).
            buffer: most of our events waiting in its inbox.
            when_full: ``block`` (default: the streams it takes pause until it catches up,
                nothing is lost), ``drop_newest``, ``drop_oldest`` or ``disconnect`` (it is
                told ``SubscriberOverflow`` and removed). Drops are counted in ``status()``
                and logged at WARNING.
            overflow: older name of ``when_full`` (wins when given).
            batch: deliver ``EventBatch`` messages (for throughput).
            name: a name for status output (default: generated).

        Returns:
            The subscriber's name (for ``unsubscribe``).

        Raises:
            ValueError: an unknown policy, a buffer below 1, or a name in use.
        """
        policy = WhenFull.parse(overflow if overflow is not None else when_full)
        if buffer < 1:
            raise ValueError(f"buffer must be >= 1, got {buffer}")
        name = name or f"subscriber-{next(self._names)}"
        self._hub.add(
            ActorOutlet(name, ref, _names(streams), _names(events), policy, buffer, batch)
        )
        return name

    def add_listener(
        self,
        callback: Callable[[str, Sequence[Event]], None],
        *,
        streams: Sequence[str] | None = None,
        events: Sequence[str] | None = None,
        name: str | None = None,
    ) -> str:
        """Call ``callback(stream, events)`` in each stream's thread, once per read, with
        the read's new events (deduplicated and filtered).

        The callback must be quick and must not block (it holds up the stream); it is for
        adapters that hand events on (the relay's event loop, an iterator's queue). An
        exception in it is logged and counted, never raised into the stream.

        Returns:
            The listener's name (for ``unsubscribe``).
        """
        name = name or f"listener-{next(self._names)}"
        self._hub.add(ListenerOutlet(name, callback, _names(streams), _names(events)))
        return name

    def add_sink(
        self,
        sink: Sink,
        *,
        streams: Sequence[str] | None = None,
        events: Sequence[str] | None = None,
        buffer: int | BufferSettings = 10000,
        when_full: str | WhenFull = "block",
        overflow: str | None = None,
    ) -> str:
        """Run a built-in sink (stdout, file, webhook, ...) behind its own buffer.

        Args:
            sink: the sink.
            streams: only these streams (default: all).
            events: only these event types (default: all).
            buffer: a ``BufferSettings`` (memory or disk), or a memory buffer's size in
                events (then ``when_full``/``overflow`` give its policy).
            when_full: the policy of an ``int`` buffer (default ``block``).
            overflow: older name of ``when_full``.

        Raises:
            ValueError: a disk buffer without a path, or a bad policy or size.
            CheckpointError: the disk buffer's file cannot be opened.
        """
        if isinstance(buffer, BufferSettings):
            settings = buffer
        else:
            policy = WhenFull.parse(overflow if overflow is not None else when_full)
            settings = BufferSettings(max_events=buffer, when_full=policy)
        name = sink.name
        outlet_box: list[SinkOutlet] = []

        def on_drop(stream: str, count: int) -> None:
            outlet_box[0].count_drops(stream, count)

        store: SinkBuffer
        if settings.type == "disk":
            if settings.path is None:
                raise ValueError(f"sink {name}: a disk buffer needs a path")
            store = DiskBuffer(settings.path, settings, on_drop=on_drop)
        else:
            store = MemoryBuffer(settings, on_drop=on_drop)
        outlet = SinkOutlet(name, store, _names(streams), _names(events))
        outlet_box.append(outlet)
        ref = SinkActor.start(sink, store, self._scheduler.call_later)
        self._sinks[name] = ref
        self._buffers[name] = store
        self._sink_objects[name] = sink
        self._start_sink(name, ref)  # the wake-up is wired before any stream can put
        self._hub.add(outlet)
        return name

    def _start_sink(self, name: str, ref: pykka.ActorRef[Any]) -> None:
        def wake() -> None:
            try:
                ref.tell(Drain())
            except pykka.ActorDeadError:
                pass

        self._buffers[name].on_ready = wake

    def add_state_listener(self, listener: Callable[[str, StreamState], None]) -> None:
        """Also call ``listener(stream, state)`` on every state change (supervisor thread;
        it must be quick and must not call back into this object's ask-based methods)."""
        self._state_listeners.append(listener)

    def _dispatch_state(self, stream: str, state: StreamState) -> None:
        for listener in list(self._state_listeners):
            try:
                listener(stream, state)
            except Exception:
                log.exception("state listener failed")

    def last_error(self, stream: str) -> str | None:
        """The stream's last error (redacted), without asking an actor."""
        return self._last_errors.get(stream)

    def last_event_id(self, stream: str) -> str | None:
        """The Last-Event-ID of the stream's last delivered event (None: none yet)."""
        return self._hub.book(stream).committed.last_event_id

    def events(
        self,
        *,
        streams: Sequence[str] | None = None,
        events: Sequence[str] | None = None,
        buffer: int = 10_000,
        name: str | None = None,
        _owned: bool = False,
    ) -> EventStream:
        """Iterate the events of this (running) streamvisor as one more subscriber.

        Lossless like every subscriber: when the loop falls behind by ``buffer`` events the
        streams pause. Iteration ends when every stream it watches has ended for good (or
        at ``close()``); with one stream, ``handle`` controls it and a failure raises
        ``StreamFailedError``.

        Args:
            streams: only these streams (default: all).
            events: only these event types (default: all).
            buffer: most events queued for the loop.
            name: the subscriber's name (default: generated).
        """
        from streamvisor.api.iterator import attach

        name = name or f"iterator-{next(self._names)}"
        return attach(self, streams, events, buffer, name, owned=_owned)

    def unsubscribe(self, name: str) -> None:
        """Stop delivering to a subscriber or listener (a stream waiting for it goes on)."""
        self._hub.remove(name)

    # -- commands and status -----------------------------------------------------------
    def add_stream(
        self,
        spec: StreamSpec,
        last_event_id: str | None = None,
        recent: Sequence[tuple[str, str]] | None = None,
    ) -> None:
        """Start supervising another stream.

        Args:
            spec: the stream.
            last_event_id: resume after this id.
            recent: (id, digest) pairs to seed its dedup window with (e.g. from a checkpoint
                another process wrote); None keeps the window the hub has.
        """
        if spec.name in self._specs:
            raise ValueError(f"duplicate stream name {spec.name!r}")
        self._specs[spec.name] = spec
        if self._started and not self._stopped:
            # The hub keeps the stream's dedup window across remove/add (reload).
            assert self._supervisor is not None
            if recent is not None:
                self._hub.seed(spec.name, spec.dedup_window, recent)
            self._supervisor.tell(AddStream(spec, last_event_id))
        elif last_event_id is not None or recent:
            from streamvisor.checkpoint.store import Checkpoint

            self._checkpoints[spec.name] = Checkpoint(last_event_id, tuple(recent or ()))

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

    def status(self) -> Status:
        """Each stream's state, last_event_id, counters, last error (redacted) and pause
        state, and each subscriber's queue depth, deliveries and drops.

        Returns:
            A frozen ``Status``; ``to_dict()`` is its JSON form (what ``/streams`` serves).
        """
        books, subscribers = self._hub.snapshot()
        entries: dict[str, dict[str, Any]] = {}
        if self._supervisor is not None and not self._stopped:
            try:
                entries = _ask(self._supervisor, Snapshot(), _ASK_TIMEOUT)
            except pykka.ActorDeadError:
                entries = {}
        else:
            for name, spec in self._specs.items():
                entries[name] = {
                    "state": StreamState.DISCONNECTED.value,
                    "url": redact_url(spec.url),
                }
        streams: dict[str, StreamStatus] = {}
        for name, entry in entries.items():
            book = books.get(name) or StreamStatus(name, StreamState.DISCONNECTED)
            streams[name] = dataclasses.replace(
                book,
                state=StreamState(entry["state"]),
                url=entry.get("url", ""),
                last_event_id=book.last_event_id
                if book.last_event_id is not None
                else entry.get("last_event_id"),
                bytes=entry.get("bytes", 0),
                restarts=entry.get("restarts", 0),
                failures=entry.get("failures", {}),
                breaker=entry.get("breaker", "closed"),
                last_error=entry.get("last_error"),
                last_failure=entry.get("last_failure"),
                connected_since=entry.get("connected_since"),
                paused_on=entry.get("paused_on"),
                paused_seconds=entry.get("paused_seconds", 0.0),
                extra=self._extra(name, entry),
            )
        return Status(streams, subscribers)

    def _extra(self, name: str, entry: dict[str, Any]) -> dict[str, Any]:
        extra: dict[str, Any] = {"gen": entry["gen"]} if "gen" in entry else {}
        mcp = self._mcp.status(name)
        if mcp is not None:
            extra["mcp"] = mcp
        return extra

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
        spec = self._specs.get(stream)
        return self._mcp.call(
            stream, method, params, timeout=timeout, idempotent=idempotent, spec=spec
        )

    def positions(self) -> Positions:
        """Checkpoint positions: per stream, the Last-Event-ID every sink has written."""
        if self._stopped:
            return dict(self.final_positions)
        return self._hub.positions()

    @property
    def sinks(self) -> dict[str, Sink]:
        """The built-in sinks by name."""
        return dict(self._sink_objects)


def _names(names: Sequence[str] | None) -> frozenset[str] | None:
    return frozenset(names) if names is not None else None


def _ask(ref: pykka.ActorRef[Any], message: Any, timeout: float) -> Any:
    """Ask from outside the actor system, always with a timeout (never from an actor)."""
    return ref.ask(message, block=True, timeout=timeout)


def _remaining(deadline: float) -> float:
    return max(deadline - time.monotonic(), 0.01)
