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

import atexit
import itertools
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from streamvisor.actors.hub import Hub, Positions
from streamvisor.actors.messages import Close, Reconnect, RemoveStream, Snapshot
from streamvisor.actors.stream import ConnectionFactory
from streamvisor.actors.system import ActorSystem
from streamvisor.api.subscribers import SubscriberMethods
from streamvisor.buffers import SinkBuffer
from streamvisor.policy.redact import redact_url
from streamvisor.spec import StreamSpec
from streamvisor.states import StreamState
from streamvisor.status import Status, merge_stream_status

if TYPE_CHECKING:
    from streamvisor.checkpoint.store import Checkpoint
    from streamvisor.config.load import Config
    from streamvisor.daemon.tracing import AttemptObserver
    from streamvisor.sinks.base import Sink

log = logging.getLogger(__name__)


def _default_connector() -> ConnectionFactory:
    # One per Streamvisor: each stream's cookie jar lives here (made at its first cookie).
    from streamvisor.upstream.connector import HTTPConnector

    return HTTPConnector()


class Streamvisor(SubscriberMethods):
    """Supervised SSE streams with deduplicated fan-out to subscriber actors.

    Args:
        streams: the streams to run.
        dedup_window: default dedup window size (each stream's ``dedup_window`` wins).
        checkpoints: per stream, where to resume (Last-Event-ID and dedup seed).
        connect: connection factory (tests inject scripted connections); by default an
            ``HTTPConnector``: one shared connection pool, one cookie jar per stream.
        rng: random source for backoff jitter.
        on_state: called (in the supervisor's thread) on every stream state change.
        on_sink_closed: called with a sink's name when its destination is gone for good
            (stdout's reader left); the daemon stops then.
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
        on_sink_closed: Callable[[str], None] | None = None,
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
        self._base_connect = connect if connect is not None else _default_connector()
        self._connect = self._mcp.connector(self._base_connect)
        self._observer = observer
        self._on_sink_closed = on_sink_closed
        if observer is not None:
            self._connect = observer.wrap_connect(self._connect)
        self._rng = rng
        self._state_listeners: list[Callable[[str, StreamState], None]] = []
        if on_state is not None:
            self._state_listeners.append(on_state)
        self._last_errors: dict[str, str] = {}
        self._actors = ActorSystem()
        self._hub = Hub(dedup_window)
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
        from streamvisor.api.wiring import build

        return build(cls, config, stop_event=stop_event, wrap_sink=wrap_sink, **kwargs)

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> Streamvisor:
        """Start the actors and connect every enabled stream. Returns self.

        Raises:
            RuntimeError: ``stop()`` was called: a stopped Streamvisor cannot start again
                (build a new one).
        """
        with self._lock:
            if self._stopped:
                raise RuntimeError(
                    "this Streamvisor was stopped and cannot be started again; build a new one"
                )
            if self._started:
                return self
            self._started = True
        atexit.register(self._stop_at_exit)
        self._actors.start(
            self._hub,
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
            self._actors.add_stream(
                spec, checkpoint.last_event_id if checkpoint is not None else None
            )
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop in order: streams, then hub drain, then our sinks. Idempotent.

        Iterations over it (``events()``) end after what they have queued.

        User subscriber actors are not stopped (they are the caller's); they receive
        every event the hub had accepted before this returns.
        """
        with self._lock:
            first, running = not self._stopped, self._started and not self._stopped
            self._stopped = True
        if not running:
            if first:
                self._end_iterations()
            return
        atexit.unregister(self._stop_at_exit)
        deadline = time.monotonic() + timeout
        self._actors.stop(deadline, timeout)
        self._end_iterations()  # after the drain: a loop gets what was queued, then the end
        self.final_positions = self._hub.positions()
        for buffer in self._buffers.values():
            try:
                buffer.close()
            except Exception:
                log.exception("closing a sink buffer failed")
        self._mcp.close(timeout=min(2.0, max(deadline - time.monotonic(), 0.01)))
        self._actors.stop_timer()

    def _end_iterations(self) -> None:
        """End every ``events()`` / ``connect()`` / ``aconnect()`` iteration: nothing more
        will come (without this, a loop over a stopped Streamvisor waited for ever)."""
        for outlet in self._hub.outlets():
            finish = getattr(outlet, "finish", None)
            if finish is not None:
                finish()

    def _stop_at_exit(self) -> None:
        """At interpreter exit, a running streamvisor stops gracefully (its actor threads
        are daemons, so a forgotten ``stop()`` never keeps the process alive)."""
        self.stop(timeout=2.0)

    def __enter__(self) -> Streamvisor:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

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
            if recent is not None:
                self._hub.seed(spec.name, spec.dedup_window, recent)
            self._actors.add_stream(spec, last_event_id)
        elif last_event_id is not None or recent:
            from streamvisor.checkpoint.store import Checkpoint

            self._checkpoints[spec.name] = Checkpoint(last_event_id, tuple(recent or ()))

    def remove_stream(self, name: str) -> bool:
        """Stop a stream and forget it."""
        self._specs.pop(name, None)
        removed = bool(self._ask_supervisor(RemoveStream(name)))
        forget = getattr(self._base_connect, "forget", None)
        if removed and forget is not None:
            forget(name)  # the stream's cookie jar goes with it (a re-added stream starts anew)
        return removed

    def reconnect(self, name: str) -> bool:
        """Drop the stream's connection and reconnect now, resuming from its last id."""
        return bool(self._ask_supervisor(Reconnect(name)))

    def close(self, name: str) -> bool:
        """End a stream for good (state ``closed``)."""
        return bool(self._ask_supervisor(Close(name)))

    def _ask_supervisor(self, message: Any) -> Any:
        if self._stopped:
            return False
        return self._actors.ask(message)

    def status(self) -> Status:
        """Each stream's state, last_event_id, counters, last error (redacted) and pause
        state, and each subscriber's queue depth, deliveries and drops.

        Returns:
            A frozen ``Status``; ``to_dict()`` is its JSON form (what ``/streams`` serves).
        """
        books, subscribers = self._hub.snapshot()
        entries: dict[str, dict[str, Any]] = {}
        if self._actors.started and not self._stopped:
            entries = self._actors.ask(Snapshot(), default={})
        else:
            for name, spec in self._specs.items():
                entries[name] = {
                    "state": StreamState.DISCONNECTED.value,
                    "url": redact_url(spec.url),
                }
        streams = {
            name: merge_stream_status(name, books.get(name), entry, self._extra(name, entry))
            for name, entry in entries.items()
        }
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
            ValueError: an empty method, or ``params`` that is not a mapping.
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
