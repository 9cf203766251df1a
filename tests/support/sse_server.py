"""A small threaded, scripted HTTP/SSE server for tests: binds 127.0.0.1 port 0 itself.

Connection N plays script N (then the default script, or the last script again). A script
is a list of steps (``Headers``, ``Send``, ``Pause``, ``WaitFor``, ``Close``, ``Reset``,
``Hold``, or one ``Status`` for a plain answer). Every request is recorded. One request per
connection: every response says ``Connection: close``. Rule: ``stop()`` ends every client
connection and joins every thread within a deadline; nothing here sleeps to wait.
"""

from __future__ import annotations

import contextlib
import http
import select
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType

from requests.structures import CaseInsensitiveDict


@dataclass(frozen=True)
class Status:
    """Answer a plain (non-streaming) response with a Content-Length body, then close."""

    code: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True)
class Headers:
    """Start a streaming 200 response; the body ends when the connection closes."""

    content_type: str | None = "text/event-stream"
    extra: Mapping[str, str] = field(default_factory=dict)
    chunked: bool = False
    status: int = 200


@dataclass(frozen=True)
class Send:
    """Send bytes (as one chunk when the response is chunked; raw before ``Headers``)."""

    data: bytes


@dataclass(frozen=True)
class Pause:
    """Wait this long, or until the server stops."""

    seconds: float


@dataclass(frozen=True)
class WaitFor:
    """Wait until the test sets ``event`` (gives up after ``timeout`` or at stop)."""

    event: threading.Event
    timeout: float = 10.0


@dataclass(frozen=True)
class Close:
    """End the response cleanly (terminating chunk if chunked) and close."""


@dataclass(frozen=True)
class Reset:
    """Abort the connection with a TCP RST (SO_LINGER 0, then close)."""


@dataclass(frozen=True)
class Hold:
    """Keep the connection open and silent until the client leaves or the server stops."""


Step = Status | Headers | Send | Pause | WaitFor | Close | Reset | Hold


