"""The live status feed ``/status/events``: one JSON snapshot per second as Server-Sent Events.

Rules (WHATWG HTML, "Server-sent events"):
- ``text/event-stream``, UTF-8, one ``event: status`` per tick whose ``data:`` is one line
  of JSON; a ``retry:`` first so a browser's ``EventSource`` reconnects after
  ``RETRY_MS`` when the daemon goes away; a comment line as a heartbeat every ``heartbeat``
  seconds (and in place of a snapshot that failed, as ``event: unavailable``).
- Any number of clients share one snapshot per tick (``FrameCache``): a snapshot asks the
  actors, and its JSON for 1,000 streams is a few hundred kB.
- At most ``max_clients`` feeds at once (each holds a server thread); a feed ends within
  one tick once ``closing`` is set (the admin server's ``stop()``).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

__all__ = ["RETRY_MS", "FeedSlots", "FrameCache", "encode_comment", "encode_event", "feed"]

log = logging.getLogger(__name__)

RETRY_MS = 2000
"""Reconnection time sent to browsers (milliseconds)."""


def encode_event(event: str | None, data: str) -> bytes:
    """One SSE message: ``event:`` (if given) and one ``data:`` line per line of ``data``."""
    lines = [f"event: {event}"] if event else []
    lines.extend(f"data: {part}" for part in data.replace("\r\n", "\n").split("\n"))
    return ("\n".join(lines) + "\n\n").encode("utf-8")


def encode_comment(text: str) -> bytes:
    """An SSE comment (ignored by clients; keeps idle connections and proxies alive)."""
    return f": {text}\n\n".encode()


class FrameCache:
    """Build the ``status`` frame at most once per ``ttl`` seconds, for every client.

    Args:
        status: returns the JSON-ready status (``streams``, ``subscribers``, ...); it may
            raise, which gives an ``unavailable`` frame.
        log_lines: returns the recent log records to include, or None.
        ttl: seconds a built frame is reused.
        clock: wall clock for the ``time`` field (epoch seconds).
    """

    def __init__(
        self,
        status: Callable[[], Mapping[str, Any]],
        log_lines: Callable[[], list[dict[str, Any]]] | None = None,
        *,
        ttl: float = 0.5,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._status = status
        self._log_lines = log_lines
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._built_at = float("-inf")
        self._frame = b""

    def frame(self) -> bytes:
        """The current frame (``event: status`` or ``event: unavailable``)."""
        with self._lock:
            now = time.monotonic()
            if now - self._built_at >= self._ttl:
                self._frame = self._build()
                self._built_at = now
            return self._frame

    def _build(self) -> bytes:
        try:
            body = dict(self._status())
            body["time"] = self._clock()
            body["log"] = self._log_lines() if self._log_lines is not None else []
            data = json.dumps(body, allow_nan=False, separators=(",", ":"))
        except Exception as exc:
            log.debug("status feed: snapshot unavailable: %s", type(exc).__name__)
            return encode_event("unavailable", json.dumps({"reason": type(exc).__name__}))
        return encode_event("status", data)


class FeedSlots:
    """Counts open feeds against a limit (thread-safe)."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._open = 0
        self._lock = threading.Lock()

    @property
    def open(self) -> int:
        """How many feeds are open now."""
        return self._open

    def acquire(self) -> bool:
        """Take a slot; False when all are taken."""
        with self._lock:
            if self._open >= self._limit:
                return False
            self._open += 1
            return True

    def release(self) -> None:
        """Give a slot back."""
        with self._lock:
            self._open -= 1


class _Feed:
    """The WSGI response body of one feed; ``close()`` (called by the server) frees its slot."""

    def __init__(self, frames: Iterator[bytes], slots: FeedSlots) -> None:
        self._frames = frames
        self._slots: FeedSlots | None = slots

    def __iter__(self) -> Iterator[bytes]:
        return self._frames

    def close(self) -> None:
        slots, self._slots = self._slots, None
        if slots is not None:
            slots.release()


def feed(
    cache: FrameCache,
    slots: FeedSlots,
    closing: threading.Event,
    *,
    interval: float = 1.0,
    heartbeat: float = 15.0,
) -> _Feed:
    """The body of one ``/status/events`` response (a slot must have been acquired).

    Args:
        cache: where frames come from.
        slots: released when the response is closed.
        closing: set to end the feed (within ``interval``).
        interval: seconds between frames.
        heartbeat: seconds between heartbeat comments.
    """

    def frames() -> Iterator[bytes]:
        # Something goes out at once so the status line and headers are sent now.
        yield f"retry: {RETRY_MS}\n".encode() + encode_comment("streamvisor status")
        beat = time.monotonic()
        while not closing.is_set():
            yield cache.frame()
            if time.monotonic() - beat >= heartbeat:
                beat = time.monotonic()
                yield encode_comment("heartbeat")
            if closing.wait(interval):
                return

    return _Feed(frames(), slots)
