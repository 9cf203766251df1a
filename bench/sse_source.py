"""Fast local SSE sources for the benchmarks, each served from its own process.

The server runs an asyncio loop in a separate process (``python sse_source.py --serve``), so it
never competes with the client under test for the client's GIL. It binds 127.0.0.1 port 0
and speaks just enough HTTP/1.1: it reads the request head, honours ``Last-Event-ID``, and
answers ``200 text/event-stream`` with a read-until-close body (no Content-Length, not
chunked; ``chunked=True``: ``Transfer-Encoding: chunked`` with one chunk per event, as web
frameworks send a generator that yields event by event; burst mode only). Events are exactly ``EVENT_SIZE`` bytes: ``id: i\\nevent: tick\\ndata: ...\\n\\n``.

Modes:

* ``burst``: all events after Last-Event-ID (up to ``count``), pre-generated, written as fast
  as the socket takes them; then hold the connection silently until the client goes (or
  close, with ``hold=False``).
* ``paced``: ``count`` events at ``rate`` per second from the moment the request arrives; the
  data starts with the ``time.time()`` of the send, for send-to-receive latency. Then hold.
* ``batches``: ``count`` events after Last-Event-ID, then a clean close. Each request's
  arrival and each close are recorded (``time.monotonic()``) and handed back by
  ``Source.stats()["conns"]`` as ``[arrival, close]`` pairs: the reconnect gap is measured
  on the server side only.
* ``idle``: the headers and one comment, then a heartbeat comment every ``heartbeat``
  seconds on every connection: many idle streams for memory measurements.

Use it as a context manager; ``stop()`` always ends the process (terminate, then kill).

    with Source("burst", count=100_000) as src:
        url = src.url
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import select
import subprocess
import sys
import threading
import time
from types import TracebackType
from typing import Any

EVENT_SIZE = 256
HEADERS = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: text/event-stream\r\n"
    b"Cache-Control: no-cache\r\n"
    b"Connection: close\r\n"
    b"\r\n"
)
CHUNKED_HEADERS = HEADERS.replace(
    b"Connection: close\r\n", b"Connection: close\r\nTransfer-Encoding: chunked\r\n"
)
MODES = ("burst", "paced", "batches", "idle")


def make_event(i: int, text: str = "", size: int = EVENT_SIZE) -> bytes:
    """Event ``i`` of exactly ``size`` bytes; its data starts with ``text`` (then padding)."""
    head = f"id: {i}\nevent: tick\ndata: {text}"
    pad = size - len(head) - 2
    if pad < 0:
        raise ValueError("event too large for its size")
    return (head + "x" * pad + "\n\n").encode("ascii")


def parse_stamp(data: str) -> float:
    """The send timestamp a ``paced`` event carries at the start of its data."""
    return float(data[: data.index("x")] if "x" in data else data)


def _last_event_id(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"last-event-id":
            with contextlib.suppress(ValueError):
                return max(int(value.strip()), 0)
    return 0


class _Server:
    def __init__(self, mode: str, opts: dict[str, Any]) -> None:
        self.mode = mode
        self.count: int = opts.get("count", 100_000)
        self.rate: float = opts.get("rate", 2000.0)
        self.hold: bool = opts.get("hold", True)
        self.heartbeat: float = opts.get("heartbeat", 5.0)
        self.per_batch: int = opts.get("per_batch", 1)
        self.chunked: bool = opts.get("chunked", False) and mode == "burst"
        self.accepted = 0
        self.open = 0
        self.served_events = 0
        # batches: per connection [request head received, just before the clean close]
        self.conns: list[list[float | None]] = []
        self.writers: set[asyncio.StreamWriter] = set()
        self.payload = b""
        self.offsets: list[int] = []
        if mode in ("burst", "batches"):
            events = [make_event(i) for i in range(1, self.count + 1)]
            if self.chunked:
                events = [b"%x\r\n%s\r\n" % (len(ev), ev) for ev in events]
            self.offsets = [0]
            for ev in events:
                self.offsets.append(self.offsets[-1] + len(ev))
            self.payload = b"".join(events)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self.open += 1
        self.writers.add(writer)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            arrived = time.monotonic()
            writer.write(CHUNKED_HEADERS if self.chunked else HEADERS)
            if self.mode == "burst":
                await self._burst(reader, writer, _last_event_id(head))
            elif self.mode == "paced":
                await self._paced(reader, writer)
            elif self.mode == "batches":
                record: list[float | None] = [arrived, None]
                self.conns.append(record)
                await self._batch(writer, _last_event_id(head), record)
            else:
                writer.write(b": connected\n\n")
                await writer.drain()
                await reader.read()  # until the client goes
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            pass  # shutting down; returning normally keeps 3.11's stream callback quiet
        finally:
            self.open -= 1
            self.writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    async def _burst(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, lid: int
    ) -> None:
        start = min(lid, self.count)
        writer.write(memoryview(self.payload)[self.offsets[start] :])
        await writer.drain()
        self.served_events += self.count - start
        if self.hold:
            await reader.read()

    async def _paced(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await writer.drain()
        start = time.monotonic()
        sent = 0
        while sent < self.count:
            due = min(int((time.monotonic() - start) * self.rate) + 1, self.count)
            if due > sent:
                stamp = f"{time.time():.6f} "
                writer.write(b"".join(make_event(i, stamp) for i in range(sent + 1, due + 1)))
                self.served_events += due - sent
                sent = due
                await writer.drain()
            next_at = start + sent / self.rate
            await asyncio.sleep(max(next_at - time.monotonic(), 0.0))
        if self.hold:
            await reader.read()

    async def _batch(
        self, writer: asyncio.StreamWriter, lid: int, record: list[float | None]
    ) -> None:
        start = min(lid, self.count)
        end = min(start + self.per_batch, self.count)
        writer.write(memoryview(self.payload)[self.offsets[start] : self.offsets[end]])
        await writer.drain()
        self.served_events += end - start
        record[1] = time.monotonic()
        writer.close()
        await writer.wait_closed()

    async def heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat)
            for writer in list(self.writers):
                with contextlib.suppress(Exception):
                    writer.write(b": hb\n\n")

    def stats(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "open": self.open,
            "served_events": self.served_events,
            "conns": [list(c) for c in self.conns],
        }


def _serve(mode: str, opts: dict[str, Any]) -> None:
    """The server process: stdout carries ``ready PORT`` then one JSON line per ``stats``."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    server = _Server(mode, opts)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        srv = await asyncio.start_server(server.handle, "127.0.0.1", 0, backlog=4096)
        port = srv.sockets[0].getsockname()[1]
        print(f"ready {port}", flush=True)

        def listen() -> None:  # commands from the parent on stdin; EOF (parent gone) stops
            for line in sys.stdin:
                if line.strip() == "stats":
                    print(json.dumps(server.stats()), flush=True)
                    continue
                break
            loop.call_soon_threadsafe(stop.set)

        threading.Thread(target=listen, daemon=True).start()
        hb = asyncio.create_task(server.heartbeats()) if mode == "idle" else None
        await stop.wait()
        if hb is not None:
            hb.cancel()
        srv.close()
        for writer in list(server.writers):
            with contextlib.suppress(Exception):
                writer.transport.abort()

    asyncio.run(main())