def redirect(location: str, code: int = 307) -> Status:
    """A redirect answer to ``location``."""
    return Status(code, {"Location": location})


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it.

    Attributes:
        method: e.g. ``GET``.
        path: the request target, e.g. ``/events?x=1``.
        headers: decoded as Latin-1, case-insensitive lookup.
        raw_headers: (name, value) pairs exactly as received.
        body: the body (Content-Length bodies only).
        time: ``time.monotonic()`` when the request was complete.
    """

    method: str
    path: str
    headers: CaseInsensitiveDict[str]
    raw_headers: list[tuple[bytes, bytes]]
    body: bytes
    time: float

    def raw_header(self, name: str) -> bytes | None:
        """The raw bytes of the first header called ``name`` (case-insensitive), or None."""
        wanted = name.lower().encode("latin-1")
        return next((v for k, v in self.raw_headers if k.lower() == wanted), None)


class _Abort(Exception):
    """The script cannot go on (client left, server stopping)."""


class SSEServer:
    """A scripted SSE server on 127.0.0.1 (port 0), one thread per connection.

    Args:
        scripts: scripts for connections 0, 1, ...; more can be added with ``add_script``.
        default: script for connections beyond the list; when None, the last script repeats
            (and with no script at all, connections get a 404).
        ssl_context: serve HTTPS with this server-side context.
    """

    def __init__(
        self,
        scripts: Sequence[Sequence[Step]] = (),
        default: Sequence[Step] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._ssl_context = ssl_context
        self._scripts: list[list[Step]] = [list(s) for s in scripts]
        self.default = list(default) if default is not None else None
        self.requests: list[RecordedRequest] = []
        self.connections_accepted = 0
        self.open_connections = 0
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._wake_r, self._wake_w = socket.socketpair()
        self._clients: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self._acceptor = threading.Thread(target=self._accept_loop, name="sse-accept", daemon=True)

    def url(self, path: str = "/") -> str:
        """``http://127.0.0.1:PORT`` + path (``https`` with an SSL context)."""
        scheme = "https" if self._ssl_context is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def add_script(self, *steps: Step) -> None:
        """Queue a script for the next connection that has none yet."""
        with self._cond:
            self._scripts.append(list(steps))

    def start(self) -> SSEServer:
        """Start accepting connections."""
        self._acceptor.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Close every client connection and join all threads.

        Raises:
            RuntimeError: a thread was still alive at the deadline.
        """
        deadline = time.monotonic() + timeout
        self._stop.set()
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        with self._cond:
            clients = list(self._clients)
        for client in clients:
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)
        if self._acceptor.ident is not None:
            self._acceptor.join(max(0.0, deadline - time.monotonic()))
        with self._cond:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        alive = [t.name for t in [self._acceptor, *threads] if t.is_alive()]
        for sock in (self._listener, self._wake_r, self._wake_w):
            sock.close()
        if alive:
            raise RuntimeError(f"SSEServer threads still alive after {timeout}s: {alive}")

    def __enter__(self) -> SSEServer:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def wait_for_requests(self, n: int, timeout: float = 5.0) -> bool:
        """True once at least ``n`` requests were recorded; False at the deadline."""
        return self.wait_until(lambda: len(self.requests) >= n, timeout)

    def wait_for_idle(self, timeout: float = 5.0) -> bool:
        """True once no client connection is open (every handler finished)."""
        return self.wait_until(lambda: self.open_connections == 0, timeout)

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Wait (deadline-based) until ``predicate()`` holds; re-checked on each change."""
        with self._cond:
            return self._cond.wait_for(predicate, timeout)

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            readable, _, _ = select.select([self._listener, self._wake_r], [], [])
            if self._wake_r in readable or self._stop.is_set():
                return
            try:
                client, _ = self._listener.accept()
            except OSError:
                continue
            with self._cond:
                index = self.connections_accepted
                self.connections_accepted += 1
                self.open_connections += 1
                self._clients.add(client)
                thread = threading.Thread(
                    target=self._serve, args=(client, index), name=f"sse-conn-{index}", daemon=True
                )
                self._threads.add(thread)
                self._cond.notify_all()
            thread.start()

    def _script_for(self, index: int) -> list[Step]:
        with self._cond:
            if index < len(self._scripts):
                return self._scripts[index]
            if self.default is not None:
                return self.default
            return self._scripts[-1] if self._scripts else [Status(404)]

    def _serve(self, client: socket.socket, index: int) -> None:
        try:
            if self._stop.is_set():
                return
            client.settimeout(10.0)
            if self._ssl_context is not None:
                client = wrapped = self._wrap(client)
                wrapped.do_handshake()
            self._record(self._read_request(client))
            self._play(client, self._script_for(index))
        except (_Abort, OSError, ValueError):  # ssl.SSLError is an OSError
            pass  # client left, server stopping, or garbage: nothing to report
        finally:
            with contextlib.suppress(OSError):
                client.close()
            with self._cond:
                self._clients.discard(client)
                self.open_connections -= 1
                self._cond.notify_all()

    def _wrap(self, client: socket.socket) -> ssl.SSLSocket:
        assert self._ssl_context is not None
        with self._cond:  # wrapping detaches the plain socket: stop() must see the new one
            self._clients.discard(client)
            wrapped = self._ssl_context.wrap_socket(
                client, server_side=True, do_handshake_on_connect=False
            )
            self._clients.add(wrapped)
        return wrapped

    def _read_request(self, client: socket.socket) -> RecordedRequest:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = client.recv(65536)
            if not chunk or len(data) > 1 << 20:
                raise _Abort
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        request_line, *lines = head.split(b"\r\n")
        method, path, _ = request_line.decode("latin-1").split(" ", 2)
        raw = [(k.strip(), v.strip()) for k, _, v in (ln.partition(b":") for ln in lines)]
        headers = CaseInsensitiveDict({k.decode("latin-1"): v.decode("latin-1") for k, v in raw})
        length = int(headers.get("Content-Length", "0"))
        while len(body) < length:
            chunk = client.recv(65536)
            if not chunk:
                raise _Abort
            body += chunk
        return RecordedRequest(method, path, headers, raw, body, time.monotonic())

    def _record(self, request: RecordedRequest) -> None:
        with self._cond:
            self.requests.append(request)
            self._cond.notify_all()

    def _play(self, client: socket.socket, script: list[Step]) -> None:
        chunked = False
        for step in script:
            if isinstance(step, Status):
                reason = _reason(step.code)
                headers = {"Content-Length": str(len(step.body)), **step.headers}
                client.sendall(_head(step.code, reason, headers) + step.body)
                return
            if isinstance(step, Headers):
                chunked = step.chunked
                headers = {"Cache-Control": "no-cache", **step.extra}
                if step.content_type is not None:
                    headers["Content-Type"] = step.content_type
                if chunked:
                    headers["Transfer-Encoding"] = "chunked"
                client.sendall(_head(step.status, _reason(step.status), headers))
            elif isinstance(step, Send):
                if chunked and step.data:
                    client.sendall(b"%x\r\n%s\r\n" % (len(step.data), step.data))
                elif not chunked:
                    client.sendall(step.data)
            elif isinstance(step, Pause):
                if self._stop.wait(step.seconds):
                    raise _Abort
            elif isinstance(step, WaitFor):
                self._wait_for(step)
            elif isinstance(step, Close):
                break
            elif isinstance(step, Reset):
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                raise _Abort
            elif isinstance(step, Hold):
                client.settimeout(None)
                while client.recv(65536):  # until the client leaves or stop() shuts us down
                    pass
                raise _Abort
        if chunked:
            client.sendall(b"0\r\n\r\n")
        client.shutdown(socket.SHUT_WR)

    def _wait_for(self, step: WaitFor) -> None:
        deadline = time.monotonic() + step.timeout
        # Two events cannot be waited on together; short slices keep stop() prompt.
        while not step.event.wait(0.02):
            if self._stop.is_set() or time.monotonic() >= deadline:
                raise _Abort


def _reason(code: int) -> str:
    try:
        return http.HTTPStatus(code).phrase
    except ValueError:
        return "Unknown"


def _head(code: int, reason: str, headers: Mapping[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {code} {reason}", *(f"{k}: {v}" for k, v in headers.items())]
    if not any(k.lower() == "connection" for k in headers):
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
