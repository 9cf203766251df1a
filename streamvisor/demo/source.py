"""An embedded, deterministic, flaky SSE source for the demo, integration tests and benchmarks.

Each channel is an append-only log of ``tick`` events with ids "1", "2", ... that appear at
``rate`` events/s from ``start()`` (computed from elapsed time, so content never depends on
timing). ``Chaos`` makes connections end badly (clean close, TCP reset, half an event, replayed
duplicates, one 503) from a ``random.Random`` seeded per channel and connection number, so a
run is reproducible given the same request sequence. A fault never loses an event on the server
side: everything after the client's Last-Event-ID is sent again on the next connection.

Rule of this module: stdlib only; test/demo infrastructure shipped in the package.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import math
import random
import socket
import socketserver
import struct
import sys
import threading
import time
import zlib
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import TracebackType
from typing import Any

from streamvisor.demo.faults import DEMO_CHAOS, ChannelStats, Chaos, plan_connection

__all__ = ["DEMO_CHAOS", "ChannelStats", "Chaos", "DemoSource", "main"]

log = logging.getLogger(__name__)
_CALM = Chaos()  # no faults


class _Server(HTTPServer):
    daemon_threads = True
    source: DemoSource

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn); not needed here.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        self.source._spawn(self, request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("demo source: error serving %s", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("demo source: " + format, *args)

    def do_GET(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):  # the client left, or stop() shut the socket down
            self.server.source._serve(self)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.do_GET()


class DemoSource:
    """A local SSE server with channels of deterministic events and seeded faults.

    Args:
        channels: channel names, served at ``/events/<channel>``.
        total: events per channel (None: endless).
        rate: events per second per channel; ``math.inf`` makes all ``total`` available at once.
        chaos: fault probabilities (default: none).
        seed: seeds every connection's fault choices.
        heartbeat: seconds of silence before a ``: heartbeat`` comment (<= 0: never).
        host, port: where to listen (port 0: any free port).
        payload_size: pad each event's data to at least this many characters.
        retry_ms: if set, each response starts with ``retry: <retry_ms>``.
    """

    def __init__(
        self,
        channels: Sequence[str] = ("ticker",),
        *,
        total: int | None = None,
        rate: float = 200.0,
        chaos: Chaos = _CALM,
        seed: int = 0,
        heartbeat: float = 5.0,
        host: str = "127.0.0.1",
        port: int = 0,
        payload_size: int = 0,
        retry_ms: int | None = None,
    ) -> None:
        if not channels or rate <= 0 or (math.isinf(rate) and total is None):
            raise ValueError("need channels, and a positive rate (an infinite one needs total)")
        self.channels = tuple(channels)
        self.total, self.rate, self.chaos, self.seed = total, rate, chaos, seed
        self.heartbeat = heartbeat if heartbeat > 0 else math.inf
        self.host, self.port, self.payload_size, self.retry_ms = host, port, payload_size, retry_ms
        self._lock = threading.Lock()
        self._stats = {c: ChannelStats() for c in self.channels}
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._serve_thread: threading.Thread | None = None
        self._threads: set[threading.Thread] = set()
        self._sockets: set[socket.socket] = set()
        self._t0 = 0.0
        self._conn_count = 0

    def start(self) -> None:
        """Bind and serve in background threads; events start appearing now."""
        if self._serve_thread is not None:
            raise RuntimeError("a DemoSource starts once")
        self._server = _Server((self.host, self.port), _Handler)
        self._server.source = self
        self.port = self._server.server_port
        self._t0 = time.monotonic()
        self._serve_thread = threading.Thread(
            target=self._server.serve_forever,
            args=(0.05,),
            name=f"demo-source-{self.port}",
            daemon=True,
        )
        self._serve_thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Close the listener and every connection; join all threads within ``timeout``."""
        deadline = time.monotonic() + timeout
        self._stopping.set()
        server, self._server = self._server, None
        if server is None or self._serve_thread is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            sockets, threads = list(self._sockets), [self._serve_thread, *self._threads]
        for sock in sockets:
            with contextlib.suppress(OSError):  # wakes a handler blocked in send or recv
                sock.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if any(t.is_alive() for t in threads):
            log.warning("demo source: threads still running after stop(%s)", timeout)

    def __enter__(self) -> DemoSource:
        self.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url_base(self) -> str:
        """``http://HOST:PORT`` (after ``start()``)."""
        if self._serve_thread is None:
            raise RuntimeError("start() the DemoSource first")
        return f"http://{self.host}:{self.port}"

    def url(self, channel: str) -> str:
        """The SSE URL of ``channel``."""
        return f"{self.url_base}/events/{channel}"

    def event_data(self, channel: str, seq: int) -> str:
        """The data of event ``seq`` (1-based): one JSON object; every 5th spans two lines."""
        price = 100 + zlib.crc32(f"{channel}:{seq}".encode()) % 10000 / 100
        head = f'{{"channel": {json.dumps(channel)}, "seq": {seq},'
        head += "\n" if seq % 5 == 0 else ""
        tail = f' "price": {price:.2f}'
        if self.payload_size > len(head) + len(tail) + 1:  # exact unless the gap is tiny
            pad = max(0, self.payload_size - len(head) - len(tail) - len(', "pad": ""}'))
            tail += f', "pad": "{"x" * pad}"'
        return head + tail + "}"

    def published(self, channel: str) -> int:
        """How many events of ``channel`` exist so far (the high-water mark a client can get)."""
        if channel not in self._stats:
            raise KeyError(channel)
        if self._serve_thread is None:
            return 0
        if self.total is None:
            return int((time.monotonic() - self._t0) * self.rate)
        if math.isinf(self.rate):
            return self.total
        return min(self.total, int((time.monotonic() - self._t0) * self.rate))

    def wait_published(self, channel: str, n: int, timeout: float) -> bool:
        """Wait until ``n`` events of ``channel`` exist; False on timeout."""
        deadline = time.monotonic() + timeout
        while self.published(channel) < n:
            left = deadline - time.monotonic()
            if left <= 0 or (self.total is not None and n > self.total):
                return False
            time.sleep(min(left, self._until(n)))
        return True

    @property
    def stats(self) -> dict[str, ChannelStats]:
        """A consistent snapshot of every channel's counters."""
        with self._lock:
            return {c: dataclasses.replace(s) for c, s in self._stats.items()}

    def _until(self, seq: int) -> float:
        if (self.total is not None and seq > self.total) or math.isinf(self.rate):
            return math.inf
        return max(0.001, self._t0 + seq / self.rate - time.monotonic())

    def _count(self, channel: str, field: str, n: int = 1) -> None:
        with self._lock:
            stats = self._stats[channel]
            setattr(stats, field, getattr(stats, field) + n)

    def _spawn(self, server: _Server, request: socket.socket, address: Any) -> None:
        def run() -> None:
            try:
                server.finish_request(request, address)
            except Exception:
                server.handle_error(request, address)
            finally:
                server.shutdown_request(request)
                with self._lock:
                    self._sockets.discard(request)
                    self._threads.discard(threading.current_thread())

        with self._lock:
            self._conn_count += 1
            thread = threading.Thread(
                target=run, daemon=True, name=f"demo-source-{self.port}-conn-{self._conn_count}"
            )
            self._sockets.add(request)
            self._threads.add(thread)
        thread.start()

    def _encode(self, channel: str, seq: int) -> bytes:
        lines = "".join(f"data: {ln}\n" for ln in self.event_data(channel, seq).split("\n"))
        return f"id: {seq}\nevent: tick\n{lines}\n".encode()

    def _reply(self, h: _Handler, status: int, body: str, **headers: str) -> None:
        h.send_response(status)
        for name, value in {"Content-Type": "text/plain; charset=utf-8", **headers}.items():
            h.send_header(name.replace("_", "-"), value)
        h.send_header("Content-Length", str(len(body.encode())))
        h.send_header("Connection", "close")
        h.end_headers()
        h.wfile.write(body.encode())

    def _serve(self, h: _Handler) -> None:
        path = h.path.split("?", 1)[0]
        if path == "/health":
            return self._reply(h, 200, "ok\n")
        channel = path[len("/events/") :] if path.startswith("/events/") else ""
        if channel not in self._stats:
            return self._reply(h, 404, "not found\n")
        chaos = self.chaos
        with self._lock:
            self._stats[channel].connections += 1
            number = self._stats[channel].connections
        rng = random.Random(f"{self.seed}:{channel}:{number}")
        if chaos.unavailable_once and number == 1:
            self._count(channel, "unavailable")
            return self._reply(
                h, 503, "unavailable, retry later\n", Retry_After=str(chaos.retry_after_seconds)
            )
        raw = (h.headers.get("Last-Event-ID") or "").strip()
        last = int(raw) if raw.isascii() and raw.isdigit() else 0
        fault, after, seq = plan_connection(chaos, rng, last)
        replay = seq <= last
        if replay:
            self._count(channel, "replays")
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream; charset=utf-8")
        h.send_header("Cache-Control", "no-cache")
        h.send_header("Connection", "close")
        h.end_headers()
        if self.retry_ms is not None:
            h.wfile.write(f"retry: {self.retry_ms}\n\n".encode())
        new_sent, quiet_since = 0, time.monotonic()
        while not self._stopping.is_set():
            upto = min(self.published(channel), seq + 63)
            chunk: list[bytes] = []
            while seq <= upto:
                if seq > last and fault is not None and new_sent == after:
                    break
                chunk.append(self._encode(channel, seq))
                new_sent += seq > last
                seq += 1
            if chunk:
                self._count(channel, "events_sent", len(chunk))  # first: a client never sees more
                h.wfile.write(b"".join(chunk))
                quiet_since = time.monotonic()
            if fault is not None and new_sent == after and seq <= upto:
                return self._fault(h, channel, fault, seq)
            if seq <= self.published(channel):  # more than one batch was due
                continue
            if time.monotonic() - quiet_since >= self.heartbeat:
                h.wfile.write(b": heartbeat\n")
                quiet_since = time.monotonic()
            wait = min(self._until(seq), quiet_since + self.heartbeat - time.monotonic())
            self._stopping.wait(max(0.001, wait))
        return None

    def _fault(self, h: _Handler, channel: str, fault: str, seq: int) -> None:
        self._count(channel, fault)
        if fault == "cut_events":
            block = self._encode(channel, seq)
            h.wfile.write(block[: len(block) // 2])
        elif fault == "resets":
            # Linger 0 makes close() send RST; the makefile refs delay it to the handler's end,
            # and the server's later shutdown(SHUT_WR) of a closed socket fails harmlessly.
            h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            h.connection.close()


_OPTIONS: tuple[tuple[str, type, object, str], ...] = (
    ("--host", str, "127.0.0.1", "address to listen on"),
    ("--port", int, 8000, "port to listen on (0: any free port)"),
    ("--channels", str, "ticker", "comma-separated channel names"),
    ("--rate", float, 5.0, "events per second per channel"),
    ("--total", int, None, "events per channel (default: endless)"),
    ("--seed", int, 0, "seed of the fault choices"),
    ("--heartbeat", float, 5.0, "seconds of silence before a heartbeat comment"),
    ("--payload-size", int, 0, "pad event data to this many characters"),
    ("--retry-ms", int, None, "send 'retry: N' first on each connection"),
)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m streamvisor.demo.source``: serve demo channels until Ctrl-C (then 0)."""
    parser = argparse.ArgumentParser(
        prog="python -m streamvisor.demo.source", description="Serve a local demo SSE source."
    )
    for flag, kind, default, text in _OPTIONS:
        parser.add_argument(flag, type=kind, default=default, help=text)
    parser.add_argument("--chaos", action="store_true", help="faults: DEMO_CHAOS")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error already printed
        return int(exc.code or 0)
    options = {
        f[2:].replace("-", "_"): getattr(args, f[2:].replace("-", "_")) for f, *_ in _OPTIONS
    }
    options["channels"] = [c for c in options["channels"].split(",") if c]
    try:
        source = DemoSource(chaos=DEMO_CHAOS if args.chaos else Chaos(), **options)
        source.start()
    except (ValueError, OverflowError, OSError) as exc:  # OverflowError: a port past 65535
        print(f"demo_source: {exc}", file=sys.stderr)
        return 1 if isinstance(exc, OSError) else 2
    for channel in source.channels:
        print(source.url(channel), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        source.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
