"""``McpStreams``: the MCP state of every ``kind: mcp`` stream of one ``Streamvisor``, the
connection factory that uses it, and ``call()``.

Wiring (``api.py``): ``self._mcp = McpStreams()`` and
``connect = self._mcp.connector(default_connect)``; ``Streamvisor.call`` delegates to
``McpStreams.call``, ``status()`` adds ``McpStreams.status(name)`` as each MCP stream's
``mcp`` entry, and ``stop()`` ends with ``McpStreams.close()`` (DELETE of each session).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from streamvisor.spec import StreamSpec
from streamvisor.upstream.mcp.connection import McpConnection
from streamvisor.upstream.mcp.invoke import invoke
from streamvisor.upstream.mcp.stream import McpStream, Publish

__all__ = ["McpStreams"]

log = logging.getLogger(__name__)

Factory = Callable[[StreamSpec, "str | None"], Any]


class McpStreams:
    """Per-``Streamvisor`` registry of ``McpStream`` objects, keyed by stream name.

    Args:
        publish: ``(stream, events)`` for messages that arrive on a call's own answer
            stream (progress, log notifications). None (the default): they go through the
            stream's listening connection (see ``McpStream.publish_messages``).
    """

    def __init__(self, publish: Publish | None = None) -> None:
        self._publish = publish
        self._lock = threading.Lock()
        self._streams: dict[str, McpStream] = {}

    def connector(self, fallback: Factory) -> Factory:
        """A connection factory: ``kind: mcp`` streams get an ``McpConnection`` on their
        (lasting) ``McpStream``; every other stream goes to ``fallback``."""

        def connect(spec: StreamSpec, last_event_id: str | None) -> Any:
            if spec.kind != "mcp":
                return fallback(spec, last_event_id)
            return McpConnection(self.stream(spec))

        return connect

    def stream(self, spec: StreamSpec) -> McpStream:
        """The ``McpStream`` of ``spec`` (a new one when the spec changed: reload)."""
        with self._lock:
            current = self._streams.get(spec.name)
            if current is not None and current.spec is spec:
                return current
            fresh = McpStream(spec, publish=self._publish)
            self._streams[spec.name] = fresh
        if current is not None:
            current.close()
        return fresh

    def get(self, name: str) -> McpStream | None:
        with self._lock:
            return self._streams.get(name)

    def call(
        self,
        name: str,
        method: str,
        params: Mapping[str, Any] | None = None,
        *,
        timeout: float = 30.0,
        idempotent: bool = False,
        spec: StreamSpec | None = None,
    ) -> Any:
        """Send one request on stream ``name``'s session; see ``Streamvisor.call``.

        Args:
            spec: the stream's spec, to make its session before its first connection.

        Raises:
            KeyError: no ``kind: mcp`` stream of that name.
        """
        stream = self.get(name)
        if stream is None and spec is not None and spec.kind == "mcp":
            stream = self.stream(spec)
        if stream is None:
            raise KeyError(f"no MCP stream named {name!r} (is it kind: mcp?)")
        return invoke(stream, method, params, timeout=timeout, idempotent=idempotent)

    def status(self, name: str) -> dict[str, Any] | None:
        stream = self.get(name)
        return stream.status() if stream is not None else None

    def close(self, timeout: float = 2.0) -> None:
        """DELETE every session (bounded by ``timeout`` in all); forget the streams."""
        with self._lock:
            streams, self._streams = list(self._streams.values()), {}
        deadline = time.monotonic() + timeout
        for stream in streams:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                stream.close(timeout=min(left, 2.0))
            except Exception:
                log.debug("closing MCP stream %s failed", stream.spec.name, exc_info=True)
