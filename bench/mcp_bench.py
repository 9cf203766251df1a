"""MCP upstreams: notification latency, call latency and memory, against baselines in the
same run (issue 11 targets).

* ``latency``: p95 send-to-subscriber latency of ``notifications/message`` from the fake
  MCP server (``mcp_source.py``, another process) read as ``kind: mcp`` vs the *same* GET
  stream read as plain ``kind: sse`` (with the session headers set by hand). Target <= 1.05x.
* ``call``: p95 of ``sv.call(stream, "tools/call", echo)`` vs the ``mcp`` SDK client's
  ``Client.call_tool`` on the same real server (``tests/support/mcp_real_server.py``), per era
  (2025-11-25 handshake, 2026-07-28). Target <= 1.05x.
* ``memory``: VmRSS of one process running N ``kind: mcp`` listening streams against the
  fake (a fresh interpreter per shape), vs N plain ``kind: sse`` streams. Target <= 100 MiB.

    python bench/mcp_bench.py [--rate 200] [--events 1000] [--calls 300] [--rounds 3] [--streams 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import resource
import subprocess
import sys
import threading
import time
from typing import Any

from benchlib import (
    BENCH_DIR,
    ensure_repo_on_path,
    machine_note,
    mib,
    percentile,
    ratio,
    rss,
    table,
)

ensure_repo_on_path()

import pykka  # noqa: E402
import requests  # noqa: E402

from streamvisor import Streamvisor  # noqa: E402
from streamvisor.policy.backoff import BackoffPolicy  # noqa: E402
from streamvisor.spec import StreamSpec  # noqa: E402
from streamvisor.sse import Event  # noqa: E402

FAST = BackoffPolicy(initial=0.05, max=1.0, jitter=0.0)


class Source:
    def __init__(self, anonymous_get: bool = False) -> None:
        args = [sys.executable, os.path.join(BENCH_DIR, "mcp_source.py")]
        if anonymous_get:
            args.append("--anonymous-get")
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()

    def go(self, n: int, rate: float) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"go {n} {rate}\n")
        self.proc.stdin.flush()

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            assert self.proc.stdin is not None
            self.proc.stdin.write("stop\n")
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Stamps(pykka.ThreadingActor):
    def __init__(self, out: list[float], n: int, done: threading.Event) -> None:
        super().__init__()
        self.out, self.n, self.done = out, n, done

    def on_receive(self, message: Any) -> None:
        if isinstance(message, Event) and message.event in ("notifications/message", "message"):
            sent = json.loads(message.data)["params"]["t"]
            self.out.append(time.time() - sent)
            if len(self.out) >= self.n:
                self.done.set()


def _wait(pred: Any, timeout: float, step: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return False


def latency_round(src: Source, kind: str, n: int, rate: float) -> list[float]:
    if kind == "mcp":
        opts = {"protocol_versions": ["2025-11-25"], "listen": "get"}
        spec = StreamSpec(name="b", url=src.url, kind="mcp", mcp=opts, backoff=FAST)
    else:
        init = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "b"},
            },
        }
        sid = requests.post(src.url, json=init, timeout=5).headers["Mcp-Session-Id"]
        headers = {"Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-11-25"}
        spec = StreamSpec(name="b", url=src.url, headers=headers, backoff=FAST)
    out: list[float] = []
    done = threading.Event()
    ref = Stamps.start(out, n, done)
    sv = Streamvisor([spec])
    sv.subscribe(ref)
    sv.start()
    try:
        _wait(lambda: sv.status()["streams"]["b"]["state"] == "connected", 10)
        time.sleep(0.2)  # the GET is registered at the fake
        src.go(n, rate)
        done.wait(n / rate + 20)
    finally:
        sv.stop(timeout=5)
        ref.stop()
        if kind == "sse":
            requests.delete(src.url, headers=headers, timeout=5)
    return out


def bench_latency(args: argparse.Namespace) -> None:
    src = Source()
    samples: dict[str, list[float]] = {"sse": [], "mcp": []}
    round_ratios: list[float] = []
    try:
        for _ in range(args.rounds):
            p95s = {}
            for kind in ("sse", "mcp"):
                values = latency_round(src, kind, args.events, args.rate)
                samples[kind] += values
                p95s[kind] = percentile(values, 95)
            round_ratios.append(p95s["mcp"] / p95s["sse"])
    finally:
        src.stop()
    base = percentile(samples["sse"], 95)
    rows = []
    for kind, values in samples.items():
        p50, p95 = percentile(values, 50), percentile(values, 95)
        rows.append(
            [f"kind: {kind}", len(values), f"{p50 * 1e3:.3f}", f"{p95 * 1e3:.3f}", ratio(p95, base)]
        )
    print(f"\n## notification latency ({args.rate:g}/s, {args.events} x {args.rounds} rounds)\n")
    print(table(["read as", "events", "p50 ms", "p95 ms", "p95 vs kind: sse (pooled)"], rows))
    shown = ", ".join(f"{r:.2f}x" for r in round_ratios)
    print(f"\nper-round p95 ratio mcp/sse: {shown}; median {percentile(round_ratios, 50):.2f}x")


async def _sdk_calls(url: str, n: int, mode: str) -> list[float]:
    from mcp import Client

    out: list[float] = []
    async with Client(url, mode=mode) as client:
        for i in range(n + 20):
            t0 = time.perf_counter()
            await client.call_tool("echo", {"text": "x"})
            if i >= 20:
                out.append(time.perf_counter() - t0)
    return out


def _sv_calls(url: str, n: int, version: str) -> list[float]:
    opts = {"protocol_versions": [version], "listen": "none"}
    sv = Streamvisor([StreamSpec(name="b", url=url, kind="mcp", mcp=opts)]).start()
    out: list[float] = []
    try:
        for i in range(n + 20):
            t0 = time.perf_counter()
            sv.call("b", "tools/call", {"name": "echo", "arguments": {"text": "x"}}, timeout=10)
            if i >= 20:
                out.append(time.perf_counter() - t0)
    finally:
        sv.stop(timeout=5)
    return out


def bench_calls(args: argparse.Namespace) -> None:
    from tests.support.mcp_real import RealServer

    server = RealServer().start()
    rows = []
    try:
        for version, mode in (("2025-11-25", "legacy"), ("2026-07-28", "2026-07-28")):
            sdk: list[float] = []
            ours: list[float] = []
            for _ in range(args.rounds):
                sdk += asyncio.run(_sdk_calls(server.url, args.calls, mode))
                ours += _sv_calls(server.url, args.calls, version)
            base = percentile(sdk, 95)
            for name, values in (("mcp SDK Client.call_tool", sdk), ("sv.call", ours)):
                p50, p95 = percentile(values, 50), percentile(values, 95)
                rows.append(
                    [
                        version,
                        name,
                        len(values),
                        f"{p50 * 1e3:.2f}",
                        f"{p95 * 1e3:.2f}",
                        ratio(p95, base),
                    ]
                )
    finally:
        server.stop()
    print(f"\n## tool call latency (echo, {args.calls} x {args.rounds} rounds per era)\n")
    print(table(["era", "client", "calls", "p50 ms", "p95 ms", "p95 vs SDK"], rows))


def child_memory(kind: str, url: str, n: int) -> dict[str, Any]:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    gc.collect()
    base = rss()
    opts = {"protocol_versions": ["2025-11-25"], "listen": "get", "ping_interval": 0}
    specs = [
        StreamSpec(name=f"s{i}", url=url, kind="mcp", mcp=opts, backoff=FAST, read_timeout=120)
        if kind == "mcp"
        else StreamSpec(name=f"s{i}", url=url, backoff=FAST, read_timeout=120)
        for i in range(n)
    ]
    sv = Streamvisor(specs).start()
    started = time.monotonic()

    def all_up() -> bool:
        try:
            streams = sv.status()["streams"]
        except pykka.Timeout:  # the supervisor is still starting a thousand actors
            return False
        if kind == "mcp":
            return all((s.get("mcp") or {}).get("listen") == "connected" for s in streams.values())
        return all(s["state"] == "connected" for s in streams.values())

    up = _wait(all_up, 180, step=0.5)
    took = time.monotonic() - started
    gc.collect()
    time.sleep(1.0)
    peak = rss()
    sv.stop(timeout=30)
    return {"kind": kind, "all_up": up, "connect_s": took, "base": base, "peak": peak}


def bench_memory(args: argparse.Namespace) -> None:
    rows = []
    results = {}
    for kind in ("sse", "mcp"):
        src = Source(anonymous_get=kind == "sse")
        try:
            proc = subprocess.run(
                [sys.executable, __file__, "--child-memory", kind, src.url, str(args.streams)],
                capture_output=True,
                text=True,
                timeout=400,
            )
        finally:
            src.stop()
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        results[kind] = result
    for kind, r in results.items():
        growth = r["peak"] - r["base"]
        per = growth / args.streams / 1024
        rows.append(
            [
                f"kind: {kind}",
                r["all_up"],
                f"{r['connect_s']:.1f}",
                mib(r["peak"]),
                mib(growth),
                f"{per:.1f}",
                ratio(r["peak"], results["sse"]["peak"]),
            ]
        )
    print(f"\n## memory, {args.streams} listening streams in one process\n")
    print(
        table(
            [
                "streams",
                "all connected",
                "connect s",
                "RSS",
                "growth",
                "KiB/stream",
                "RSS vs kind: sse",
            ],
            rows,
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--only", choices=["latency", "call", "memory"])
    parser.add_argument("--child-memory", nargs=3, metavar=("KIND", "URL", "N"))
    args = parser.parse_args()
    if args.child_memory:
        kind, url, n = args.child_memory
        print(json.dumps(child_memory(kind, url, int(n))))
        return
    print(f"# MCP benchmarks ({machine_note()})")
    if args.only in (None, "latency"):
        bench_latency(args)
    if args.only in (None, "call"):
        bench_calls(args)
    if args.only in (None, "memory"):
        bench_memory(args)


if __name__ == "__main__":
    main()
