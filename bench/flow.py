"""Issue 8's targets, side by side in one run, as ratios against baselines run alongside.

Same loopback source (bench/sse_source.py, another process), 256 B events sent as fast as
the socket takes them. Sections (``--only cli,api,latency,memory``):

1. ``cli``: N events into a JSONL file, each a fresh process. ``streamvisor tail URL >
   file`` and ``streamvisor run`` with one ``file`` sink (defaults, and ``flush_interval:
   0``) vs ``bench/ld_jsonl.py``, a bare launchdarkly loop writing the same JSON lines with
   ``json.dumps``. Target >= 1.0x.
2. ``api``: N events to user code in this process. ``subscribe(ref, batch=True)`` (target
   >= 1.0x) and the per-event ``subscribe(ref)`` (>= 0.5x) vs a bare launchdarkly loop
   that counts; ``add_listener`` and launchdarkly fed by ``read1`` are shown for reference.
3. ``latency``: send-to-user-code at ``--rate`` ev/s, p50 and p99, vs launchdarkly
   (target <= 1.3x). launchdarkly reads 10 kB at a time (``resp.stream(10000)``), which
   holds events back at low rates; ``launchdarkly read1`` is the same parser fed like
   streamvisor, the fair baseline for latency.
4. ``memory``: 1,000 idle connected streams, RSS growth over the same process before
   ``start()`` (bench/memory.py) and a daemon's over a 1-stream daemon
   (bench/daemon_idle.py). Target <= 40 MiB.

Every run also checks that no event was lost (ids in the file, counts, ``dropped``).
Rounds are interleaved and rotated; best and median are reported with the spread
((max - min) / median) as the noise. The machine's load average is printed.

    python bench/flow.py [--events 200000] [--rounds 3] [--only cli,api,latency,memory]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cli_contenders as cli
import contenders as api
from benchlib import (
    compile_bytecode,
    ensure_repo_on_path,
    machine_note,
    percentile,
    ratio,
    table,
    use_source,
)
from flowlib import FAILURES, load, run_rounds, throughput_table
from sse_source import Source, parse_stamp

ensure_repo_on_path()

SECTIONS = ("cli", "api", "latency", "memory")
TARGET_MIB = 40.0
CHUNKED = False  # --chunked: the burst source sends one HTTP chunk per event


def section_cli(n: int, rounds: int) -> list[list[str]]:
    print(f"\n## cli: {n:,} events into a JSONL file, one fresh process per run\n", flush=True)
    startup = {
        "python + ld_eventsource, json imported": [
            sys.executable,
            "-c",
            "import ld_eventsource, json, datetime",
        ],
        "streamvisor --help": [*cli.cli_command(), "--help"],
    }
    with (
        Source("burst", count=n, hold=True, chunked=CHUNKED) as src,
        tempfile.TemporaryDirectory() as tmp,
    ):
        folder = Path(tmp)
        contenders: list[tuple[str, Callable[[], Any]]] = [
            ("launchdarkly JSONL loop (baseline)", lambda: cli.run_ld_jsonl(src.url, n, folder)),
            ("streamvisor tail > file", lambda: cli.run_tail(src.url, n, folder)),
            ("streamvisor run, file sink", lambda: cli.run_daemon(src.url, n, folder)),
            (
                "streamvisor run, file sink, flush_interval 0",
                lambda: cli.run_daemon(src.url, n, folder, 0.0),
            ),
        ]
        results = run_rounds(
            contenders,
            rounds,
            lambda r: (
                f"{r.seconds:.2f}s = {n / r.seconds:,.0f} ev/s, lines {r.lines}, "
                f"lost {r.lost}, dup {r.duplicates} (load {load()})"
            ),
        )
        starts = {k: min(cli.startup_seconds(a) for _ in range(3)) for k, a in startup.items()}
    print()
    summary = throughput_table(
        n,
        results,
        "launchdarkly JSONL loop (baseline)",
        {"streamvisor tail > file": 1.0, "streamvisor run, file sink": 1.0},
    )
    print(
        "\nstart-up alone (best of 3, s): " + ", ".join(f"{k} {v:.3f}" for k, v in starts.items())
    )
    return summary


def section_api(n: int, rounds: int) -> list[list[str]]:
    print(f"\n## api: {n:,} events to user code in this process\n", flush=True)
    with Source("burst", count=n, hold=True, chunked=CHUNKED) as src:
        url = src.url
        contenders: list[tuple[str, Callable[[], Any]]] = [
            ("launchdarkly loop (baseline)", lambda: api.run_ld(url, n)),
            ("launchdarkly loop, read1", lambda: api.run_ld_read1(url, n)),
            ("subscribe(batch=True)", lambda: api.run_sv_batch(url, n)),
            ("subscribe() per event", lambda: api.run_sv_actor(url, n)),
            ("add_listener (stream thread only)", lambda: api.run_sv_listener(url, n)),
        ]
        results = run_rounds(
            contenders,
            rounds,
            lambda r: (
                f"{r.events} events in {r.seconds:.3f}s = {r.events / r.seconds:,.0f} "
                f"ev/s, last id {r.last_id}, dropped {r.dropped} (load {load()})"
            ),
        )
        for rs in results.values():  # a run that did not reach n is not a rate
            for r in rs:
                if r.events < n or r.last_id != str(n):
                    r.seconds = float("inf")
    print()
    return throughput_table(
        n,
        results,
        "launchdarkly loop (baseline)",
        {"subscribe(batch=True)": 1.0, "subscribe() per event": 0.5},
    )


def section_latency(rate: float, seconds: float, rounds: int) -> list[list[str]]:
    n = int(rate * seconds)
    print(
        f"\n## latency: {rate:g} ev/s for {seconds:g}s ({n} events) x {rounds} rounds\n", flush=True
    )
    # 64 more events than are read: launchdarkly's 10 kB reads would otherwise hold the last
    # partial read until the read timeout (the source goes quiet after its count).
    with Source("paced", count=n + 64, rate=rate, hold=True) as src:
        url = src.url
        contenders: list[tuple[str, Callable[[], Any]]] = [
            ("launchdarkly (baseline)", lambda: api.run_ld(url, n, stamp=True)),
            ("launchdarkly, read1", lambda: api.run_ld_read1(url, n, stamp=True)),
            ("subscribe() per event", lambda: api.run_sv_actor(url, n, stamp=True)),
            ("subscribe(batch=True)", lambda: api.run_sv_batch(url, n, stamp=True)),
            ("add_listener (no thread hop)", lambda: api.run_sv_listener(url, n, stamp=True)),
        ]

        def show(r: api.Run) -> str:
            ms = [(t - parse_stamp(d)) * 1000 for t, d in r.samples]
            return (
                f"{len(ms)} events, p50 {percentile(ms, 50):.2f} ms, "
                f"p99 {percentile(ms, 99):.2f} ms (load {load()})"
            )

        results = run_rounds(contenders, rounds, show)
    lat = {
        name: [(t - parse_stamp(d)) * 1000 for r in rs for t, d in r.samples]
        for name, rs in results.items()
    }
    p = {name: (percentile(ms, 50), percentile(ms, 99)) for name, ms in lat.items()}
    per_round = {  # p50 and p99 of each round: the noise, and a steadier p99 (the median)
        name: [
            (percentile(ms, 50), percentile(ms, 99))
            for ms in ([(t - parse_stamp(d)) * 1000 for t, d in r.samples] for r in rs)
        ]
        for name, rs in results.items()
    }
    med99 = {
        k: statistics.median([x[1] for x in v]) if v else float("nan") for k, v in per_round.items()
    }
    ld, ld1 = p["launchdarkly (baseline)"], p["launchdarkly, read1"]
    rows, summary = [], []
    for name, ms in lat.items():
        p50, p99 = p[name]
        missing = n * len(results[name]) - len(ms) + sum(r.dropped for r in results[name])
        missing += n * FAILURES.get(name, 0)
        p50s = [x[0] for x in per_round[name]]
        p99s = [x[1] for x in per_round[name]]
        rows.append(
            [
                name,
                len(ms),
                f"{p50:.2f}",
                f"{percentile(ms, 95):.2f}",
                f"{p99:.2f}",
                f"{max(ms, default=float('nan')):.2f}",
                " / ".join(f"{x:.2f}" for x in p50s),
                " / ".join(f"{x:.1f}" for x in p99s),
                f"{ratio(p50, ld[0])} / {ratio(p99, ld[1])}",
                f"{ratio(p50, ld1[0])} / {ratio(p99, ld1[1])}",
                ratio(med99[name], med99["launchdarkly, read1"]),
                missing,
            ]
        )
        if name.startswith("subscribe"):
            ok = p50 <= 1.3 * ld[0] and p99 <= 1.3 * ld[1] and missing == 0
            fair = p50 <= 1.3 * ld1[0] and p99 <= 1.3 * ld1[1]
            summary.append(
                [
                    f"latency, {name}",
                    f"p50/p99 {ratio(p50, ld[0])}/{ratio(p99, ld[1])} vs launchdarkly; "
                    f"{ratio(p50, ld1[0])}/{ratio(p99, ld1[1])} vs its read1 variant "
                    f"(median-round p99 {ratio(med99[name], med99['launchdarkly, read1'])})",
                    f"{'MET' if ok else 'MISSED'} (<= 1.3x); vs read1: "
                    f"{'met' if fair else 'missed'}",
                    str(missing),
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
                "p50 per round",
                "p99 per round",
                "p50/p99 vs launchdarkly",
                "p50/p99 vs read1",
                "median-round p99 vs read1",
                "missing",
            ],
            rows,
        )
    )
    return summary


def section_memory(streams: int, repeat: int) -> list[list[str]]:
    import daemon_idle
    import memory

    print(
        f"\n## memory: {streams} idle connected streams, {repeat} fresh processes each\n",
        flush=True,
    )
    inproc: list[dict[str, Any]] = []
    daemon: list[tuple[dict[str, float], dict[str, float]]] = []
    server = subprocess.Popen(
        [sys.executable, "-c", daemon_idle._SERVER], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        with Source("idle", heartbeat=5.0) as src, tempfile.TemporaryDirectory() as tmp:
            for rep in range(repeat):
                r = memory._run_child("streamvisor", src.url, streams)
                inproc.append(r)
                print(
                    f"  {rep + 1} in-process: +{(r['peak_rss'] - r['base_rss']) / 2**20:.1f} "
                    f"MiB over the process before start() ({r['connected']}/{streams} "
                    f"connected; load {load()})",
                    flush=True,
                )
                deadline = time.monotonic() + 150
                base = daemon_idle._run_daemon(Path(tmp), port, 1, deadline)
                full = daemon_idle._run_daemon(Path(tmp), port, streams, deadline)
                daemon.append((base, full))
                print(
                    f"  {rep + 1} daemon: +{full['rss'] - base['rss']:.1f} MiB over a 1-stream "
                    f"daemon ({full['connected']:.0f}/{streams} connected; load {load()})",
                    flush=True,
                )
    finally:
        server.kill()
        server.wait(timeout=10)
    grow_in = [(r["peak_rss"] - r["base_rss"]) / 2**20 for r in inproc]
    grow_bare = [(r["peak_rss"] - r["start_rss"]) / 2**20 for r in inproc]
    grow_d = [f["rss"] - b["rss"] for b, f in daemon]
    target = TARGET_MIB * streams / 1000
    rows, summary = [], []
    for label, values, connected in (
        (
            "in-process, over the process before start()",
            grow_in,
            min((r["connected"] for r in inproc), default=0),
        ),
        (
            "in-process, over a bare interpreter (info)",
            grow_bare,
            min((r["connected"] for r in inproc), default=0),
        ),
        (
            "daemon, over a 1-stream daemon",
            grow_d,
            min((int(f["connected"]) for _, f in daemon), default=0),
        ),
    ):
        if not values:
            continue
        med = statistics.median(values)
        verdict = (
            ""
            if "info" in label
            else (
                f"{'MET' if med <= target and connected == streams else 'MISSED'} (<= {target:g})"
            )
        )
        rows.append(
            [
                label,
                f"{med:.1f}",
                f"{min(values):.1f}-{max(values):.1f}",
                f"{med * 1024 / streams:.1f}",
                f"{connected}/{streams}",
                verdict,
            ]
        )
        if verdict:
            summary.append(
                [
                    f"memory, {label}",
                    f"{med:.1f} MiB median",
                    verdict,
                    str(streams - connected) + " not connected",
                ]
            )
    print()
    print(
        table(["shape", "growth MiB median", "min-max", "KiB/stream", "connected", "target"], rows)
    )
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--seconds", type=float, default=2.0, help="latency: seconds per run")
    parser.add_argument("--latency-rounds", type=int, default=3)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--memory-repeat", type=int, default=2)
    parser.add_argument(
        "--src", metavar="DIR", help="measure the streamvisor/ in DIR (e.g. a git archive)"
    )
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"comma-separated sections: {', '.join(SECTIONS)}",
    )
    parser.add_argument(
        "--chunked",
        action="store_true",
        help="cli, api: a chunked body, one HTTP chunk per event (as web frameworks send)",
    )
    args = parser.parse_args(argv)
    global CHUNKED
    CHUNKED = args.chunked
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(only) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    if args.src:
        use_source(args.src)
    started = time.monotonic()
    compile_bytecode()
    import streamvisor

    where = os.path.dirname(os.path.dirname(os.path.abspath(streamvisor.__file__)))
    body = "chunked, one chunk per event" if CHUNKED else "read-until-close"
    print(
        f"flow: issue 8 targets; streamvisor from {where}; body {body}; {machine_note()}; "
        f"load {load()}"
    )
    summary: list[list[str]] = []
    if "cli" in only:
        summary += section_cli(args.events, args.rounds)
    if "api" in only:
        summary += section_api(args.events, args.rounds)
    if "latency" in only:
        summary += section_latency(args.rate, args.seconds, args.latency_rounds)
    if "memory" in only:
        summary += section_memory(args.streams, args.memory_repeat)
    print(f"\n## summary ({time.monotonic() - started:.0f}s; load at the end {load()})\n")
    print(table(["target", "measured", "verdict", "lost"], summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
