"""End-to-end throughput: N events of 256 B over loopback, streamvisor vs bare clients.

Contenders (each reads the same burst from a fast SSE server in another process):

* ``sseclient-py``: requests ``stream=True`` + ``sseclient.SSEClient(resp).events()`` (its
  README usage).
* ``launchdarkly``: ``ld_eventsource.SSEClient`` with ``ConnectStrategy.http``, no retry
  delay, reading ``client.events``.
* ``streamvisor actor``: the Python API; a pykka subscriber actor counts events (one Event
  per message).
* ``streamvisor sink``: the batched path; ``add_sink`` with a counting Sink (``max_wait=0``).
* ``streamvisor tail (CLI)``: ``streamvisor tail URL --max-events N --format jsonl``
  as a subprocess, stdout to /dev/null; its baseline ``python -c`` running the sseclient-py
  loop that prints JSON lines (both pay interpreter start-up).

bench/flow.py measures issue 8's targets (launchdarkly baselines, files, batch subscribers);
this script keeps the sseclient-py comparisons.

The clock runs from the request to the N-th event handled (for the CLI: process start to
exit). Rounds are interleaved (round-robin) to spread drift; the best of ``--rounds`` counts.

    python bench/e2e.py [--events 100000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from benchlib import ensure_repo_on_path, machine_note, ratio, table, threads
from sse_source import Source

ensure_repo_on_path()

TIMEOUT = 60.0


def run_sseclient(url: str, n: int) -> dict[str, Any]:
    import requests
    import sseclient

    t0 = time.perf_counter()
    resp = requests.get(url, stream=True, timeout=(5, 30))
    count = 0
    try:
        for _ in sseclient.SSEClient(resp).events():
            count += 1
            if count >= n:
                break
    finally:
        resp.close()
    return {"seconds": time.perf_counter() - t0, "events": count}


def run_launchdarkly(url: str, n: int) -> dict[str, Any]:
    import urllib3
    from ld_eventsource import SSEClient
    from ld_eventsource.config import ConnectStrategy, ErrorStrategy

    t0 = time.perf_counter()
    client = SSEClient(
        ConnectStrategy.http(
            url, urllib3_request_options={"timeout": urllib3.Timeout(connect=5, read=30)}
        ),
        initial_retry_delay=0,
        error_strategy=ErrorStrategy.always_fail(),
    )
    count = 0
    try:
        for _ in client.events:
            count += 1
            if count >= n:
                break
    finally:
        client.close()
    return {"seconds": time.perf_counter() - t0, "events": count}


def _streamvisor(url: str, n: int, *, sink: bool) -> dict[str, Any]:
    import pykka

    from streamvisor import Event, StreamSpec
    from streamvisor.api.facade import Streamvisor

    done = threading.Event()
    counted = [0]

    class Counter(pykka.ThreadingActor):
        def on_receive(self, message: Any) -> Any:
            if isinstance(message, Event):
                counted[0] += 1
                if counted[0] >= n:
                    done.set()
            return None

    class CountingSink:
        name = "count"
        max_batch = 2048
        max_wait = 0.0

        def write(self, events: Any) -> None:
            counted[0] += len(events)
            if counted[0] >= n:
                done.set()

        def flush(self) -> None:
            pass

        def close(self) -> None:
            pass

    spec = StreamSpec(name="bench", url=url, read_timeout=30.0)
    sv = Streamvisor([spec])
    ref = None
    if sink:
        sub = sv.add_sink(CountingSink(), buffer=n)
    else:
        ref = Counter.start()
        sub = sv.subscribe(ref, buffer=n)  # big enough that nothing is dropped
    t0 = time.perf_counter()
    dropped: Any = "?"
    try:
        sv.start()
        done.wait(TIMEOUT)
        elapsed = time.perf_counter() - t0
        try:
            dropped = sv.status()["subscribers"].get(sub, {}).get("dropped", "?")
        except Exception as exc:  # status is informative only
            dropped = f"status failed: {exc}"
    finally:
        sv.stop(timeout=10)
        if ref is not None:
            ref.stop(timeout=5)
    return {"seconds": elapsed, "events": counted[0], "dropped": dropped}


def run_sv_actor(url: str, n: int) -> dict[str, Any]:
    return _streamvisor(url, n, sink=False)


def run_sv_sink(url: str, n: int) -> dict[str, Any]:
    return _streamvisor(url, n, sink=True)


_BASELINE_CLI = r"""
import datetime, json, sys, requests, sseclient
url, n = sys.argv[1], int(sys.argv[2])
resp = requests.get(url, stream=True, timeout=(5, 30))
out, utc, count = sys.stdout.write, datetime.timezone.utc, 0
for ev in sseclient.SSEClient(resp).events():
    out(json.dumps({"stream": "tail", "id": ev.id, "event": ev.event, "data": ev.data,
                    "last_event_id": ev.id,
                    "received_at": datetime.datetime.now(utc).isoformat()},
                   ensure_ascii=False, separators=(",", ":")) + "\n")
    count += 1
    if count >= n:
        break
