"""Throughput of the ``redis_streams`` sink: 200 B events into Redis Streams from one process.

    python bench/redis_sink.py [--events 100000] [--rounds 3]

Starts its own redis-server (loopback, no persistence; stopped by PID at the end) and calls
``RedisStreamsSink.write`` directly with batches of ``batch`` events (what the sink driver
hands it), each event carrying 200 B of data. Contenders, in the same run:

- baseline: one ``XADD`` per event, one round trip each (redis-py, no pipeline);
- plain sink: pipelined ``XADD ... MAXLEN ~`` (no cluster);
- fenced sink, 1 stream: the cluster mode script (token check, dedup window, XADD, and the
  checkpoint in the same script), chunks of 500 per call;
- fenced sink, 100 streams: the same with each batch spread over 100 SSE streams (10 per
  stream per batch, one script call per stream, all pipelined).

The best of ``rounds`` counts; redis-server CPU per event is read from /proc.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from benchlib import ensure_repo_on_path, machine_note, ratio, table
from redis_server import RedisServer

ensure_repo_on_path()

from streamvisor.cluster.lease import WriteVerdict  # noqa: E402
from streamvisor.cluster.scripts import ACQUIRE, Keys, ScriptRunner  # noqa: E402
from streamvisor.cluster.settings import RedisStreamsOptions  # noqa: E402
from streamvisor.sinks.redis_streams import RedisStreamsSink  # noqa: E402
from streamvisor.sse import Event  # noqa: E402

PAYLOAD = 200
KEYS = Keys("bench:")


class Fence:
    """Holds every lease the benchmark acquired (a stand-in for the coordinator)."""

    member = "bench#1-aa"

    def __init__(self) -> None:
        self.tokens: dict[str, int] = {}

    def token(self, stream: str) -> int | None:
        return self.tokens.get(stream)

    def fenced(self, stream: str) -> None:
        raise SystemExit(f"unexpected fenced write on {stream}")

    def wait_writable(self, stream: str, timeout: float) -> WriteVerdict:
        return WriteVerdict.WRITE


def make_events(n: int, streams: int, start: int) -> list[Event]:
    data = "x" * PAYLOAD
    return [
        Event(f"s{i % streams}", str(start + i), "tick", data, str(start + i), time.time())
        for i in range(n)
    ]


def run(write: Callable[[list[Event]], None], events: list[Event], batch: int) -> float:
    started = time.perf_counter()
    for i in range(0, len(events), batch):
        write(events[i : i + batch])
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--baseline-events", type=int, default=5_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    results: dict[str, list[tuple[float, float]]] = {}
    with RedisServer() as server:
        client = server.client()
        runner = ScriptRunner(client)
        fence = Fence()
        for s in range(100):
            stream = f"s{s}"
            keys = [KEYS.lease(stream), KEYS.fence(stream), KEYS.ckpt(stream)]
            fence.tokens[stream] = runner.call(ACQUIRE, keys, [fence.member, 3_600_000, 0])[0]
        options = RedisStreamsOptions(redis=server.url, maxlen=100_000, dedup_window=1000)

        def baseline(events: list[Event]) -> None:
            for ev in events:
                client.xadd(f"base:{ev.stream}", {"id": ev.id or "", "data": ev.data})

        plain = RedisStreamsSink(options, name="plain", client=client)
        fenced = RedisStreamsSink(options, name="fenced", client=client)
        fenced.attach(fence, KEYS, checkpoints={f"s{s}" for s in range(100)})
        contenders: list[tuple[str, Callable[[list[Event]], None], int, int]] = [
            ("baseline: XADD per event, no pipeline", baseline, args.baseline_events, 1),
            ("plain sink (batched XADD script)", plain.write, args.events, 1),
            ("fenced sink, 1 stream", fenced.write, args.events, 1),
            ("fenced sink, 100 streams", fenced.write, args.events, 100),
        ]
        start = 1
        for _ in range(args.rounds):
            for name, write, n, streams in contenders:
                events = make_events(n, streams, start)
                start += n
                cpu = server.cpu_seconds()
                seconds = run(write, events, args.batch)
                used = server.cpu_seconds() - cpu
                results.setdefault(name, []).append((n / seconds, used / n * 1e6))
        assert fenced.duplicates == 0 and fenced.written == args.events * args.rounds * 2
        client.close()

    best = {name: max(rates) for name, rates in results.items()}
    base = best["baseline: XADD per event, no pipeline"][0]
    rows = [
        (name, f"{rate:,.0f}", f"{cpu:.1f}", ratio(rate, base))
        for name, (rate, cpu) in best.items()
    ]
    print(
        f"{args.events:,} events of {PAYLOAD} B, batches of {args.batch}, best of "
        f"{args.rounds}; {machine_note()}"
    )
    print(table(["contender", "events/s", "redis CPU µs/event", "vs baseline"], rows))


if __name__ == "__main__":
    main()
