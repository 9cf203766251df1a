"""StreamActor: one connection attempt of one upstream stream, read in the actor's thread.

The actor's own thread is the reader: it connects, feeds the decoder, drops replayed
duplicates (the stream's ``StreamBook``) and hands each read's events to every subscriber
that takes them (``outlets``), one call per read. A full subscriber makes the thread wait
before its next read: the stream is paused, not dead, and TCP slows the upstream. That halves
the threads per stream compared with an actor plus a separate reader thread, and takes the
hub off the per-event path. To stop or reconnect it, the
supervisor calls ``StreamControl.interrupt()`` (thread-safe: it shuts the socket down,
which wakes the blocked read in about a millisecond) and the actor then ends by itself.
Every ending, expected or not, is reported to the supervisor as one ``Exited`` message
tagged with the connection's generation; nothing here decides about restarts.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import pykka

from streamvisor.actors.book import StreamBook
from streamvisor.actors.hub import Hub
from streamvisor.actors.inbox import SimpleInbox
from streamvisor.actors.messages import Connected, Exited
from streamvisor.errors import EndOfStreamError, StreamError
from streamvisor.hooks import EventClass
from streamvisor.policy.flow import Position
from streamvisor.spec import StreamSpec
from streamvisor.sse import Decoder, Event

log = logging.getLogger(__name__)


class ConnectionLike(Protocol):
    """What the stream actor needs from a connection (``connection.Connection``)."""

    def open(self) -> None: ...
    def read(self) -> bytes: ...
    def interrupt(self) -> None: ...
    def close(self) -> None: ...


ConnectionFactory = Callable[[StreamSpec, "str | None"], ConnectionLike]


class StreamControl:
    """Thread-safe handle the supervisor keeps to interrupt one stream's connection.

    Also carries the stream's wire counters and its pause state, written by the stream
    thread only. It is the ``flow.PauseControl`` that full subscribers wait with.
    """

    __slots__ = ("_conn", "_lock", "bytes", "paused_on", "paused_since", "paused_total", "reason")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._conn: ConnectionLike | None = None
        self.reason: str | None = None  # "stop" | "reconnect" once interrupted
        self.bytes = 0
        self.paused_on: str | None = None  # the full subscriber the stream waits for
        self.paused_since: float | None = None
        self.paused_total = 0.0  # seconds spent paused by backpressure

    def attach(self, conn: ConnectionLike) -> bool:
        """Register the current connection; False if an interrupt already came."""
        with self._lock:
            if self.reason is not None:
                return False
            self._conn = conn
            return True

    def detach(self) -> None:
        with self._lock:
            self._conn = None

    def interrupt(self, reason: str) -> None:
        """Wake the reader and make it end (``reason``: "stop" or "reconnect")."""
        with self._lock:
            if self.reason != "stop":
                self.reason = reason
            conn = self._conn
        if conn is not None:
            conn.interrupt()

    # -- flow.PauseControl -------------------------------------------------------------
    def abandoned(self) -> bool:
        """True once a stop was requested: a full subscriber stops being waited for.

        A reconnect does not abandon: the batch in hand is delivered first (dropping it
        would lose it, since its ids are already past the resume point).
        """
        return self.reason == "stop"

    def pause(self, outlet: str) -> None:
        """The stream waits for ``outlet`` before reading on."""
        self.paused_on = outlet
        self.paused_since = time.monotonic()

    def resume(self) -> None:
        """The stream reads again."""
        since = self.paused_since
        if since is not None:
            self.paused_total += time.monotonic() - since
        self.paused_on = None
        self.paused_since = None


class _Run:
    """Self-told at start: connect and read until the connection ends."""


class StreamActor(SimpleInbox, pykka.ThreadingActor):
    """One attempt: connect, read, publish, report how it ended, stop."""

    # The thread may sit in a connect() for up to connect_timeout; it must never keep the
    # interpreter alive. It holds no state that needs cleanup beyond its socket.
    use_daemon_thread = True

    def __init__(
        self,
        spec: StreamSpec,
        gen: int,
        last_event_id: str | None,
        control: StreamControl,
        supervisor: pykka.ActorRef[Any],
        hub: Hub,
        book: StreamBook,
        connect: ConnectionFactory,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()  # runs in the supervisor's thread: store only, no I/O
        self._spec = spec
        self._gen = gen
        self._last_id = last_event_id
        self._control = control
        self._supervisor = supervisor
        self._hub = hub
        self._book = book
        self._connect = connect
        self._clock = clock

    def on_start(self) -> None:
        self.actor_ref.tell(_Run())  # on_start must not fail: pykka would report nothing

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, _Run):
            try:
                self._run()
            finally:
                self.actor_ref.stop(block=False)
        return None

    def _run(self) -> None:
        spec, control = self._spec, self._control
        decoder = Decoder(spec.name, last_event_id=self._last_id, max_size=spec.max_event_size)
        handler = spec.handler
        error: BaseException | None = None
        crashed = connected = False
        started = 0.0
        events = 0
        # The id to resume from: the decoder's, but only once its events were published (a
        # crash in the classify hook must not skip the events of the batch it interrupted).
        resume_id = self._last_id
        conn: ConnectionLike | None = None
        try:
            conn = self._connect(spec, self._last_id)
            # open() returns quietly when an interrupt (stop, reconnect) ended the attempt
            # before the response came: that attempt never connected.
            if control.attach(conn) and self._open(conn):
                connected = True
                started = self._clock()
                self._supervisor.tell(Connected(spec.name, self._gen))
                if handler is not None:
                    handler.on_connect(spec.name)
                book = self._book
                admit = book.admit
                routes = self._hub.routes
                feed = decoder.feed
                read = conn.read
                name = spec.name
                while True:
                    chunk = read()
                    if not chunk:
                        break
                    control.bytes += len(chunk)
                    batch = feed(chunk)
                    if batch:
                        if handler is not None:
                            batch = self._classify(batch)
                        kept, first = admit(batch)
                        if kept and not self._hand_over(name, kept, first, routes(name)):
                            book.abandon()
                            break  # stopping while a subscriber was full
                        book.commit()
                        events += len(kept)
                    resume_id = decoder.last_event_id
                decoder.end()
                if control.reason is None:
                    error = EndOfStreamError()
        except StreamError as exc:
            error = exc
        except Exception as exc:  # a bug (ours or a hook's): report it, never die silently
            error, crashed = exc, True
            log.debug("stream %s crashed", spec.name, exc_info=True)
        finally:
            control.detach()
            if conn is not None:
                try:
                    conn.close()
                except Exception:
                    log.debug("closing the connection of %s failed", spec.name, exc_info=True)
        if handler is not None and control.reason is None:
            try:
                handler.on_disconnect(spec.name, error)
            except Exception:
                log.exception("on_disconnect hook of stream %s failed", spec.name)
        reason = control.reason
        exited = Exited(
            stream=spec.name,
            gen=self._gen,
            error=error,
            connected=connected,
            uptime=(self._clock() - started) if connected else 0.0,
            events=events,
            last_event_id=resume_id,
            retry_ms=decoder.retry,
            crashed=crashed,
            requested=reason == "reconnect",
            stopping=reason == "stop",
        )
        try:
            self._supervisor.tell(exited)
        except pykka.ActorDeadError:
            pass

    def _open(self, conn: ConnectionLike) -> bool:
        """Open ``conn``; False when an interrupt came before or while it opened."""
        conn.open()
        return self._control.reason is None

    def _hand_over(self, name: str, kept: list[Event], first: int, routes: tuple[Any, ...]) -> bool:
        """Offer one read's new events to every outlet; False if a stop cut it short."""
        last = Position(first + len(kept), kept[-1].last_event_id)
        before = self._book.committed
        control = self._control
        for outlet in routes:
            selected = outlet.select(kept)
            if selected and not outlet.offer(name, selected, last, before, control):
                return False
        return True

    def _classify(self, batch: list[Event]) -> list[Event]:
        """Apply the stream's ``classify`` hook: drop system events, act on retry events."""
        handler = self._spec.handler
        assert handler is not None
        kept: list[Event] = []
        for ev in batch:
            kind = handler.classify(ev)
            if kind is EventClass.SYSTEM:
                continue
            if kind is EventClass.RETRY:
                self._control.interrupt("reconnect")
                continue
            kept.append(ev)
        return kept
