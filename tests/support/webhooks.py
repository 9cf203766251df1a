"""A webhook receiver for tests: an ``http.server`` on 127.0.0.1 port 0 that answers each POST
from a plan, then with ``then``, and records every request.

An answer is ``(status, headers)``; ``"reset"`` (the connection is reset, no answer) or
``"hang"`` (no answer until the receiver stops, so the sender's timeout or shutdown decides).
``WebhookReceiver(then="hang")`` never answers at all.

Rule: ``stop()`` (or the ``make_receiver`` fixture) ends the server, its thread and every hung
request; every wait has a deadline.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, NamedTuple, Protocol

Answer = tuple[int, Mapping[str, str]] | Literal["reset", "hang"]
HANG_LIMIT = 30.0
"""How long a hung request waits at most (far past every test deadline; ``stop`` ends it)."""


class MakeReceiver(Protocol):
    """The ``make_receiver`` fixture: start a receiver that is stopped after the test."""

    def __call__(
        self, plan: Iterable[Answer] = (), then: Answer = (200, {})
    ) -> WebhookReceiver: ...


class ReceivedRequest(NamedTuple):
    """One POST: when it came (monotonic seconds), its answer (``None``: reset or hung), path,
    headers, raw body, and the body decoded (the webhook sink's JSON array of events)."""

    time: float
    status: int | None
    path: str
    headers: dict[str, str]
    body: bytes
    events: list[dict[str, Any]]


class WebhookReceiver:
    """Answers POSTs from ``plan`` (then ``then``), recording each request.

    Args:
        plan: answers for the first requests, in order; ``(429, {"Retry-After": "0"})``
            rate-limits once. More can be appended to ``receiver.plan`` at any time.
        then: the answer once the plan is used up.

    ``requests`` holds every request; ``got_request`` is set at the first one;
    ``accepted`` are the event batches answered 2xx and ``accepted_ids(stream)`` their ids.
    """

    def __init__(self, plan: Iterable[Answer] = (), then: Answer = (200, {})) -> None:
        self.plan: deque[Answer] = deque(plan)
        self.then = then
        self.requests: list[ReceivedRequest] = []
        self.got_request = threading.Event()
        self._release = threading.Event()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="webhook-receiver", daemon=True
        )

    @property
    def url(self) -> str:
        """The receiver's URL."""
        return f"http://127.0.0.1:{self.port}/ingest"

    def start(self) -> WebhookReceiver:
        """Serve in a background thread."""
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """End hung requests, stop serving and join the thread."""
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "webhook receiver thread did not stop"

    # -- what came -----------------------------------------------------------------------
    @property
    def accepted(self) -> list[list[dict[str, Any]]]:
        """The event batches answered 2xx, in arrival order."""
        with self._lock:
            return [r.events for r in self.requests if r.status and 200 <= r.status < 300]

    def accepted_ids(self, stream: str) -> list[int]:
        """Integer ids of ``stream``'s events answered 2xx, in arrival order."""
        return [int(e["id"]) for batch in self.accepted for e in batch if e["stream"] == stream]

    def statuses(self) -> list[int | None]:
        """The answer of every request so far, in order (``None``: reset or hung)."""
        with self._lock:
            return [r.status for r in self.requests]

    # -- answering -----------------------------------------------------------------------
    def _take(self, handler: BaseHTTPRequestHandler, body: bytes) -> Answer:
        with self._lock:
            answer = self.plan.popleft() if self.plan else self.then
            status = answer[0] if isinstance(answer, tuple) else None
            headers = dict(handler.headers.items())
            events = json.loads(body.decode("utf-8"))
            request = ReceivedRequest(time.monotonic(), status, handler.path, headers, body, events)
            self.requests.append(request)
        self.got_request.set()
        return answer


def _handler(receiver: WebhookReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            answer = receiver._take(self, body)
            if answer == "reset":  # SO_LINGER 0: close() sends RST
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.close_connection = True
                return
            if answer == "hang":
                receiver._release.wait(HANG_LIMIT)
                self.close_connection = True
                return
            status, headers = answer
            payload = b"{}"
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Handler
