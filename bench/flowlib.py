"""Helpers of bench/flow.py: interleaved rounds, rate statistics and the throughput table."""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable
from typing import Any

from benchlib import ratio, table

FAILURES: dict[str, int] = {}  # contender name -> failed runs (they count against targets)


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def run_rounds(
    contenders: list[tuple[str, Callable[[], Any]]], rounds: int, show: Callable[[Any], str]
) -> dict[str, list[Any]]:
    """Run each contender once per round, rotating the order; results by name."""
    results: dict[str, list[Any]] = {name: [] for name, _ in contenders}
    FAILURES.clear()  # per section: read by the section's table right after
    for rnd in range(rounds):
        k = rnd % len(contenders)
        for name, fn in contenders[k:] + contenders[:k]:
            try:
                res = fn()
            except Exception as exc:
                print(f"  round {rnd + 1} {name}: FAILED {type(exc).__name__}: {exc}", flush=True)
                FAILURES[name] = FAILURES.get(name, 0) + 1
                continue
            results[name].append(res)
            print(f"  round {rnd + 1} {name}: {show(res)}", flush=True)
    return results


def rate_stats(rates: list[float]) -> tuple[float, float, str]:
    """best, median and spread of per-round rates."""
    if not rates:
        return 0.0, 0.0, "n/a"
    med = statistics.median(rates)
    spread = f"{(max(rates) - min(rates)) / med * 100:.0f}%" if med else "n/a"
    return max(rates), med, spread


def throughput_table(
    n: int, results: dict[str, list[Any]], base: str, targets: dict[str, float]
) -> list[list[str]]:
    """Rows: ev/s best/median, spread, ratios vs ``base``, CPU µs/event, lost, verdict.

    The verdict uses the best-of ratio (each contender's best quiet moment); the median
    ratio and the CPU ratio (base CPU per event / contender CPU per event; steadier on a
    loaded machine) are there to judge it.
    """
    stats = {k: rate_stats([n / r.seconds for r in rs]) for k, rs in results.items()}
    cpu = {k: min((r.cpu for r in rs), default=0.0) / n * 1e6 for k, rs in results.items()}
    base_best, base_med, _ = stats.get(base, (0.0, 0.0, ""))
    rows = []
    summary = []
    for name, rs in results.items():
        best, med, spread = stats[name]
        lost = sum(getattr(r, "lost", 0) + getattr(r, "dropped", 0) for r in rs)
        lost += sum(n - r.events for r in rs if hasattr(r, "events"))
        lost += n * FAILURES.get(name, 0)
        r_best, r_med = ratio(best, base_best), ratio(med, base_med)
        r_cpu = ratio(cpu.get(base, 0.0), cpu[name]) if cpu[name] else "n/a"
        target = targets.get(name)
        verdict = ""
        if target is not None and base_best:
            verdict = "MET" if best / base_best >= target and lost == 0 else "MISSED"
            verdict += f" (>= {target:.1f}x)"
            summary.append(
                [name, f"{r_best} best, {r_med} median, {r_cpu} CPU", verdict, str(lost)]
            )
        rows.append(
            [
                name,
                f"{best:,.0f}",
                f"{med:,.0f}",
                spread,
                r_best,
                r_med,
                f"{cpu[name]:.2f}",
                r_cpu,
                str(lost),
                verdict,
            ]
        )
    print(
        table(
            [
                "contender",
                "best ev/s",
                "median ev/s",
                "spread",
                "best vs base",
                "median vs base",
                "CPU µs/event",
                "CPU vs base",
                "lost",
                "target",
            ],
            rows,
        )
    )
    return summary
