"""Issue 14's targets: ``connect()`` and ``aconnect()`` against the loops people write today.

Same loopback source as flow.py (bench/sse_source.py in another process, ``burst`` mode: 256 B
events as fast as the socket takes them), every contender and its baseline in the same run,
each contender warmed up once, rounds interleaved and rotated, best and median ev/s, spread, CPU µs per event. Every run
checks that ids ``1..N`` arrived once each, in order (bench/iter_contenders.py). Sections
(``--only sync,async,handoff``):

1. ``sync``: ``for event in streamvisor.connect(url)`` vs a bare launchdarkly-eventsource
   loop (flow.py's counting baseline). Target >= 1.0x. launchdarkly fed by ``read1``,
   ``add_listener`` (the stream thread alone, no hop to the loop's thread) and ``connect()``
   without dedup (``dedup_window=0``: what the replay check costs) are shown.
2. ``async``: ``async for event in streamvisor.aconnect(url)`` vs httpx-sse's
   ``aiter_sse()`` (its README usage), both under ``asyncio.run``. Target >= 1.0x. With
   uvloop installed, both again under ``uvloop.run`` (info).
3. ``handoff``: the iterators' own share, without socket or decoder: a thread offers reads
   of 1,024 events to the outlet, the loop takes them; CPU µs per event of the loop's
   thread, best and median of ``--rounds`` (compare versions with ``--src``).

    python bench/iterators.py [--events 200000] [--rounds 5] [--only sync,async,handoff] [--src DIR]
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import iter_contenders as it
from benchlib import compile_bytecode, ensure_repo_on_path, machine_note, table, use_source
from flowlib import load, run_rounds, throughput_table
from sse_source import Source

ensure_repo_on_path()

SECTIONS = ("sync", "async", "handoff")
WARM_UP = 2000  # events per warm-up run


def _show(n: int) -> Callable[[Any], str]:
    def show(r: it.IterRun) -> str:
        wrong = ""
        if r.lost:
            wrong = f" WRONG: missing {r.missing}, dup {r.duplicates}, order {r.misordered}"
        return (
            f"{r.events} events in {r.seconds:.3f}s = {n / r.seconds:,.0f} ev/s, "
            f"CPU {r.cpu / n * 1e6:.2f} µs/ev, last id {r.last_id}{wrong} (load {load()})"
        )

    return show


Contenders = list[tuple[str, Callable[[str, int], it.IterRun]]]


def _measure(n: int, rounds: int, url: str, contenders: Contenders) -> dict[str, list[Any]]:
    """Warm each contender up once (imports, first connection; not counted), then run the
    interleaved, rotated rounds."""
    for name, fn in contenders:
        try:
            fn(url, min(n, WARM_UP))
        except Exception as exc:
            print(f"  warm-up {name}: FAILED {type(exc).__name__}: {exc}", flush=True)
    bound = [(name, functools.partial(fn, url, n)) for name, fn in contenders]
    return run_rounds(bound, rounds, _show(n))


def section_sync(n: int, rounds: int) -> list[list[str]]:
    print(f"\n## sync: {n:,} events to a `for` loop in this process\n", flush=True)
    contenders: Contenders = [
        ("launchdarkly loop (baseline)", it.run_ld),
        ("launchdarkly loop, read1", it.run_ld_read1),
        ("for event in connect(url)", it.run_connect),
        ("add_listener (stream thread only)", it.run_listener),
        ("connect(url, dedup_window=0)", functools.partial(it.run_connect, dedup_window=0)),
    ]
    with Source("burst", count=n, hold=True) as src:
        results = _measure(n, rounds, src.url, contenders)
    print()
    return throughput_table(
        n, results, "launchdarkly loop (baseline)", {"for event in connect(url)": 1.0}
    )


def section_async(n: int, rounds: int) -> list[list[str]]:
    print(f"\n## async: {n:,} events to an `async for` loop under asyncio.run\n", flush=True)
    contenders: Contenders = [
        ("httpx-sse aiter_sse() (baseline)", it.run_httpx_sse),
        ("async for event in aconnect(url)", it.run_aconnect),
    ]
    if importlib.util.find_spec("uvloop") is not None:
        contenders += [
            ("httpx-sse aiter_sse(), uvloop", functools.partial(it.run_httpx_sse, uvloop=True)),
            ("aconnect(url), uvloop", functools.partial(it.run_aconnect, uvloop=True)),
        ]
    with Source("burst", count=n, hold=True) as src:
        results = _measure(n, rounds, src.url, contenders)
    print()
    return throughput_table(
        n, results, "httpx-sse aiter_sse() (baseline)", {"async for event in aconnect(url)": 1.0}
    )


def section_handoff(n: int, rounds: int) -> list[list[str]]:
    print(f"\n## handoff: {n:,} events from a feeding thread, loop's thread CPU\n", flush=True)
    rows = []
    for name, fn in (("for event in stream", it.handoff_sync), ("async for", it.handoff_async)):
        fn(min(n, WARM_UP))
        values = [fn(n) for _ in range(rounds)]
        rows.append([name, f"{min(values):.3f}", f"{statistics.median(values):.3f}"])
    print(table(["loop", "best CPU µs/event", "median"], rows))
    return []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--src", metavar="DIR", help="measure the streamvisor/ in DIR (e.g. a git archive)"
    )
    parser.add_argument(
        "--only", default=",".join(SECTIONS), help=f"comma-separated: {', '.join(SECTIONS)}"
    )
    args = parser.parse_args(argv)
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
    print(f"iterators: issue 14 targets; streamvisor from {where}; {machine_note()}; load {load()}")
    summary: list[list[str]] = []
    if "sync" in only:
        summary += section_sync(args.events, args.rounds)
    if "async" in only:
        summary += section_async(args.events, args.rounds)
    if "handoff" in only:
        summary += section_handoff(args.events, args.rounds)
    print(f"\n## summary ({time.monotonic() - started:.0f}s; load at the end {load()})\n")
    if summary:
        print(table(["target", "measured", "verdict", "lost"], summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
