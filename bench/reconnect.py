"""Reconnect gap after a clean close: streamvisor vs an immediate hand-written reconnect.

A ``batches`` SSE server in another process sends one event per connection (after the
request's Last-Event-ID) and then closes cleanly. It records, per connection, when the
request head arrived and when it closed; the gap is ``arrival[i + 1] - close[i]``, measured
only on the server side. Contenders, one at a time, ``--samples`` gaps each, interleaved
over ``--rounds`` (samples pooled):

* ``requests loop (floor)``: a hand-written loop on one ``requests.Session`` that reads with
  ``raw.read1`` until EOF and reconnects at once with Last-Event-ID;
* ``launchdarkly``: ``ld_eventsource.SSEClient`` with ``initial_retry_delay=0`` and
  ``ErrorStrategy.always_continue()``;
* ``streamvisor``: one supervised stream (no subscriber), stopped when enough gaps exist.

Target: streamvisor p50 under 5 ms. The stop time of 1000 connected streams is in
``memory.py``.

    python bench/reconnect.py [--samples 200] [--rounds 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

from benchlib import ensure_repo_on_path, machine_note, percentile, ratio, table
from sse_source import Source

ensure_repo_on_path()

TARGET_P50_MS = 5.0
TIMEOUT = 60.0


def _wait_for(src: Source, total: int, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if src.stats()["accepted"] >= total:
            return
        time.sleep(0.05)
    raise RuntimeError(f"only {src.stats()['accepted']} of {total} connections in {timeout}s")


def run_floor(src: Source, conns: int) -> None:
    import requests

    session = requests.Session()
    last = ""
    try:
        for _ in range(conns):
            headers = {"Accept": "text/event-stream"}
            if last:
                headers["Last-Event-ID"] = last
            resp = session.get(src.url, stream=True, headers=headers, timeout=(5, 30))
            body = b""
            while True:
                chunk = resp.raw.read1(65536)
                if not chunk:
                    break
                body += chunk
            resp.close()
            for line in body.split(b"\n"):
                if line.startswith(b"id: "):
                    last = line[4:].decode()
    finally:
        session.close()


def run_launchdarkly(src: Source, conns: int) -> None:
    import urllib3
    from ld_eventsource import SSEClient
    from ld_eventsource.config import ConnectStrategy, ErrorStrategy

    client = SSEClient(
        ConnectStrategy.http(
            src.url, urllib3_request_options={"timeout": urllib3.Timeout(connect=5, read=30)}
        ),
        initial_retry_delay=0,
        retry_delay_reset_threshold=0,
        error_strategy=ErrorStrategy.always_continue(),
    )
    count = 0
    try:
        for _ in client.events:  # one event per connection
            count += 1
            if count >= conns:
                break
    finally:
        client.close()


def run_streamvisor(src: Source, conns: int) -> None:
    from streamvisor import StreamSpec
    from streamvisor.api.facade import Streamvisor

    start = src.stats()["accepted"]
    sv = Streamvisor([StreamSpec(name="reconnect", url=src.url, read_timeout=30.0)])
    try:
        sv.start()
        _wait_for(src, start + conns)
    finally:
        sv.stop(timeout=10)


CONTENDERS: list[tuple[str, Callable[[Source, int], None]]] = [
    ("requests loop (floor)", run_floor),
    ("launchdarkly", run_launchdarkly),
    ("streamvisor", run_streamvisor),
]


def _gaps(conns: list[list[float | None]], first: int, count: int) -> list[float]:
    """Gaps in ms between consecutive connections ``first``..``first + count``."""
    out = []
    for i in range(first, min(first + count, len(conns) - 1)):
        closed, arrived = conns[i][1], conns[i + 1][0]
        if closed is not None and arrived is not None:
            out.append((arrived - closed) * 1000.0)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    n = args.samples
    print(f"reconnect: {n} gaps per contender per round, {args.rounds} rounds; {machine_note()}")
    gaps: dict[str, list[float]] = {name: [] for name, _ in CONTENDERS}
    errors: dict[str, str] = {}
    with Source("batches", count=n + 1000, per_batch=1) as src:
        for rnd in range(args.rounds):
            for name, fn in CONTENDERS:
                first = src.stats()["accepted"]
                try:
                    fn(src, n + 1)
                except Exception as exc:
                    errors[name] = f"{type(exc).__name__}: {exc}"
                    print(f"  round {rnd + 1} {name}: FAILED {errors[name]}", flush=True)
                time.sleep(0.2)  # let a last racing connection settle before the next one
                got = _gaps(src.stats()["conns"], first, n)
                gaps[name].extend(got)
                print(
                    f"  round {rnd + 1} {name}: {len(got)} gaps, p50 {percentile(got, 50):.2f} ms, "
                    f"p95 {percentile(got, 95):.2f} ms",
                    flush=True,
                )
    floor50 = percentile(gaps["requests loop (floor)"], 50)
    floor95 = percentile(gaps["requests loop (floor)"], 95)
    rows: list[list[Any]] = []
    for name, ms in gaps.items():
        p50, p95 = percentile(ms, 50), percentile(ms, 95)
        rows.append(
            [
                name,
                len(ms),
                f"{min(ms, default=float('nan')):.2f}",
                f"{p50:.2f}",
                f"{p95:.2f}",
                f"{percentile(ms, 99):.2f}",
                f"{max(ms, default=float('nan')):.2f}",
                ratio(p50, floor50),
                ratio(p95, floor95),
                errors.get(name, ""),
            ]
        )
    print()
    print(
        table(
            [
                "contender",
                "gaps",
                "min ms",
                "p50 ms",
                "p95 ms",
                "p99 ms",
                "max ms",
                "p50 vs floor",
                "p95 vs floor",
                "errors",
            ],
            rows,
        )
    )
    sv50 = percentile(gaps["streamvisor"], 50)
    verdict = "MET" if sv50 < TARGET_P50_MS else "MISSED"
    print(f"\nstreamvisor p50 {sv50:.2f} ms (target < {TARGET_P50_MS:g} ms): {verdict}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
