"""A loopback SSE source that sends N numbered events as fast as the socket takes them.

Events are ``id: i`` / ``event: tick`` / 256 bytes each, ids 1..N; a request with
``Last-Event-ID: k`` gets k+1..N (resume). After the last event the connection is held open
(the stream stays "connected"), or closed when ``close_after`` is set. The server counts the
events it managed to hand to the kernel, so a test can see TCP backpressure: a paused reader
makes ``sent`` stop growing. Binds 127.0.0.1 port 0; ``stop()`` closes every connection and
joins every thread within a deadline.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType

EVENT_SIZE = 256
_CHUNK_EVENTS = 256


def event_bytes(i: int) -> bytes:
    """Event ``i`` on the wire: exactly ``EVENT_SIZE`` bytes."""
    head = f"id: {i}\nevent: tick\ndata: "
    pad = EVENT_SIZE - len(head) - 2 - len(str(i)) - 1
    return f"{head}{i} {'x' * pad}\n\n".encode()


class BurstServer:
    """Serve ids 1..``total`` to every connection, resuming after Last-Event-ID.

    Args:
        total: the number of events.
        close_after: close the connection after the last event instead of holding it.
        sndbuf: the socket send buffer (small: backpressure shows quickly).
    """

    def __init__(self, total: int, *, close_after: bool = False, sndbuf: int = 65536) -> None:
        self.total = total
        self.close_after = close_after
        self._sndbuf = sndbuf
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/events"
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._clients: list[socket.socket] = []
        self.sent = 0  # events handed to the kernel, all connections
        self.requests: list[str | None] = []  # Last-Event-ID of each request
        self._accept = threading.Thread(target=self._accept_loop, daemon=True)

    def __enter__(self) -> BurstServer:
        self._accept.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self, timeout: float = 5.0) -> None:
        """Close everything and join the threads."""
        self._stop.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            clients = list(self._clients)
        for sock in clients:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if self._accept.is_alive():
            self._accept.join(timeout)
        for thread in list(self._threads):
            thread.join(timeout)

    def _accept_loop(self) -> None:
        self._listener.settimeout(0.1)
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.settimeout(None)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self._sndbuf)
            with self._lock:
                self._clients.append(sock)
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket) -> None:
        try:
            head = b""
            while b"\r\n\r\n" not in head:
                data = sock.recv(4096)
                if not data:
                    return
                head += data
            last: str | None = None
            for line in head.decode("latin-1").split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "last-event-id":
                    last = value.strip()
            with self._lock:
                self.requests.append(last)
            start = int(last) + 1 if last and last.isdigit() else 1
            sock.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                b"Cache-Control: no-cache\r\nConnection: close\r\n\r\n"
            )
            i = start
            while i <= self.total and not self._stop.is_set():
                end = min(i + _CHUNK_EVENTS, self.total + 1)
                sock.sendall(b"".join(event_bytes(k) for k in range(i, end)))
                with self._lock:
                    self.sent += end - i
                i = end
            if not self.close_after:
                self._stop.wait()
        except OSError:
            return
        finally:
            with self._lock:
                if sock in self._clients:
                    self._clients.remove(sock)
            with contextlib.suppress(OSError):
                sock.close()
