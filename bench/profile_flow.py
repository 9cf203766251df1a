"""Where the time goes per event: py-spy over streamvisor's hot paths and the bare baselines.

Each scenario reads N events of 256 B from a burst source (another process) in a fresh
process run under ``py-spy record --gil --format speedscope``: only the thread holding the
GIL is sampled, so the numbers are the time the process spends running Python (the
resource a one-process Python pipeline runs out of first); system calls made without the
GIL (``recv``, ``write``) are not counted. ``--all`` samples every thread that py-spy thinks
is not idle instead (on a loaded machine that counts threads waiting for a CPU, and
threads blocked in ``SimpleQueue.get``). From the samples:

* per thread: sampled seconds, as µs per event;
* by step (the leaf frame's file and function, grouped: read, decoder, dedup, fan-out,
  pykka loop, queue/locks, JSON, file write, ...), as µs per event, all threads added up;
* the top functions by self time.

Scenarios: ``tail`` (streamvisor tail > file), ``daemon`` (streamvisor run, one file sink),
``api-event`` / ``api-batch`` / ``api-listener`` (subscribe per event, batch=True,
add_listener, each counting), ``ld-jsonl`` and ``ld-count`` (the bare launchdarkly loops);
with ``--only``, also iterators.py's ``connect``, ``aconnect``, ``aconnect-uvloop``,
``httpx-sse`` and ``ld-iter`` (bench/iter_contenders.py: the id-recording loops).
``--save DIR`` keeps the speedscope files (open them at speedscope.app).

Needs py-spy (``pip install py-spy``; not a project dependency).

    python bench/profile_flow.py [--events 300000] [--rate 500] [--only tail,api-batch]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchlib import (
    BENCH_DIR,
    compile_bytecode,
    ensure_repo_on_path,
    machine_note,
    table,
    use_source,
)
from sse_source import Source

ensure_repo_on_path()

SCENARIOS = ("tail", "daemon", "api-event", "api-batch", "api-listener", "ld-jsonl", "ld-count")
ITERATORS = ("connect", "aconnect", "aconnect-uvloop", "httpx-sse", "ld-iter")  # iterators.py

# (category, file suffix, function-name prefix): the first match wins; matched against the
# leaf frame (py-spy names functions "Class.method")
CATEGORIES = [
    ("decoder", "streamvisor/sse", "Decoder."),
    ("JSON encode", "streamvisor/sse", "Event.to_"),
    ("JSON encode", "streamvisor/sse", "format_timestamp"),
    ("JSON encode", "streamvisor/sse", "to_jsonl"),
    ("JSON encode", "json/encoder.py", ""),
    ("JSON encode", "json/__init__.py", ""),
    ("dedup (StreamBook, digest)", "actors/book.py", ""),
    ("dedup (StreamBook, digest)", "streamvisor/policy/dedup.py", ""),
    ("dedup (StreamBook, digest)", "streamvisor/dedup.py", ""),
    ("iterator hand-off (queue, loop outlet, __next__)", "streamvisor/api/iterator.py", ""),
    ("iterator hand-off (queue, loop outlet, __next__)", "streamvisor/api/aiterator.py", ""),
    ("fan-out (outlets, buffers)", "actors/outlets.py", ""),
    ("fan-out (outlets, buffers)", "actors/actor_outlet.py", ""),
    ("fan-out (outlets, buffers)", "streamvisor/buffers/", ""),
    ("fan-out (outlets, buffers)", "streamvisor/policy/flow.py", ""),
    ("fan-out (outlets, buffers)", "streamvisor/flow.py", ""),
    ("stream loop (incl. waiting in read)", "actors/stream.py", ""),
    ("sink loop, JSONL join, file write", "actors/sink.py", ""),
    ("sink loop, JSONL join, file write", "sinks/file.py", ""),
    ("sink loop, JSONL join, file write", "streamvisor/cli/tail.py", ""),
    ("sink loop, JSONL join, file write", "streamvisor/tail.py", ""),
    ("pykka loop (incl. waiting in get)", "pykka/", ""),
    ("queue, locks, threads", "/queue.py", ""),
    ("queue, locks, threads", "/threading.py", ""),
    ("read (urllib3, http.client, socket)", "urllib3/", ""),
    ("read (urllib3, http.client, socket)", "http/client.py", ""),
    ("read (urllib3, http.client, socket)", "/socket.py", ""),
    ("read (urllib3, http.client, socket)", "streamvisor/upstream/", ""),
    ("read (urllib3, http.client, socket)", "streamvisor/connection.py", ""),
    ("asyncio loop (incl. waiting in select)", "/asyncio/", ""),
    ("asyncio loop (incl. waiting in select)", "/selectors.py", ""),
    ("asyncio loop (incl. waiting in select)", "uvloop/", ""),
    ("httpx-sse parser", "httpx_sse/", ""),
    ("httpx, httpcore, anyio (read, decode)", "/httpx/", ""),
    ("httpx, httpcore, anyio (read, decode)", "/httpcore/", ""),
    ("httpx, httpcore, anyio (read, decode)", "/anyio/", ""),
    ("httpx, httpcore, anyio (read, decode)", "/h11/", ""),
    ("launchdarkly parser", "ld_eventsource/reader.py", ""),
    ("launchdarkly client", "ld_eventsource/", ""),
    ("user code (count; json.dumps, write)", "bench/ld_jsonl.py", ""),
    ("user code (count; json.dumps, write)", "bench/contenders.py", ""),
    ("id check (after the clock stops; not timed)", "bench/iter_contenders.py", "checked"),
    ("user code (count; json.dumps, write)", "bench/iter_contenders.py", ""),
    ("generated __new__/__init__ (namedtuple, dataclass)", "<string>", ""),
    ("start-up, imports", "<frozen", ""),
    ("start-up, imports", "importlib", ""),
]


def categorize(frame: dict[str, Any]) -> str:
    path, name = frame.get("file", ""), frame.get("name", "")
    for category, suffix, prefix in CATEGORIES:
        if suffix in path and name.startswith(prefix):
            return category
    return "other (start-up: dataclasses, enum, typing, re, ...)"


def summarize(path: Path, n: int) -> dict[str, Any]:
    """Per-thread active seconds, µs/event by category and the top functions by self time."""
    data = json.loads(path.read_text())
    frames = data["shared"]["frames"]
    per_thread: dict[str, float] = {}
    cats: Counter[str] = Counter()
    selfs: Counter[str] = Counter()
    others: Counter[str] = Counter()
    for prof in data["profiles"]:
        count = 0.0
        for stack, weight in zip(prof["samples"], prof["weights"], strict=True):
            if not stack:
                continue
            count += weight
            leaf = frames[stack[-1]]
            category = categorize(leaf)
            cats[category] += weight
            where = (
                f"{leaf.get('name')} ({os.path.basename(leaf.get('file', ''))}:"
                f"{leaf.get('line', '')})"
            )
            selfs[where] += weight
            if category.startswith("other"):
                others[where] += weight
        name = prof.get("name", "?")
        per_thread[name] = per_thread.get(name, 0.0) + count
    us = 1e6 / n  # py-spy's speedscope weights are seconds of one thread
    return {
        "threads": {k: v * us for k, v in per_thread.items() if v},
        "categories": {k: v * us for k, v in cats.items()},
        "top": [(k, v * us) for k, v in selfs.most_common(15)],
        "other": [(k, v * us) for k, v in others.most_common(6)],
        "total": sum(per_thread.values()) * us,
    }


def _child(kind: str, url: str, n: int) -> int:
    """The in-process scenarios: import and warm up, print ``ready``, wait for a line on
    stdin (py-spy attaches meanwhile), run, exit (py-spy then writes its file)."""
    import contenders
    import iter_contenders as it

    fn = {
        "api-event": contenders.run_sv_actor,
        "api-batch": contenders.run_sv_batch,
        "api-listener": contenders.run_sv_listener,
        "ld-count": contenders.run_ld,
        "connect": it.run_connect,
        "aconnect": it.run_aconnect,
        "aconnect-uvloop": lambda u, k: it.run_aconnect(u, k, uvloop=True),
        "httpx-sse": it.run_httpx_sse,
        "ld-iter": it.run_ld,
    }[kind]
    fn(url, min(n, 2000))  # warm-up: lazy imports, first connection
    print("ready", flush=True)
    sys.stdin.readline()
    run = fn(url, n)
    print(
        f"{kind}: {run.events} events in {run.seconds:.3f}s = {run.events / run.seconds:,.0f} "
        f"ev/s, CPU {run.cpu / n * 1e6:.2f} µs/event, lost {getattr(run, 'lost', 0)}, "
        f"dropped {getattr(run, 'dropped', 0)}",
        file=sys.stderr,
    )
    return 0 if run.events >= n else 1


IN_PROCESS = ("api-event", "api-batch", "api-listener", "ld-count", *ITERATORS)


def _command(kind: str, url: str, n: int, folder: Path) -> tuple[list[str], Path | None]:
    """The command line of a CLI scenario and, for the daemon, the file to watch."""
    import cli_contenders as cli

    if kind == "tail":
        return [*cli.cli_command(), "tail", url, "--max-events", str(n), "--format", "jsonl"], None
    if kind == "daemon":
        out = folder / "daemon.jsonl"
        config = folder / "daemon.yaml"
        config.write_text(
            f"streams:\n  - name: bench\n    url: {url}\n"
            f"sinks:\n  - name: archive\n    type: file\n    path: {out}\n"
        )
        return [*cli.cli_command(), "run", str(config), "--log-level", "warning"], out
    if kind == "ld-jsonl":
        return [
            sys.executable,
            os.path.join(BENCH_DIR, "ld_jsonl.py"),
            url,
            str(n),
            str(folder / "ld.jsonl"),
        ], None
    raise ValueError(kind)


def _attach(
    kind: str, url: str, n: int, spy_args: list[str]
) -> tuple[subprocess.Popen[bytes], str]:
    """Start an in-process scenario, attach py-spy after its warm-up, let it run."""
    child = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--child", kind, url, str(n)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    spy: subprocess.Popen[bytes] | None = None
    try:
        assert child.stdin is not None and child.stdout is not None
        if child.stdout.readline().strip() != b"ready":
            raise RuntimeError(f"{kind}: child did not start")
        spy = subprocess.Popen(
            [*spy_args, "--pid", str(child.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        time.sleep(1.0)  # py-spy attaches
        child.stdin.write(b"go\n")
        child.stdin.flush()
        _, err = child.communicate(timeout=120)
    except BaseException:
        if spy is not None and spy.poll() is None:
            spy.kill()
            spy.communicate(timeout=10)
        raise
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate(timeout=10)
    return spy, err.decode(errors="replace").strip()


def profile(
    kind: str, url: str, n: int, rate: int, folder: Path, spy: str, gil: bool
) -> dict[str, Any]:
    out = folder / f"{kind}.speedscope.json"
    spy_args = [
        spy,
        "record",
        "--full-filenames",
        "--format",
        "speedscope",
        "-r",
        str(rate),
        "-o",
        str(out),
        *(["--gil"] if gil else []),
    ]
    t0 = time.perf_counter()
    note = ""
    if kind in IN_PROCESS:
        proc, note = _attach(kind, url, n, spy_args)
        try:
            _, err = proc.communicate(timeout=60)  # py-spy ends with the process it watched
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=10)
    else:
        proc, err = _spawn(kind, url, n, folder, spy_args)
    wall = time.perf_counter() - t0
    if not out.exists():
        raise RuntimeError(f"{kind}: no profile: {err.decode(errors='replace')[-400:]}")
    result = summarize(out, n)
    result["wall"] = wall
    result["note"] = note
    return result


def _spawn(
    kind: str, url: str, n: int, folder: Path, spy_args: list[str]
) -> tuple[subprocess.Popen[bytes], bytes]:
    """Run a CLI scenario under py-spy from its start (start-up is part of its cost)."""
    cmd, watch = _command(kind, url, n, folder)
    stdout = open(folder / f"{kind}.out", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([*spy_args, "--", *cmd], stdout=stdout, stderr=subprocess.PIPE)
    try:
        if watch is not None:  # the daemon: wait for N lines, then SIGTERM it (not py-spy)
            deadline = time.monotonic() + 120
            lines, fh = 0, None
            while lines < n and time.monotonic() < deadline and proc.poll() is None:
                if fh is None and watch.exists():
                    fh = open(watch, "rb")  # noqa: SIM115
                if fh is not None:
                    lines += fh.read().count(b"\n")
                time.sleep(0.005)
            if fh is not None:
                fh.close()
            for child in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split():
                os.kill(int(child), signal.SIGTERM)
        _, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
        stdout.close()
    return proc, err


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--rate", type=int, default=500, help="py-spy samples per second")
    parser.add_argument(
        "--only", default=",".join(SCENARIOS), help=f"also: {','.join(ITERATORS)} (iterators.py)"
    )
    parser.add_argument("--save", help="folder to keep the speedscope files in")
    parser.add_argument(
        "--all",
        action="store_true",
        help="sample every non-idle thread, not only the one holding the GIL",
    )
    parser.add_argument("--src", metavar="DIR", help="profile the streamvisor/ in DIR")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args(argv)
    if args.child:
        return _child(args.child, rest[0], int(rest[1]))
    if args.src:
        use_source(args.src)
    spy = shutil.which("py-spy") or os.path.join(os.path.dirname(sys.executable), "py-spy")
    if not os.path.exists(spy):
        parser.error("py-spy is not installed (pip install py-spy)")
    compile_bytecode()
    kinds = [k for k in args.only.split(",") if k]
    n = args.events
    print(
        f"profile: {n:,} events per scenario, py-spy at {args.rate}/s; {machine_note()}; "
        f"load {'/'.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    results: dict[str, dict[str, Any]] = {}
    with Source("burst", count=n, hold=True) as src, tempfile.TemporaryDirectory() as tmp:
        for kind in kinds:
            folder = Path(tmp)
            try:
                results[kind] = profile(kind, src.url, n, args.rate, folder, spy, not args.all)
            except Exception as exc:
                print(f"  {kind}: FAILED {exc}", flush=True)
                continue
            r = results[kind]
            print(
                f"  {kind}: wall {r['wall']:.2f}s (with py-spy), sampled "
                f"{r['total']:.2f} µs/event {r['note']}",
                flush=True,
            )
            if args.save:
                os.makedirs(args.save, exist_ok=True)
                shutil.copy(folder / f"{kind}.speedscope.json", args.save)
    cats = sorted(
        {c for r in results.values() for c in r["categories"]},
        key=lambda c: -max(r["categories"].get(c, 0) for r in results.values()),
    )
    print("\nµs per event by step (leaf frame; all threads added up)\n")
    print(
        table(
            ["step", *results],
            [[c] + [f"{r['categories'].get(c, 0):.2f}" for r in results.values()] for c in cats]
            + [["total"] + [f"{r['total']:.2f}" for r in results.values()]],
        )
    )
    for kind, r in results.items():
        print(
            f"\n### {kind}\n\nthreads (µs/event): "
            + ", ".join(
                f"{k} {v:.2f}" for k, v in sorted(r["threads"].items(), key=lambda kv: -kv[1])
            )
        )
        print()
        print(table(["function (self time)", "µs/event"], [[k, f"{v:.3f}"] for k, v in r["top"]]))
        print("\nlargest in 'other': " + "; ".join(f"{k} {v:.2f}" for k, v in r["other"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
