"""Issue 14's targets: ``connect()`` and ``aconnect()`` against the loops people write today.

Same loopback source as flow.py (bench/sse_source.py in another process, ``burst`` mode: 256 B
events as fast as the socket takes them), every contender and its baseline in the same run,
rounds interleaved and rotated, best and median ev/s, spread, CPU µs per event. Every run
checks that ids ``1..N`` arrived once each, in order (bench/iter_contenders.py). Sections
(``--only sync,async``):

1. ``sync``: ``for event in streamvisor.connect(url)`` vs a bare launchdarkly-eventsource
   loop (flow.py's counting baseline). Target >= 1.0x. launchdarkly fed by ``read1``,
   ``add_listener`` (the stream thread alone, no hop to the loop's thread) and ``connect()``
   without dedup (``dedup_window=0``: what the replay check costs) are shown.
2. ``async``: ``async for event in streamvisor.aconnect(url)`` vs httpx-sse's
   ``aiter_sse()`` (its README usage), both under ``asyncio.run``. Target >= 1.0x. With
   uvloop installed, both again under ``uvloop.run`` (info).

    python bench/iterators.py [--events 200000] [--rounds 5] [--only sync,async] [--src DIR]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import iter_contenders as it
from benchlib import compile_bytecode, ensure_repo_on_path, machine_note, table, use_source
from flowlib import load, run_rounds, throughput_table
from sse_source import Source

ensure_repo_on_path()

SECTIONS = ("sync", "async")


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


def section_sync(n: int, rounds: int) -> list[list[str]]:
    print(f"\n## sync: {n:,} events to a `for` loop in this process\n", flush=True)
    with Source("burst", count=n, hold=True) as src:
        url = src.url
        contenders: list[tuple[str, Callable[[], Any]]] = [
            ("launchdarkly loop (baseline)", lambda: it.run_ld(url, n)),
            ("launchdarkly loop, read1", lambda: it.run_ld_read1(url, n)),
            ("for event in connect(url)", lambda: it.run_connect(url, n)),
            ("add_listener (stream thread only)", lambda: it.run_listener(url, n)),
            ("connect(url, dedup_window=0)", lambda: it.run_connect(url, n, dedup_window=0)),
        ]
        results = run_rounds(contenders, rounds, _show(n))
    print()
    return throughput_table(
        n, results, "launchdarkly loop (baseline)", {"for event in connect(url)": 1.0}
    )


def section_async(n: int, rounds: int) -> list[list[str]]:
    print(f"\n## async: {n:,} events to an `async for` loop under asyncio.run\n", flush=True)
    with Source("burst", count=n, hold=True) as src:
        url = src.url
        contenders: list[tuple[str, Callable[[], Any]]] = [
            ("httpx-sse aiter_sse() (baseline)", lambda: it.run_httpx_sse(url, n)),
            ("async for event in aconnect(url)", lambda: it.run_aconnect(url, n)),
        ]
        if importlib.util.find_spec("uvloop") is not None:
            contenders += [
                ("httpx-sse aiter_sse(), uvloop", lambda: it.run_httpx_sse(url, n, uvloop=True)),
                ("aconnect(url), uvloop", lambda: it.run_aconnect(url, n, uvloop=True)),
            ]
        results = run_rounds(contenders, rounds, _show(n))
    print()
    return throughput_table(
        n, results, "httpx-sse aiter_sse() (baseline)", {"async for event in aconnect(url)": 1.0}
    )


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
    print(f"\n## summary ({time.monotonic() - started:.0f}s; load at the end {load()})\n")
    print(table(["target", "measured", "verdict", "lost"], summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
