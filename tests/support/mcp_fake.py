"""A small standard-library fake MCP server (Streamable HTTP, 2025 era) for faults the
real SDK server cannot produce on demand: 409 loops, 405 on GET, sessions that expire at
once, unresumable ids, SSE polling with ``retry``, a server ``ping`` on the GET stream,
and many cheap sessions. Binds 127.0.0.1 port 0; records every request.

Rule: ``stop()`` wakes and ends every stream and joins the serving thread.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Recorded:
    method: str
    headers: dict[str, str]
    body: Any
    at: float


@dataclass
class FakeSession:
    sid: str
    index: int
    version: str
    log: list[tuple[str, str]] = field(default_factory=list)  # (event id, JSON data)
    gets: int = 0
    conflicts: int = 0


class FakeMcp:
    """Knobs (set before or during a test):

    get_status: answer every GET with this status (e.g. 405).
    post_status: answer every POST with this status (e.g. 404: not an MCP endpoint),
        except ``server/discover`` when ``discover_versions`` is set.
    discover_versions: answer ``server/discover`` with these ``supportedVersions`` (a
        2026-07-28 server, as far as era detection goes).
    conflicts: 409s per session before a GET succeeds; ``conflict_sessions`` limits that
        to the first N sessions (None: all).
    expire_on_get: every session answers 404 to its first GET (expires at once).
    unresumable: a GET with Last-Event-ID gets 200 and an empty body.
    poll_retry_ms / poll_close_after: SSE polling: a priming event with ``retry`` and a
        close after that many seconds.
    ping_on_get: send a ``ping`` request first on each GET stream.
    delete_status: the DELETE answer.
    initialize_delay: seconds before ``initialize`` is answered (a slow server; ``stop()``
        cuts the wait short).
    """

    def __init__(self) -> None:
        self.get_status: int | None = None
        self.post_status: int | None = None
        self.discover_versions: list[str] | None = None
        self.conflicts = 0
        self.conflict_sessions: int | None = None
        self.expire_on_get = False
        self.unresumable = False
        self.poll_retry_ms: int | None = None
        self.poll_close_after: float | None = None
        self.ping_on_get = False
        self.delete_status = 200
        self.initialize_delay = 0.0
        self.anonymous_get = False  # a GET without a session id gets a stream of its own
        self.record_requests = True
        self.requests: list[Recorded] = []
        self.sessions: dict[str, FakeSession] = {}
        self.pongs: list[tuple[Any, float]] = []
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._ids = itertools.count(1)
        self._count = itertools.count()
        self._stopping = False
        self._socks: set[socket.socket] = set()
        self._server = _Server(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/mcp"

    def start(self) -> FakeMcp:
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            socks = list(self._socks)
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> FakeMcp:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- driving -----------------------------------------------------------------------------
    @property
    def streaming(self) -> int:
        """GET streams open now (their position in the log is taken)."""
        with self._lock:
            return len(self._socks)

    def notify(self, method: str = "notifications/message", params: Any = None) -> None:
        """Append a notification to every live session's GET log."""
        with self._cond:
            for sess in self.sessions.values():
                msg = {"jsonrpc": "2.0", "method": method, "params": params or {}}
                sess.log.append((f"{sess.index}-{next(self._ids)}", json.dumps(msg)))
            self._cond.notify_all()

    def notify_batch(self, methods: list[str]) -> None:
        """One SSE event holding a 2025-03-26 JSON-RPC batch array of notifications."""
        with self._cond:
            for sess in self.sessions.values():
                batch = [{"jsonrpc": "2.0", "method": m, "params": {}} for m in methods]
                sess.log.append((f"{sess.index}-{next(self._ids)}", json.dumps(batch)))
            self._cond.notify_all()

    def expire_all(self) -> None:
        """Forget every session (their GET streams end): the next request gets 404."""
        with self._cond:
            self.sessions.clear()
            self._cond.notify_all()

    def seen(self, method: str, rpc: str | None = None) -> list[Recorded]:
        with self._lock:
            return [
                r
                for r in self.requests
                if r.method == method
                and (rpc is None or (isinstance(r.body, dict) and r.body.get("method") == rpc))
            ]

    # -- serving ------------------------------------------------------------------------------
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                fake._post(self)

            def do_GET(self) -> None:
                fake._get(self)

            def do_DELETE(self) -> None:
                fake._record(self, None)
                sid = self.headers.get("Mcp-Session-Id")
                with fake._cond:
                    fake.sessions.pop(sid or "", None)
                    fake._cond.notify_all()
                _plain(self, fake.delete_status)

        return Handler

    def _record(self, h: BaseHTTPRequestHandler, body: Any) -> None:
        if self.record_requests:
            with self._lock:
                self.requests.append(
                    Recorded(h.command, dict(h.headers.items()), body, time.monotonic())
                )

    def _post(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = json.loads(h.rfile.read(length) or b"null")
        self._record(h, body)
        method = body.get("method") if isinstance(body, dict) else None
        if method == "server/discover" and self.discover_versions is not None:
            result = {"supportedVersions": self.discover_versions}
            _json(h, {"jsonrpc": "2.0", "id": body["id"], "result": result})
            return
        if self.post_status is not None:
            _plain(h, self.post_status)
            return
        if method == "initialize":
            if self.initialize_delay:
                with self._cond:
                    self._cond.wait_for(lambda: self._stopping, self.initialize_delay)
            version = body["params"]["protocolVersion"]
            with self._lock:
                sess = FakeSession(uuid.uuid4().hex, next(self._count), version)
                self.sessions[sess.sid] = sess
            result = {
                "protocolVersion": version,
                "capabilities": {},
                "serverInfo": {"name": "fake", "version": "1"},
            }
            _json(h, {"jsonrpc": "2.0", "id": body["id"], "result": result}, sess.sid)
            return
        with self._lock:
            sess = self.sessions.get(h.headers.get("Mcp-Session-Id") or "")
        if sess is None:
            _plain(h, 404 if h.headers.get("Mcp-Session-Id") else 400)
            return
        if isinstance(body, dict) and "method" not in body:  # our answer to a server request
            with self._lock:
                self.pongs.append((body.get("id"), time.monotonic()))
            _plain(h, 202)
            return
        if "id" not in body:
            _plain(h, 202)
            return
        if method == "tools/call" and body["params"].get("name") == "drop":
            # An SSE answer that sends a notification without an id, then closes.
            h.send_response(200)
            h.send_header("Content-Type", "text/event-stream")
            h.send_header("Connection", "close")
            h.end_headers()
            note = {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progress": 1}}
            h.wfile.write(f"event: message\ndata: {json.dumps(note)}\n\n".encode())
            return
        if method == "tools/call" and body["params"].get("name") == "fail":
            error = {"code": -32000, "message": "tool failed"}
            _json(h, {"jsonrpc": "2.0", "id": body["id"], "error": error})
            return
        _json(h, {"jsonrpc": "2.0", "id": body["id"], "result": {"echo": body.get("params")}})

    def _get(self, h: BaseHTTPRequestHandler) -> None:
        self._record(h, None)
        if self.get_status is not None:
            _plain(h, self.get_status)
            return
        with self._lock:
            sess = self.sessions.get(h.headers.get("Mcp-Session-Id") or "")
            if sess is None and self.anonymous_get and not h.headers.get("Mcp-Session-Id"):
                sess = FakeSession(uuid.uuid4().hex, next(self._count), "")
                self.sessions[sess.sid] = sess
            if sess is not None:
                sess.gets += 1
        if sess is None or (self.expire_on_get and sess.gets == 1):
            with self._cond:
                if sess is not None:
                    self.sessions.pop(sess.sid, None)
            _plain(h, 404)
            return
        limited = self.conflict_sessions is not None and sess.index >= self.conflict_sessions
        if sess.conflicts < self.conflicts and not limited:
            sess.conflicts += 1
            _plain(h, 409)
            return
        lei = h.headers.get("Last-Event-ID")
        with self._lock:  # the position is taken before the client sees the 200
            ids = [eid for eid, _ in sess.log]
            pos = ids.index(lei) + 1 if lei in ids else len(ids)
            self._socks.add(h.connection)
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.send_header("Connection", "close")
        h.end_headers()
        if lei and self.unresumable:
            with self._lock:
                self._socks.discard(h.connection)
            return
        try:
            self._stream(h, sess, pos)
        except OSError:
            pass
        finally:
            with self._lock:
                self._socks.discard(h.connection)

    def _stream(self, h: BaseHTTPRequestHandler, sess: FakeSession, pos: int) -> None:
        out = h.wfile
        if self.ping_on_get:
            ping = {"jsonrpc": "2.0", "id": f"srv-{sess.gets}", "method": "ping"}
            out.write(f"event: message\ndata: {json.dumps(ping)}\n\n".encode())
        closes_at = None
        if self.poll_retry_ms is not None:
            eid = f"{sess.index}-{next(self._ids)}"
            with self._lock:
                sess.log.append((eid, ""))
                pos = len(sess.log)
            out.write(f"id: {eid}\nretry: {self.poll_retry_ms}\ndata\n\n".encode())
            if self.poll_close_after is not None:
                closes_at = time.monotonic() + self.poll_close_after
        out.flush()
        while True:
            with self._cond:
                while (
                    not self._stopping
                    and sess.sid in self.sessions
                    and len(sess.log) <= pos
                    and (closes_at is None or time.monotonic() < closes_at)
                ):
                    left = None if closes_at is None else max(closes_at - time.monotonic(), 0)
                    self._cond.wait(left)  # stop(), expiry and notify() all notify
                if self._stopping or sess.sid not in self.sessions:
                    return
                batch = [item for item in sess.log[pos:] if item[1]]
                pos = len(sess.log)
            for eid, data in batch:
                out.write(f"id: {eid}\nevent: message\ndata: {data}\n\n".encode())
            out.flush()
            if closes_at is not None and time.monotonic() >= closes_at:
                return


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # many streams connect at once (the memory benchmark)


def _plain(h: BaseHTTPRequestHandler, status: int) -> None:
    h.send_response(status)
    h.send_header("Content-Length", "0")
    h.send_header("Connection", "close")
    h.end_headers()


def _json(h: BaseHTTPRequestHandler, obj: Any, sid: str | None = None) -> None:
    data = json.dumps(obj).encode()
    h.send_response(200)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", str(len(data)))
    if sid is not None:
        h.send_header("Mcp-Session-Id", sid)
    h.send_header("Connection", "close")
    h.end_headers()
    h.wfile.write(data)