class Source:
    """A benchmark SSE server in a separate process.

    Args:
        mode: ``burst``, ``paced``, ``batches`` or ``idle``.
        count: events per connection (burst, paced) or in the whole log (batches).
        rate: paced events per second.
        hold: burst/paced: keep the connection open after the last event.
        chunked: burst: a chunked body, one chunk per event.
        per_batch: batches: events per connection before the clean close.
        heartbeat: idle: seconds between heartbeat comments.
    """

    def __init__(self, mode: str, **opts: Any) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        self.mode = mode
        self.opts = opts
        self.port = 0
        self.pid = 0
        self._proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/events"

    def start(self, timeout: float = 30.0) -> Source:
        """Start the server process and wait for its port."""
        args = [
            sys.executable,
            os.path.abspath(__file__),
            "--serve",
            self.mode,
            json.dumps(self.opts),
        ]
        proc = self._proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.pid = proc.pid
        line = self._readline(timeout)
        if not line.startswith("ready "):
            self.stop()
            raise RuntimeError(f"SSE source did not start: {line!r}")
        self.port = int(line.split()[1])
        return self

    def _readline(self, timeout: float) -> str:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        if not ready:
            raise RuntimeError("SSE source did not answer in time")
        return proc.stdout.readline()

    def stats(self, timeout: float = 10.0) -> dict[str, Any]:
        """Counters, and in ``batches`` mode the arrival and close times."""
        proc = self._proc
        assert proc is not None and proc.stdin is not None
        proc.stdin.write("stats\n")
        proc.stdin.flush()
        result: dict[str, Any] = json.loads(self._readline(timeout))
        return result

    def stop(self, timeout: float = 5.0) -> None:
        """End the server process (politely, then terminate, then kill). Idempotent."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError, ValueError):
            assert proc.stdin is not None
            proc.stdin.write("stop\n")
            proc.stdin.close()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        if proc.stdout is not None:
            proc.stdout.close()

    def __enter__(self) -> Source:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        _serve(sys.argv[2], json.loads(sys.argv[3]))
    else:  # a quick manual check: curl the printed URL
        with Source(sys.argv[1] if len(sys.argv) > 1 else "paced", count=20, rate=5) as src:
            print(src.url, flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                time.sleep(float(sys.argv[2]) if len(sys.argv) > 2 else 10)
