"""The relay against nginx + nchan, in the same harness and the same run.

    python bench/relay.py [--window 12] [--warmup 3] [--only throughput,idle,storm,stalled]

Scenarios (shared/research/relay.md section 5 sets the targets; issue 15):

* throughput: 100 clients x 1,000 events/s: deliveries/s, p50/p99/max end-to-end latency,
  server CPU (percent of one core, process tree from /proc) and the CPU ratio relay/nchan.
* idle: 10,000 connected clients at 1 event/s: server RSS growth per client.
* storm: 1,000 clients at 50 events/s all drop 2 s into the window and resume 0.3 s later
  with Last-Event-ID: lost and repeated events (every client), p99. The relay runs twice:
  steady upstream, and an upstream that drops every 2 s.
* stalled: the throughput run again with one client that never reads (4 KiB receive
  buffer): the others' p99 against the throughput run, relay RSS over the window, cuts.

Publisher, load client and upstream are separate processes (``relay_load.py``); every
process is stopped in a ``finally``; nginx runs with ``daemon off``, 1 worker, 127.0.0.1
only, from a temporary prefix. nchan comes from Debian (``apt-get install nginx-light
libnginx-mod-nchan``, installed here when missing). Ratios, not absolute numbers, are the
result: the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from typing import Any

from relay_targets import LOAD, Nchan, Proc, Relay, cpu_seconds, ensure_nchan, rss


# -- one measured run ---------------------------------------------------------------------
def measure(
    target: Any,
    clients: int,
    warmup: float,
    window: float,
    *,
    storm_at: float | None = None,
    stalled: bool = False,
) -> dict[str, Any]:
    base_rss = rss(target.pid)
    load = Proc(
        [
            *LOAD,
            "--role",
            "load",
            "--port",
            str(target.port),
            "--path",
            target.path,
            "--clients",
            str(clients),
        ],
        stdin=True,
    )
    stall = None
    try:
        connected = json.loads(load.line(120))["connected"]
        if stalled:
            stall = socket.socket()
            stall.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            stall.connect(("127.0.0.1", target.port))
            stall.sendall(
                f"GET {target.path} HTTP/1.1\r\nHost: b\r\nAccept: text/event-stream\r\n\r\n".encode()
            )
        time.sleep(warmup)
        rss_connected = rss(target.pid)
        cpu0, t0 = cpu_seconds(target.pid), time.monotonic()
        load.send("start")
        samples = []
        cut_after: float | None = None
        while time.monotonic() - t0 < window:
            if storm_at is not None and time.monotonic() - t0 >= storm_at:
                load.send("storm")
                storm_at = None
            samples.append(rss(target.pid))
            if stalled and cut_after is None and target.cuts() > 0:
                cut_after = time.monotonic() - t0
            time.sleep(0.5)
        load.send("stop")
        cpu = (cpu_seconds(target.pid) - cpu0) / (time.monotonic() - t0) * 100
        load.send("report")
        result: dict[str, Any] = json.loads(load.line(60))
        result.update(
            target=target.name,
            clients=connected,
            cpu=cpu,
            base_rss=base_rss,
            rss=rss_connected,
            rss_min=min(samples),
            rss_max=max(samples),
        )
        if stalled:
            result["cuts"] = target.cuts()
            result["cut_after"] = cut_after
        return result
    finally:
        if stall is not None:
            stall.close()
        load.stop()


def idle(target: Any, clients: int) -> dict[str, Any]:
    before = rss(target.pid)
    load = Proc(
        [
            *LOAD,
            "--role",
            "load",
            "--port",
            str(target.port),
            "--path",
            target.path,
            "--clients",
            str(clients),
        ],
        stdin=True,
    )
    try:
        connected = json.loads(load.line(180))["connected"]
        time.sleep(3)
        after = rss(target.pid)
        return {
            "target": target.name,
            "clients": connected,
            "before": before,
            "after": after,
            "per_client": (after - before) / max(connected, 1),
        }
    finally:
        load.stop()


def run(make: Any, *args: Any, **kw: Any) -> dict[str, Any]:
    target = make()
    try:
        return args[0](target, *args[1:], **kw)
    finally:
        target.stop()


def row(r: dict[str, Any]) -> str:
    return (
        f"| {r['target']:<22} | {r['clients']:>5} | {r['per_s']:>9,.0f} | {r['p50']:>6.1f} | {r['p99']:>7.1f} | "
        f"{r['max']:>7.0f} | {r['cpu']:>6.1f} % | {r['rss'] / 2**20:>6.1f} MiB | {r['lost']:>5} "
        f"({r['clients_with_loss']}) | {r['dups']:>4} |"
    )


HEADER = (
    "| target                 | conns | deliv./s  | p50 ms | p99 ms  | max ms  | CPU      | RSS        | lost (clients) | dups |\n"
    "|---|---|---|---|---|---|---|---|---|---|"
)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--window", type=float, default=12.0)
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--only", default="throughput,idle,storm,stalled")
    a = p.parse_args()
    only = set(a.only.split(","))
    nchan = ensure_nchan()
    if not nchan:
        print("nginx + nchan unavailable: relay numbers only", file=sys.stderr)
    w, wu = a.window, a.warmup
    out: list[str] = []
    if "throughput" in only or "stalled" in only:
        rows = []
        if nchan:
            rows.append(run(lambda: Nchan(1000), measure, 100, wu, w))
        rows.append(run(lambda: Relay(1000), measure, 100, wu, w))
        if "stalled" in only:
            # the kernel takes up to tcp_wmem max (4 MiB) before the relay's bound sees bytes
            stalled = run(lambda: Relay(1000), measure, 100, wu, max(w, 40.0), stalled=True)
            stalled["target"] = "relay + 1 stalled"
            rows.append(stalled)
        out += ["## 100 clients x 1,000 events/s", HEADER, *map(row, rows)]
        relay_row = next(r for r in rows if r["target"] == "relay")
        if nchan:
            out.append(
                f"\nrelay/nchan: CPU {relay_row['cpu'] / rows[0]['cpu']:.2f}x, "
                f"p99 {relay_row['p99']:.1f} vs {rows[0]['p99']:.1f} ms"
            )
        if "stalled" in only:
            s = rows[-1]
            out.append(
                f"stalled client: cut {s['cuts']} time(s), {s['cut_after'] or 0:.1f} s into the "
                f"window; others' p99 {s['p99']:.1f} vs "
                f"{relay_row['p99']:.1f} ms ({s['p99'] - relay_row['p99']:+.1f} ms); relay RSS over "
                f"the window {s['rss_min'] / 2**20:.1f}..{s['rss_max'] / 2**20:.1f} MiB"
            )
    if "storm" in only:
        rows = []
        if nchan:
            rows.append(run(lambda: Nchan(50), measure, 1000, wu, w, storm_at=2.0))
        rows.append(run(lambda: Relay(50), measure, 1000, wu, w, storm_at=2.0))
        dropping = run(lambda: Relay(50, drop_every=2.0), measure, 1000, wu, w, storm_at=2.0)
        dropping["target"] = "relay, upstream drops/2s"
        rows.append(dropping)
        out += [
            "\n## storm: 1,000 clients at 50 events/s drop at once, resume 0.3 s later",
            HEADER,
            *map(row, rows),
        ]
    if "idle" in only:
        rows = []
        if nchan:
            rows.append(run(lambda: Nchan(1), idle, 10_000))
        rows.append(run(lambda: Relay(1), idle, 10_000))
        out += [
            "\n## 10,000 idle clients (1 event/s)",
            "| target | clients | RSS before | after | per client |",
            "|---|---|---|---|---|",
        ]
        out += [
            f"| {r['target']} | {r['clients']} | {r['before'] / 2**20:.1f} MiB | {r['after'] / 2**20:.1f} MiB "
            f"| {r['per_client'] / 1024:.2f} KiB |"
            for r in rows
        ]
    print("\n".join(out))


if __name__ == "__main__":
    main()