resp.close()
sys.exit(0 if count >= n else 1)
"""


def _cli_command() -> list[str]:
    exe = os.path.join(os.path.dirname(sys.executable), "streamvisor")
    return [exe] if os.path.exists(exe) else [sys.executable, "-m", "streamvisor"]


def _run_process(args: list[str], n: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate(timeout=10)
        raise RuntimeError("timed out") from None
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"exit {proc.returncode}: {err.decode(errors='replace')[-300:]}")
    return {"seconds": elapsed, "events": n}


def run_cli(url: str, n: int) -> dict[str, Any]:
    return _run_process(
        [*_cli_command(), "tail", url, "--max-events", str(n), "--format", "jsonl"], n
    )


def run_cli_baseline(url: str, n: int) -> dict[str, Any]:
    return _run_process([sys.executable, "-c", _BASELINE_CLI, url, str(n)], n)


CONTENDERS: list[tuple[str, Callable[[str, int], dict[str, Any]]]] = [
    ("sseclient-py", run_sseclient),
    ("launchdarkly", run_launchdarkly),
    ("streamvisor actor", run_sv_actor),
    ("streamvisor sink", run_sv_sink),
    ("python -c sseclient JSONL (CLI baseline)", run_cli_baseline),
    ("streamvisor tail (CLI)", run_cli),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", help="comma-separated contender name prefixes")
    args = parser.parse_args(argv)
    n = args.events
    chosen = list(CONTENDERS)
    if args.only:
        prefixes = [p.strip() for p in args.only.split(",")]
        chosen = [c for c in CONTENDERS if any(c[0].startswith(p) for p in prefixes)]
    results: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in chosen}
    errors: dict[str, str] = {}
    print(f"e2e: {n} events x 256 B over loopback, {args.rounds} rounds; {machine_note()}")
    with Source("burst", count=n, hold=True) as src:
        for rnd in range(args.rounds):
            for name, fn in chosen:
                try:
                    res = fn(src.url, n)
                except Exception as exc:
                    errors[name] = f"{type(exc).__name__}: {exc}"
                    print(f"  round {rnd + 1} {name}: FAILED {errors[name]}", flush=True)
                    continue
                res["rate"] = res["events"] / res["seconds"] if res["events"] >= n else 0.0
                results[name].append(res)
                extra = f", dropped {res['dropped']}" if "dropped" in res else ""
                print(
                    f"  round {rnd + 1} {name}: {res['events']} events in "
                    f"{res['seconds']:.3f}s = {res['rate']:,.0f} ev/s{extra} "
                    f"(threads now {threads()})",
                    flush=True,
                )
        server = src.stats()
    best = {name: max((r["rate"] for r in rs), default=0.0) for name, rs in results.items()}
    base_sse = best.get("sseclient-py", 0.0)
    base_ld = best.get("launchdarkly", 0.0)
    base_cli = best.get("python -c sseclient JSONL (CLI baseline)", 0.0)
    rows = []
    for name, rs in results.items():
        rates = sorted(r["rate"] for r in rs)
        median = rates[len(rates) // 2] if rates else 0.0
        vs_cli = ratio(best[name], base_cli) if "CLI" in name else ""
        rows.append(
            [
                name,
                f"{best[name]:,.0f}",
                f"{median:,.0f}",
                ratio(best[name], base_sse),
                ratio(best[name], base_ld),
                vs_cli,
                errors.get(name, ""),
            ]
        )
    print()
    print(
        table(
            [
                "contender",
                "best ev/s",
                "median ev/s",
                "vs sseclient-py",
                "vs launchdarkly",
                "vs CLI baseline",
                "errors",
            ],
            rows,
        )
    )
    print(f"\nserver: {server['accepted']} connections, {server['served_events']:,} events sent")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
