"""``Mailbox``: what threads of one MCP stream hand each other. Thread-safe, no I/O.

* synthetic events (``mcp/session_restarted``, ``mcp/gap``, ``mcp/resync``) queued by any
  thread, emitted by the listening connection's next ``read()``;
* responses that arrive on the listening stream (HTTP+SSE era, resumed answers) for a
  caller waiting in another thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from streamvisor.upstream.mcp import jsonrpc

__all__ = ["Mailbox"]


class Mailbox:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._synthetic: list[bytes] = []
        self._pending: dict[Any, list[dict[str, Any]]] = {}

    def queue(self, event: str, data: dict[str, Any], event_id: str | None = None) -> None:
        """Queue a synthetic event (``event_id`` ``""`` resets the Last-Event-ID)."""
        block = jsonrpc.encode_event(event, jsonrpc.dumps(data), event_id)
        with self._lock:
            self._synthetic.append(block)

    def push(self, block: bytes) -> None:
        """Queue an already framed event block."""
        with self._lock:
            self._synthetic.append(block)

    def take(self) -> bytes:
        """Every queued synthetic event, as bytes (``b""`` when none)."""
        with self._lock:
            out, self._synthetic = b"".join(self._synthetic), []
        return out

    def expect(self, msg_id: Any) -> list[dict[str, Any]]:
        """Register interest in the response to ``msg_id``; the slot fills when it comes."""
        slot: list[dict[str, Any]] = []
        with self._lock:
            self._pending[msg_id] = slot
        return slot

    def forget(self, msg_id: Any) -> None:
        with self._lock:
            self._pending.pop(msg_id, None)

    def resolve(self, msg: dict[str, Any]) -> bool:
        """Hand a response to its waiter; False when nobody waits for it."""
        with self._changed:
            slot = self._pending.pop(msg.get("id"), None)
            if slot is None:
                return False
            slot.append(msg)
            self._changed.notify_all()
        return True

    def wait(self, slot: list[dict[str, Any]], deadline: float) -> bool:
        """Wait until ``slot`` is filled; False at ``deadline`` (a ``clock`` value)."""
        with self._changed:
            while not slot:
                left = deadline - self._clock()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True
