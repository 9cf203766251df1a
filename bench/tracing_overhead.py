"""Tracing's cost: connection attempts per second with tracing off and on.

Tracing hooks sit where attempts start and end, never on the per-event path; so the
measure is the attempt cycle: one stream whose (fake, in-memory) connection fails at
``open()`` at once, with a zero backoff, so the supervisor starts attempt after attempt
(each one a pykka actor and a thread). Contenders, interleaved over ``--rounds``:

* ``off``: ``Streamvisor(observer=None)``, the default (baseline);
* ``on``: an ``AttemptTracer`` on its own provider with a ``BatchSpanProcessor`` into an
  in-memory exporter (span creation, attributes, events, traceparent injection).

"Zero cost when off" is then: the off path runs three ``is not None`` tests per attempt; that
cost is timed with ``timeit`` and given as a share of one attempt.

    python bench/tracing_overhead.py [--attempts 1500] [--rounds 3]
"""

from __future__ import annotations

import argparse
import threading
import time
import timeit
from typing import Any

from benchlib import ensure_repo_on_path, machine_note, ratio, table

ensure_repo_on_path()

from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)

from streamvisor.api.facade import Streamvisor  # noqa: E402
from streamvisor.daemon.tracing import AttemptTracer  # noqa: E402
from streamvisor.errors import ConnectError  # noqa: E402
from streamvisor.policy.backoff import BackoffPolicy, RestartLimit  # noqa: E402
from streamvisor.spec import BreakerPolicy, StreamSpec  # noqa: E402


class _Refused:
    def open(self) -> None:
        raise ConnectError("refused (fake)")

    def read(self) -> bytes:
        return b""

    def interrupt(self) -> None:
        pass

    def close(self) -> None:
        pass


def attempts_per_second(attempts: int, tracing: bool) -> tuple[float, int]:
    done = threading.Event()
    count = 0

    def connect(spec: StreamSpec, last_event_id: str | None) -> Any:
        nonlocal count
        count += 1
        if count >= attempts:
            done.set()
        return _Refused()

    spec = StreamSpec(
        name="bench",
        url="http://127.0.0.1:9/",
        backoff=BackoffPolicy(initial=0.0, max=0.0, jitter=0.0),
        max_restarts=RestartLimit(count=0),
        breaker=BreakerPolicy(failures=0),
    )
    tracer = exporter = None
    if tracing:
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(exporter))
        tracer = AttemptTracer(provider.get_tracer("bench"), provider)
    sv = Streamvisor([spec], connect=connect, observer=tracer)
    started = time.perf_counter()
    sv.start()
    finished = done.wait(120)
    elapsed = time.perf_counter() - started
    sv.stop(timeout=10)
    spans = 0
    if tracer is not None and exporter is not None:
        tracer.shutdown()
        spans = len(exporter.get_finished_spans())
    if not finished:
        raise SystemExit("attempts did not finish within 120 s")
    return count / elapsed, spans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--attempts", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    best = {"off": 0.0, "on": 0.0}
    spans = 0
    for _ in range(args.rounds):
        for name in ("off", "on"):
            rate, exported = attempts_per_second(args.attempts, name == "on")
            best[name] = max(best[name], rate)
            spans = max(spans, exported)
    observer = None
    checks = timeit.timeit("observer is not None", globals={"observer": observer}, number=10**6)
    check_s = checks / 10**6 * 3  # three tests per attempt on the off path
    per_attempt_s = 1 / best["off"]
    rows = [
        ["off (baseline)", f"{best['off']:.0f}", f"{per_attempt_s * 1e6:.0f}", "1.00x"],
        ["on", f"{best['on']:.0f}", f"{1e6 / best['on']:.0f}", ratio(best["on"], best["off"])],
    ]
    print(table(["tracing", "attempts/s (best)", "µs per attempt", "vs off"], rows))
    print(
        f"spans exported per 'on' round: {spans}; off-path hook cost: "
        f"{check_s * 1e9:.0f} ns per attempt = {check_s / per_attempt_s:.5%} of an attempt"
    )
    print(machine_note())


if __name__ == "__main__":
    main()
