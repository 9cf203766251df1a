"""``streamvisor top``: the cost of one frame with 50, 1,000 and 5,000 streams.

One frame is what ``top`` does each second: update the rates from a ``/streams`` snapshot,
build every row (rates, sparklines, filter), and draw the visible slice with rich into a
terminal of 50 lines x 160 columns (written to a buffer, not a tty). The JSON parse of the
snapshot is timed separately (it is the same for any view). Baseline: 50 streams, just more
than fit on the screen; the target is a 1,000-stream frame well under the 1 s refresh. Only
the rows that fit are drawn, so what grows with the stream count is the row model alone.

    python bench/top_render.py [--frames 30]
"""

from __future__ import annotations

import argparse
import io
import json
import random
import time
from typing import Any

from benchlib import ensure_repo_on_path, machine_note, percentile, ratio, table

ensure_repo_on_path()

from rich.console import Console  # noqa: E402

from streamvisor.views.controls import TopState  # noqa: E402
from streamvisor.views.model import RateTracker, build_rows  # noqa: E402
from streamvisor.views.top import CHROME_LINES, render  # noqa: E402

HEIGHT, WIDTH = 50, 160


def snapshot(n: int, tick: int, rng: random.Random) -> dict[str, Any]:
    now = 1.8e9 + tick
    streams = {}
    for i in range(n):
        streams[f"stream-{i:05d}"] = {
            "state": rng.choice(["connected"] * 8 + ["reconnecting", "failed"]),
            "url": f"https://upstream.example/{i}",
            "events": tick * 20 + i,
            "last_event_id": str(tick * 20 + i),
            "last_event_at": now - rng.random() * 3,
            "restarts": i % 7,
            "last_failure": rng.choice([None, "retry", "rate_limited"]),
            "breaker": "closed",
            "checkpoint_at": now - 1,
            "subscribers": {"archive": {"queue_depth": i % 13, "dropped": 0}},
        }
    return {"streams": streams, "subscribers": {}}


def frame_times(n: int, frames: int) -> tuple[list[float], list[float], int]:
    rng = random.Random(n)
    bodies = [json.dumps(snapshot(n, tick, rng)) for tick in range(frames)]
    tracker, state = RateTracker(), TopState()
    console = Console(file=io.StringIO(), width=WIDTH, height=HEIGHT, force_terminal=True)
    parse_ms, frame_ms = [], []
    for tick, body in enumerate(bodies):
        t0 = time.perf_counter()
        streams = json.loads(body)["streams"]
        t1 = time.perf_counter()
        now = 1.8e9 + tick
        tracker.update(now, {k: v["events"] for k, v in streams.items()})
        rows = build_rows(streams, tracker, now, 20)
        names = [r.name for r in rows]
        window = state.settle(names, HEIGHT - CHROME_LINES)
        console.print(render(rows, rows, window, state, "bench", 20))
        t2 = time.perf_counter()
        parse_ms.append((t1 - t0) * 1000)
        frame_ms.append((t2 - t1) * 1000)
    return parse_ms, frame_ms, len(bodies[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=30)
    args = parser.parse_args()
    results = {n: frame_times(n, args.frames) for n in (50, 1000, 5000)}
    base = percentile(results[50][1], 50)
    rows = []
    for n, (parse_ms, frame_ms, size) in results.items():
        p50 = percentile(frame_ms, 50)
        rows.append(
            [
                n,
                f"{size / 1024:.0f}",
                f"{percentile(parse_ms, 50):.1f}",
                f"{p50:.1f}",
                f"{percentile(frame_ms, 95):.1f}",
                ratio(p50, base),
            ]
        )
    headers = [
        "streams",
        "snapshot KiB",
        "parse p50 ms",
        "frame p50 ms",
        "frame p95 ms",
        "frame vs 50",
    ]
    print(table(headers, rows))
    print(machine_note())


if __name__ == "__main__":
    main()
