"""Processes of the relay benchmark (``bench/relay.py`` starts them; not run by hand).

``--role upstream``: an SSE server publishing ``rate`` events/s (one global sequence) to
every connection, honouring Last-Event-ID from its history; ``--drop-every S`` closes the
connections every S seconds (the upstream "drops"). ``--role nchan-pub``: the same events
POSTed to nginx+nchan over one keep-alive connection. ``--role load``: K raw-socket SSE
clients in one asyncio loop (chunked or close-delimited bodies), driven by commands on stdin:
``start`` and ``stop`` bound the measured window, ``storm`` makes every client drop and
resume 0.3 s later with Last-Event-ID, ``report`` prints one JSON line. Every event's data is
``<seq> <time_ns> xxx...`` (100 bytes): latency is time of receipt minus ``time_ns``, and a
client's seqs show lost and repeated events.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import socket
import sys
import time
from array import array
from collections import deque

DATA_SIZE = 100


def _data(seq: int) -> bytes:
    head = b"%d %d " % (seq, time.time_ns())
    return head + b"x" * max(0, DATA_SIZE - len(head))


def _raise_fd_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# -- upstream SSE server ------------------------------------------------------------------
async def upstream(rate: float, drop_every: float, history: int) -> None:
    events: deque[tuple[int, bytes]] = deque(maxlen=history)
    writers: set[asyncio.StreamWriter] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        last = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"last-event-id" and value.strip().isdigit():
                last = int(value.strip())
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
        )
        writer.write(b"retry: 50\n\n" + b"".join(f for s, f in events if s > last))
        writers.add(writer)
        try:
            await reader.read()  # until the client goes
        finally:
            writers.discard(writer)
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    start, seq, dropped_at = time.monotonic(), 0, time.monotonic()
    while True:
        await asyncio.sleep(0.001)
        now = time.monotonic()
        due = int((now - start) * rate)
        frames = []
        while seq < due:
            seq += 1
            frame = b"id: %d\ndata: %s\n\n" % (seq, _data(seq))
            events.append((seq, frame))
            frames.append(frame)
        if frames:
            data = b"".join(frames)
            for writer in list(writers):
                writer.write(data)
        if drop_every and now - dropped_at >= drop_every:
            dropped_at = now
            for writer in list(writers):
                writer.transport.abort()


# -- nchan publisher ----------------------------------------------------------------------
async def nchan_publisher(port: int, rate: float) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    print("ok", flush=True)
    start, seq = time.monotonic(), 0
    while True:
        await asyncio.sleep(0.001)
        due = int((time.monotonic() - start) * rate)
        requests = []
        while seq < due:  # pipelined: every due publish in one write, then their answers
            seq += 1
            body = _data(seq)
            requests.append(
                b"POST /pub HTTP/1.1\r\nHost: b\r\nContent-Type: text/plain\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
            )
        writer.write(b"".join(requests))
        for _ in requests:
            head = await reader.readuntil(b"\r\n\r\n")
            for line in head.lower().split(b"\r\n"):
                if line.startswith(b"content-length:"):
                    await reader.readexactly(int(line.split(b":")[1]))


# -- load client --------------------------------------------------------------------------
class Stats:
    def __init__(self) -> None:
        self.measuring = False
        self.latency = array("d")
        self.delivered = 0
        self.lost = 0
        self.dups = 0
        self.gap_events = 0
        self.clients_lost: set[int] = set()


class Client(asyncio.Protocol):
    def __init__(self, n: int, stats: Stats, seqs: dict[int, int], lids: dict[int, bytes]) -> None:
        self.n, self.stats, self.seqs, self.lids = n, stats, seqs, lids
        self.head = b""
        self.body = False
        self.chunked = False
        self.raw = b""
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if not self.body:
            self.head += data
            i = self.head.find(b"\r\n\r\n")
            if i < 0:
                return
            self.chunked = b"transfer-encoding: chunked" in self.head[:i].lower()
            data, self.body = self.head[i + 4 :], True
        if self.chunked:
            data = self._dechunk(data)
        buf = self.buf + data
        blocks = buf.split(b"\n\n")
        self.buf = blocks.pop()
        if blocks:
            self._events(blocks, time.time_ns())

    def _dechunk(self, data: bytes) -> bytes:
        raw = self.raw + data
        out = []
        while True:
            i = raw.find(b"\r\n")
            if i < 0:
                break
            size = int(raw[:i].split(b";")[0] or b"0", 16)
            if len(raw) < i + 2 + size + 2:
                break
            out.append(raw[i + 2 : i + 2 + size])
            raw = raw[i + 4 + size :]
        self.raw = raw
        return b"".join(out)

    def _events(self, blocks: list[bytes], now: int) -> None:
        stats, seqs, n = self.stats, self.seqs, self.n
        for block in blocks:
            data = None
            for line in block.split(b"\n"):
                if line.startswith(b"data: "):
                    data = line[6:]
                elif line.startswith(b"id: "):
                    self.lids[n] = line[4:]
                elif line.startswith(b"event: streamvisor.gap"):
                    stats.gap_events += 1
            if data is None or not data[:1].isdigit():
                continue
            seq_text, stamp, _ = data.split(b" ", 2)
            seq, last = int(seq_text), seqs.get(n, 0)
            seqs[n] = max(seq, last)
            if last and seq != last + 1:
                if seq <= last:
                    stats.dups += 1
                else:
                    stats.lost += seq - last - 1
                    stats.clients_lost.add(n)
            if stats.measuring:
                stats.delivered += 1
                stats.latency.append((now - int(stamp)) / 1e6)


def _pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


async def load(port: int, path: str, clients: int) -> None:
    _raise_fd_limit()
    loop = asyncio.get_running_loop()
    stats, seqs, lids = Stats(), {}, {}
    conns: dict[int, Client] = {}

    async def connect(n: int) -> None:
        headers = b""
        if n in lids:
            headers = b"Last-Event-ID: " + lids[n] + b"\r\n"
        for attempt in range(50):
            try:
                _, proto = await loop.create_connection(
                    lambda: Client(n, stats, seqs, lids), "127.0.0.1", port
                )
                break
            except OSError:
                await asyncio.sleep(0.05 * (attempt + 1))
        else:
            return
        assert proto.transport is not None
        proto.transport.get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_RCVBUF, 65536
        )
        proto.transport.write(
            b"GET %s HTTP/1.1\r\nHost: b\r\nAccept: text/event-stream\r\n%s\r\n"
            % (path.encode(), headers)
        )
        conns[n] = proto

    async def connect_all() -> None:
        for first in range(0, clients, 500):
            await asyncio.gather(*(connect(n) for n in range(first, min(clients, first + 500))))

    await connect_all()
    print(json.dumps({"connected": len(conns)}), flush=True)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := (await reader.readline()).decode().strip():
        if line == "start":
            stats.measuring, started = True, time.monotonic()
        elif line == "stop":
            stats.measuring, window = False, time.monotonic() - started
        elif line == "storm":
            for proto in conns.values():
                if proto.transport is not None:
                    proto.transport.abort()
            await asyncio.sleep(0.3)
            conns.clear()
            await connect_all()
        elif line == "report":
            lat = sorted(stats.latency)
            print(
                json.dumps(
                    {
                        "connected": len(conns),
                        "per_s": stats.delivered / window,
                        "p50": _pct(lat, 0.50),
                        "p99": _pct(lat, 0.99),
                        "max": lat[-1] if lat else float("nan"),
                        "lost": stats.lost,
                        "dups": stats.dups,
                        "gap_events": stats.gap_events,
                        "clients_with_loss": len(stats.clients_lost),
                    }
                ),
                flush=True,
            )


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--role", choices=["upstream", "nchan-pub", "load"], required=True)
    p.add_argument("--rate", type=float, default=1000.0)
    p.add_argument("--drop-every", type=float, default=0.0)
    p.add_argument("--history", type=int, default=100_000)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--path", default="/streams/b")
    p.add_argument("--clients", type=int, default=100)
    a = p.parse_args()
    if a.role == "upstream":
        asyncio.run(upstream(a.rate, a.drop_every, a.history))
    elif a.role == "nchan-pub":
        asyncio.run(nchan_publisher(a.port, a.rate))
    else:
        asyncio.run(load(a.port, a.path, a.clients))


if __name__ == "__main__":
    main()
