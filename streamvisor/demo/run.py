"""``streamvisor demo``: the whole product against a built-in flaky SSE source on 127.0.0.1.

No internet needed. The source drops connections, cuts events in half, replays events
after a resume and answers 503 + Retry-After once; streamvisor reconnects, resumes with
Last-Event-ID, drops the replays, and the closing summary checks every event the source
published against what was delivered (lost must be 0, duplicates delivered must be 0).
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from typing import Any

import pykka

from streamvisor.api.facade import Streamvisor
from streamvisor.daemon.logsetup import configure_logging
from streamvisor.demo.faults import DEMO_FAULTS
from streamvisor.demo.source import DemoSource
from streamvisor.policy.backoff import BackoffPolicy, RestartLimit
from streamvisor.spec import StreamSpec
from streamvisor.sse import Event

# Nearly every connection of the demo source ends in a fault within a few seconds.
_NAMES = ("ticker", "news", "orders", "alerts", "metrics", "chat", "builds", "trades")


class _Tally:
    """Ids delivered per stream, shared between the collector actor and the main thread."""

    def __init__(self) -> None:
        self.ids: dict[str, list[int]] = {}
        self.cond = threading.Condition()


class _Collector(pykka.ThreadingActor):
    """The demo's subscriber: prints events and keeps their ids per stream."""

    def __init__(self, tally: _Tally, quiet: bool) -> None:
        super().__init__()
        self.tally = tally
        self.quiet = quiet

    def on_receive(self, message: Any) -> None:
        if not isinstance(message, Event):
            return
        with self.tally.cond:
            self.tally.ids.setdefault(message.stream, []).append(int(message.id or 0))
            self.tally.cond.notify_all()
        if not self.quiet:
            data = message.data.replace("\n", " ")
            print(f"  {message.stream:<8} #{message.id:<5} {message.event}  {data}", flush=True)


class _RestartPrinter(logging.Handler):
    """Shows the supervisor's reconnect decisions inline with the events."""

    def emit(self, record: logging.LogRecord) -> None:
        print(f"  ~ {record.getMessage()}", flush=True)


def _streams(source: DemoSource, names: list[str]) -> list[StreamSpec]:
    return [
        StreamSpec(
            name=name,
            url=source.url(name),
            read_timeout=5.0,
            backoff=BackoffPolicy(initial=0.05, max=1.0, jitter=0.3, reset_after=5.0),
            # The demo source drops connections on purpose, many times a minute.
            max_restarts=RestartLimit(count=1000, within=60.0),
        )
        for name in names
    ]


def run_demo(args: argparse.Namespace) -> int:
    """Run the demo; 0 when nothing was lost or duplicated."""
    if args.daemon:
        from streamvisor.demo.daemon import run_demo_daemon

        return run_demo_daemon(args)
    configure_logging(args.log_level, "text")
    names = [
        _NAMES[i % len(_NAMES)] + ("" if i < len(_NAMES) else str(i)) for i in range(args.streams)
    ]
    source = DemoSource(names, rate=15.0, chaos=DEMO_FAULTS, seed=int(time.time()), heartbeat=1.0)
    printer = _RestartPrinter(logging.INFO)
    sup_log = logging.getLogger("streamvisor.actors.supervisor")
    if not args.quiet:
        sup_log.addHandler(printer)
        sup_log.setLevel(logging.INFO)
        sup_log.propagate = False
    state = _Tally()
    collector = _Collector.start(state, args.quiet)
    print(
        f"streamvisor demo: {len(names)} streams from a flaky local source, "
        f"{args.seconds:g}s (Ctrl-C to stop early)",
        flush=True,
    )
    interrupted = False
    try:
        source.start()
        sv = Streamvisor(_streams(source, names))
        sv.subscribe(collector)
        sv.start()
        try:
            time.sleep(args.seconds)  # the demo's run time, not a synchronisation
        except KeyboardInterrupt:
            interrupted = True
        published = {name: source.published(name) for name in names}
        deadline = time.monotonic() + 5.0
        with state.cond:
            state.cond.wait_for(
                lambda: all(len(set(state.ids.get(n, []))) >= published[n] for n in names),
                timeout=max(deadline - time.monotonic(), 0.0),
            )
        status = sv.status().to_dict()
        sv.stop(timeout=5.0)
    finally:
        sup_log.removeHandler(printer)
        sup_log.propagate = True
        collector.stop()
        source.stop()
    return _summary(names, published, state.ids, status, source.stats, interrupted)


def _summary(
    names: list[str],
    published: dict[str, int],
    ids: dict[str, list[int]],
    status: dict[str, Any],
    source_stats: dict[str, Any],
    interrupted: bool,
) -> int:
    print()
    header = f"{'stream':<10}{'published':>10}{'delivered':>10}{'dup dropped':>12}"
    header += f"{'reconnects':>11}{'lost':>6}{'dup delivered':>14}"
    print(header)
    ok = True
    for name in names:
        got = ids.get(name, [])
        want = set(range(1, published[name] + 1))
        seen = set(got)
        lost = len(want - seen)
        dups = len(got) - len(seen)
        in_order = got == sorted(got)
        info = status["streams"].get(name, {})
        ok = ok and lost == 0 and dups == 0 and in_order
        print(
            f"{name:<10}{published[name]:>10}{len(got):>10}{info.get('dedup_dropped', 0):>12}"
            f"{info.get('restarts', 0):>11}{lost:>6}{dups:>14}"
        )
    faults = {k: 0 for k in ("resets", "clean_closes", "cut_events", "replays", "unavailable")}
    for stats in source_stats.values():
        for key in faults:
            faults[key] += int(getattr(stats, key, 0))
    print(
        "source faults: "
        + ", ".join(f"{key.replace('_', ' ')} {value}" for key, value in faults.items())
    )
    if ok:
        print("every published event was delivered once, in order: lost = 0")
    else:
        print("MISMATCH: some events were lost, duplicated or reordered", file=sys.stderr)
    return 130 if interrupted else (0 if ok else 1)
