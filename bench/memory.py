"""Memory and threads of 1000 idle supervised streams in one process, vs simpler shapes.

An ``idle`` SSE server in another process (asyncio, fd limit raised) answers every request
with the headers and one comment, then sends a heartbeat comment every few seconds. Each
shape runs in a fresh interpreter (``--child``) and reports VmRSS from ``/proc/self/status``:

* ``streamvisor``: ``Streamvisor`` with N ``StreamSpec``s; waits (with a deadline) until
  ``status()`` says every stream is ``connected``; reports RSS growth over the baseline (the
  process with everything imported, before building streamvisor), threads, time to connect
  all, and the time ``sv.stop()`` takes.
* ``naive threads``: N threads, each blocked reading one ``requests`` stream through
  ``sseclient.SSEClient``; stopped by shutting each socket down and joining.
* ``pykka actors only``: N idle ``ThreadingActor``s (no sockets), to separate the cost of a
  thread from the cost of a connection.

Each shape runs ``--repeat`` times (fresh processes); medians are reported, plus where the
growth sits per mapping kind (``/proc/self/smaps``: thread stacks, heap, arenas).
``--what-if`` adds streamvisor variants (a smaller read size, ``MALLOC_ARENA_MAX=2``, the
open response trimmed of its request, cookies and history) to show what would help.
``--profile`` adds a tracemalloc run of the streamvisor shape (slower; RSS not comparable)
and prints the allocation sites that grew the most, per stream.

    python bench/memory.py [--streams 1000] [--repeat 3] [--what-if] [--profile]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import resource
import socket
import subprocess
import sys
import threading
import time
from typing import Any

from benchlib import ensure_repo_on_path, machine_note, mib, rss, smaps_breakdown, table, threads
from sse_source import Source

ensure_repo_on_path()

TARGET_MIB = 40.0  # issue 8
DEADLINE = 90.0


def _raise_fd_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _settle() -> None:
    gc.collect()
    time.sleep(1.0)


def child_streamvisor(url: str, n: int, profile: bool, variant: str) -> dict[str, Any]:
    start_rss = rss()
    import pykka  # noqa: F401  (imported before the baseline on purpose)
    import requests

    import streamvisor.upstream.body
    import streamvisor.upstream.connection
    from streamvisor import StreamSpec
    from streamvisor.api.facade import Streamvisor
    from streamvisor.upstream.connector import shared_session

    connect = None
    parts = [p for p in variant.split("+") if p]
    for part in parts:
        if part.startswith("chunk="):  # what-if: another read size (module global)
            streamvisor.upstream.body.CHUNK_SIZE = int(part[6:])
        if part.startswith("quiet="):  # what-if: another idle read size (module global)
            streamvisor.upstream.body.QUIET_CHUNK_SIZE = int(part[6:])
    if "trim" in parts:  # what-if: drop what the open response no longer needs

        class TrimmedConnection(streamvisor.upstream.connection.Connection):
            def open(self) -> None:
                super().open()
                resp = self._response
                if resp is not None:
                    resp.request = resp.cookies = None  # type: ignore[assignment]
                    resp.history = []

        def connect(spec: Any, last_event_id: str | None) -> Any:
            session = shared_session()
            return TrimmedConnection(spec, last_event_id, session=session)

    if "shared" in parts:  # what-if: one requests.Session for all streams (now the default)
        shared = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_maxsize=n + 16)
        shared.mount("http://", adapter)

        def connect(spec: Any, last_event_id: str | None) -> Any:
            return streamvisor.upstream.connection.Connection(spec, last_event_id, session=shared)

    if profile:
        import tracemalloc

        tracemalloc.start(1)
    specs = [StreamSpec(name=f"s{i}", url=url, read_timeout=60.0) for i in range(n)]
    _settle()
    base_rss, base_threads, base_maps = rss(), threads(), smaps_breakdown()
    snap0 = tracemalloc.take_snapshot() if profile else None
    sv = Streamvisor(specs, connect=connect)
    t0 = time.perf_counter()
    sv.start()
    connected = 0
    states: dict[str, int] = {}
    try:
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            try:
                streams = sv.status()["streams"]
            except Exception:  # an ask timeout under load (tracemalloc): poll again
                continue
            states = {}
            for info in streams.values():
                states[info["state"]] = states.get(info["state"], 0) + 1
            connected = states.get("connected", 0)
            if connected >= n:
                break
            time.sleep(0.1)
        connect_s = time.perf_counter() - t0
        _settle()
        peak_rss, peak_threads, peak_maps = rss(), threads(), smaps_breakdown()
        top: list[tuple[str, float, int]] = []
        if profile:
            assert snap0 is not None
            snap1 = tracemalloc.take_snapshot()
            traced = sum(s.size_diff for s in snap1.compare_to(snap0, "filename"))
            for stat in snap1.compare_to(snap0, "filename")[:12]:
                frame = stat.traceback[0]
                where = f"{os.path.relpath(frame.filename, sys.prefix)} (whole file)"
                top.append((where, stat.size_diff / n, stat.count_diff))
            for stat in snap1.compare_to(snap0, "lineno")[:25]:
                frame = stat.traceback[0]
                where = f"{os.path.relpath(frame.filename, sys.prefix)}:{frame.lineno}"
                top.append((where, stat.size_diff / n, stat.count_diff))
            top.append(("TOTAL traced Python heap", traced / n, 0))
    finally:
        t1 = time.perf_counter()
        sv.stop(timeout=60)
        stop_s = time.perf_counter() - t1
    time.sleep(0.5)
    return {
        "start_rss": start_rss,
        "base_rss": base_rss,
        "peak_rss": peak_rss,
        "base_threads": base_threads,
        "peak_threads": peak_threads,
        "connected": connected,
        "states": states,
        "connect_s": connect_s,
        "stop_s": stop_s,
        "after_stop_threads": threads(),
        "after_stop_rss": rss(),
        "top": top,
        "maps": {k: peak_maps[k] - base_maps[k] for k in peak_maps},
    }


def _socket_of(resp: Any) -> socket.socket | None:
    raw = resp.raw
    sock = getattr(getattr(raw, "_connection", None), "sock", None)
    if sock is None:
        fp = getattr(getattr(raw, "_fp", None), "fp", None)
        sock = getattr(getattr(fp, "raw", None), "_sock", None)
    return sock if isinstance(sock, socket.socket) else None


def child_naive(url: str, n: int) -> dict[str, Any]:
    start_rss = rss()
    import requests
    import sseclient

    _settle()
    base_rss, base_threads, base_maps = rss(), threads(), smaps_breakdown()
    lock = threading.Lock()
    responses: list[Any] = []
    stop = threading.Event()

    def reader() -> None:
        try:
            resp = requests.get(url, stream=True, timeout=(10, 60))
        except requests.RequestException:
            return
        with lock:
            responses.append(resp)
        try:
            for _ in sseclient.SSEClient(resp).events():
                if stop.is_set():
                    break
        except Exception:
            pass  # the shutdown below ends reads with an error or EOF

    t0 = time.perf_counter()
    workers = [threading.Thread(target=reader, daemon=True) for _ in range(n)]
    for w in workers:
        w.start()
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline and len(responses) < n:
        time.sleep(0.05)
    connect_s = time.perf_counter() - t0
    connected = len(responses)
    _settle()
    peak_rss, peak_threads, peak_maps = rss(), threads(), smaps_breakdown()
    t1 = time.perf_counter()
    stop.set()
    with lock:
        for resp in responses:
            sock = _socket_of(resp)
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
    join_deadline = time.monotonic() + 30
    for w in workers:
        w.join(max(join_deadline - time.monotonic(), 0.01))
    for resp in responses:
        resp.close()
    stop_s = time.perf_counter() - t1
    return {
        "start_rss": start_rss,
        "base_rss": base_rss,
        "peak_rss": peak_rss,
        "base_threads": base_threads,
        "peak_threads": peak_threads,
        "connected": connected,
        "states": {},
        "connect_s": connect_s,
        "stop_s": stop_s,
        "after_stop_threads": threads(),
        "after_stop_rss": rss(),
        "top": [],
        "maps": {k: peak_maps[k] - base_maps[k] for k in peak_maps},
    }


def child_actors(n: int) -> dict[str, Any]:
    start_rss = rss()
    import pykka

    class Idle(pykka.ThreadingActor):
        def on_receive(self, message: Any) -> Any:
            return message

    _settle()
    base_rss, base_threads, base_maps = rss(), threads(), smaps_breakdown()
    t0 = time.perf_counter()
    refs = [Idle.start() for _ in range(n)]
    for ref in refs:
        ref.ask("ping", timeout=10)
    connect_s = time.perf_counter() - t0
    _settle()
    peak_rss, peak_threads, peak_maps = rss(), threads(), smaps_breakdown()
    t1 = time.perf_counter()
    for ref in refs:
        ref.stop(block=False)
    for ref in refs:
        ref.actor_stopped.wait(10)
    stop_s = time.perf_counter() - t1
    time.sleep(0.2)
    return {
        "start_rss": start_rss,
        "base_rss": base_rss,
        "peak_rss": peak_rss,
        "base_threads": base_threads,
        "peak_threads": peak_threads,
        "connected": n,
        "states": {},
        "connect_s": connect_s,
        "stop_s": stop_s,
        "after_stop_threads": threads(),
        "after_stop_rss": rss(),
        "top": [],
        "maps": {k: peak_maps[k] - base_maps[k] for k in peak_maps},
    }


def _child_main(args: argparse.Namespace) -> int:
    _raise_fd_limit()
    if args.child == "streamvisor":
        result = child_streamvisor(args.url, args.streams, args.profile, args.variant)
    elif args.child == "naive":
        result = child_naive(args.url, args.streams)
    else:
        result = child_actors(args.streams)
    print("RESULT " + json.dumps(result), flush=True)
    return 0


def _run_child(
    kind: str, url: str, n: int, profile: bool = False, variant: str = ""
) -> dict[str, Any]:
    args = [sys.executable, os.path.abspath(__file__), "--child", kind, "--url", url]
    args += ["--streams", str(n), "--variant", variant] + (["--profile"] if profile else [])
    env = dict(os.environ)
    for part in variant.split("+"):
        if part.startswith("arena="):  # what-if: fewer glibc malloc arenas for 1000 threads
            env["MALLOC_ARENA_MAX"] = part[6:]
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        out, err = proc.communicate(timeout=DEADLINE + 90)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate(timeout=10)
        raise RuntimeError(f"{kind}: timed out") from None
    for line in out.splitlines():
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line[7:])
            return result
    raise RuntimeError(f"{kind}: exit {proc.returncode}: {err[-500:]}")


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3, help="fresh processes per shape")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--child", choices=["streamvisor", "naive", "actors"])
    parser.add_argument("--url")
    parser.add_argument(
        "--variant",
        default="",
        help="what-ifs for the streamvisor shape, '+'-joined: chunk=BYTES, quiet=BYTES, shared, arena=N",
    )
    parser.add_argument(
        "--what-if",
        action="store_true",
        help="also run streamvisor with a smaller read size and/or MALLOC_ARENA_MAX=2",
    )
    args = parser.parse_args(argv)
    if args.child:
        return _child_main(args)
    n = args.streams
    print(
        f"memory: {n} idle streams per process, {args.repeat} fresh processes per shape; "
        f"{machine_note()}"
    )
    shapes = [
        ("streamvisor", "streamvisor", ""),
        ("naive threads (requests + sseclient-py)", "naive", ""),
        ("pykka actors only (no sockets)", "actors", ""),
    ]
    if args.what_if:
        shapes += [
            ("what-if: streamvisor, idle reads of 64 KiB (before)", "streamvisor", "quiet=65536"),
            ("what-if: streamvisor, MALLOC_ARENA_MAX=2", "streamvisor", "arena=2"),
            ("what-if: streamvisor, response trimmed", "streamvisor", "trim"),
            ("what-if: naive, MALLOC_ARENA_MAX=2", "naive", "arena=2"),
        ]
    results: dict[str, list[dict[str, Any]]] = {label: [] for label, _, _ in shapes}
    with Source("idle", heartbeat=5.0) as src:
        for rep in range(args.repeat):
            for label, kind, variant in shapes:
                try:
                    r = _run_child(kind, src.url, n, variant=variant)
                except RuntimeError as exc:
                    print(f"  {rep + 1} {label}: FAILED {exc}", flush=True)
                    continue
                results[label].append(r)
                print(
                    f"  {rep + 1} {label}: +{mib(r['peak_rss'] - r['base_rss'])} MiB, "
                    f"{r['peak_threads']} threads, {r['connected']}/{n} connected, "
                    f"connect {r['connect_s']:.2f}s, stop {r['stop_s']:.2f}s",
                    flush=True,
                )
        top: list[Any] = []
        if args.profile:
            top = _run_child("streamvisor", src.url, n, profile=True)["top"]
        server = src.stats()
    rows = []
    growth_of: dict[str, float] = {}
    for label, rs in results.items():
        if not rs:
            rows.append([label, "FAILED", "", "", "", "", "", "", ""])
            continue
        growths = [r["peak_rss"] - r["base_rss"] for r in rs]
        growth = growth_of[label] = _median(growths)
        r = rs[0]
        rows.append(
            [
                label,
                f"{min(x['connected'] for x in rs)}/{n}",
                mib(_median([x["base_rss"] for x in rs])),
                f"{mib(growth)} ({mib(min(growths))}-{mib(max(growths))})",
                f"{growth / n / 1024:.1f}",
                f"{r['base_threads']} -> {r['peak_threads']} -> {r['after_stop_threads']}",
                f"{_median([x['connect_s'] for x in rs]):.2f}",
                f"{_median([x['stop_s'] for x in rs]):.2f}",
            ]
        )
    print()
    print(
        table(
            [
                "shape",
                "connected",
                "baseline RSS MiB",
                "growth MiB median (min-max)",
                "KiB/stream",
                "threads (base -> up -> after stop)",
                "connect all s",
                "stop s",
            ],
            rows,
        )
    )
    kinds = list(next(iter(r for rs in results.values() for r in rs))["maps"])
    print("\nwhere the growth sits (median KiB per stream, from /proc/self/smaps)\n")
    print(
        table(
            ["shape", *kinds],
            [
                [label] + [f"{_median([r['maps'][k] for r in rs]) / n / 1024:.1f}" for k in kinds]
                for label, rs in results.items()
                if rs
            ],
        )
    )
    sv_runs = results.get("streamvisor")
    if sv_runs:
        growth = growth_of["streamvisor"] / (1 << 20)
        target = TARGET_MIB * n / 1000
        naive = growth_of.get("naive threads (requests + sseclient-py)")
        vs = f"; {growth * (1 << 20) / naive:.2f}x naive threads" if naive else ""
        verdict = "MET" if growth <= target else "MISSED"
        first = sv_runs[0]
        print(
            f"\nstreamvisor growth (median) {growth:.1f} MiB for {n} streams (target <= "
            f"{target:.0f} MiB): {verdict}{vs}; importing streamvisor+requests+pykka costs "
            f"{mib(first['base_rss'] - first['start_rss'])} MiB before the baseline; states "
            f"at the end {first['states']}"
        )
    if top:
        print("\ntracemalloc: Python heap growth per stream, by file then by line\n")
        print(
            table(
                ["site", "bytes/stream", "blocks"],
                [[w, f"{b:,.0f}", c] for w, b, c in top],
            )
        )
    print(f"\nserver: {server['accepted']} connections accepted, {server['open']} open at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
