"""Send-to-receive latency at a steady rate: streamvisor vs bare clients.

A paced SSE server in another process sends ``--rate`` events/s for ``--seconds``; each event's
data starts with the ``time.time()`` of its send (same machine, same clock). The receive time
is taken where the event reaches user code:

* ``launchdarkly``: the ``client.events`` loop;
* ``sseclient-py``: the ``SSEClient(resp).events()`` loop;
* ``streamvisor actor``: the subscriber actor's ``on_receive``;
* ``streamvisor sink``: the Sink's ``write`` (``max_wait=0``), for the batched path.

Contenders run one at a time, interleaved over ``--rounds``; samples of all rounds are pooled.

    python bench/latency.py [--rate 2000] [--seconds 5] [--rounds 2]
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from benchlib import ensure_repo_on_path, machine_note, percentile, ratio, table
from sse_source import Source, parse_stamp

ensure_repo_on_path()

Samples = list[tuple[float, str]]  # (receive time, data)


def run_launchdarkly(url: str, n: int) -> Samples:
    import urllib3
    from ld_eventsource import SSEClient
    from ld_eventsource.config import ConnectStrategy, ErrorStrategy

    client = SSEClient(
        ConnectStrategy.http(
            url, urllib3_request_options={"timeout": urllib3.Timeout(connect=5, read=30)}
        ),
        initial_retry_delay=0,
        error_strategy=ErrorStrategy.always_fail(),
    )
    out: Samples = []
    now = time.time
    try:
        for ev in client.events:
            out.append((now(), ev.data))
            if len(out) >= n:
                break
    finally:
        client.close()
    return out


def run_sseclient(url: str, n: int) -> Samples:
    import requests
    import sseclient

    resp = requests.get(url, stream=True, timeout=(5, 30))
    out: Samples = []
    now = time.time
    try:
        for ev in sseclient.SSEClient(resp).events():
            out.append((now(), ev.data))
            if len(out) >= n:
                break
    finally:
        resp.close()
    return out


def _streamvisor(url: str, n: int, *, sink: bool, timeout: float) -> Samples:
    import pykka

    from streamvisor import Event, StreamSpec
    from streamvisor.api.facade import Streamvisor

    out: Samples = []
    done = threading.Event()
    now = time.time

    class Recorder(pykka.ThreadingActor):
        def on_receive(self, message: Any) -> Any:
            if isinstance(message, Event):
                out.append((now(), message.data))
                if len(out) >= n:
                    done.set()
            return None

    class RecordingSink:
        name = "latency"
        max_batch = 2048
        max_wait = 0.0

        def write(self, events: Any) -> None:
            t = now()
            out.extend((t, ev.data) for ev in events)
            if len(out) >= n:
                done.set()

        def flush(self) -> None:
            pass

        def close(self) -> None:
            pass

    sv = Streamvisor([StreamSpec(name="latency", url=url, read_timeout=30.0)])
    ref = None
    if sink:
        sv.add_sink(RecordingSink())
    else:
        ref = Recorder.start()
        sv.subscribe(ref)
    try:
        sv.start()
        done.wait(timeout)
    finally:
        sv.stop(timeout=10)
        if ref is not None:
            ref.stop(timeout=5)
    return out[:n]


CONTENDERS: list[tuple[str, Callable[..., Samples]]] = [
    ("launchdarkly", run_launchdarkly),
    ("sseclient-py", run_sseclient),
    (
        "streamvisor actor",
        lambda url, n, timeout: _streamvisor(url, n, sink=False, timeout=timeout),
    ),
    ("streamvisor sink", lambda url, n, timeout: _streamvisor(url, n, sink=True, timeout=timeout)),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    n = int(args.rate * args.seconds)
    print(
        f"latency: {args.rate:g} ev/s for {args.seconds:g}s ({n} events) x {args.rounds} rounds; "
        f"{machine_note()}"
    )
    lat: dict[str, list[float]] = {name: [] for name, _ in CONTENDERS}
    missing: dict[str, int] = dict.fromkeys(lat, 0)
    with Source("paced", count=n, rate=args.rate, hold=True) as src:
        for rnd in range(args.rounds):
            for name, fn in CONTENDERS:
                if name.startswith("streamvisor"):
                    samples = fn(src.url, n, timeout=args.seconds * 3 + 10)
                else:
                    samples = fn(src.url, n)
                ms = [(t - parse_stamp(data)) * 1000.0 for t, data in samples]
                missing[name] += n - len(ms)
                lat[name].extend(ms)
                print(
                    f"  round {rnd + 1} {name}: {len(ms)} events, p50 {percentile(ms, 50):.2f} ms, "
                    f"p99 {percentile(ms, 99):.2f} ms",
                    flush=True,
                )
    base = percentile(lat["launchdarkly"], 95)
    base_sse = percentile(lat["sseclient-py"], 95)
    rows = []
    for name, ms in lat.items():
        p95 = percentile(ms, 95)
        rows.append(
            [
                name,
                len(ms),
                f"{percentile(ms, 50):.2f}",
                f"{p95:.2f}",
                f"{percentile(ms, 99):.2f}",
                f"{max(ms, default=float('nan')):.2f}",
                ratio(p95, base),
                ratio(p95, base_sse),
                missing[name],
            ]
        )
    print()
    print(
        table(
            [
                "contender",
                "events",
                "p50 ms",
                "p95 ms",
                "p99 ms",
                "max ms",
                "p95 vs launchdarkly",
                "p95 vs sseclient-py",
                "missing",
            ],
            rows,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
