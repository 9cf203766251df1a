"""Subprocess contenders for bench/flow.py: N events from the source into a JSONL file.

Each one is a fresh process, so all of them pay interpreter start-up and imports:

* ``ld_jsonl``: ``python bench/ld_jsonl.py URL N PATH`` (a bare launchdarkly loop writing the
  Event JSON with ``json.dumps``); clock from spawn to exit;
* ``tail``: ``streamvisor tail URL --max-events N --format jsonl`` with stdout on the file;
  clock from spawn to exit;
* ``daemon``: ``streamvisor run config.yaml`` with one stream and one ``file`` sink (nothing
  else set, or ``flush_interval``); clock from spawn until the file holds N lines (polled
  every 2 ms), then SIGTERM.

Every run is checked afterwards: the file must hold each id 1..N exactly once (``lost``
counts the ids missing, ``duplicates`` the extra lines). ``cpu`` is the process's user +
system CPU time from rusage: on a shared, loaded machine it is steadier than wall time.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from benchlib import BENCH_DIR

TIMEOUT = 90.0


@dataclass
class FileRun:
    seconds: float
    lines: int
    lost: int
    duplicates: int
    cpu: float = 0.0  # the process's user + system CPU seconds (rusage)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def check_file(path: Path, n: int) -> tuple[int, int, int]:
    """(lines, ids of 1..n missing, extra lines) of a JSONL output file."""
    seen: set[int] = set()
    lines = 0
    with open(path, "rb") as fh:
        for raw in fh:
            lines += 1
            try:
                seen.add(int(json.loads(raw)["id"]))
            except (ValueError, KeyError, TypeError):
                continue
    lost = sum(1 for i in range(1, n + 1) if i not in seen)
    return lines, lost, lines - len(seen)


def cli_command() -> list[str]:
    """The ``streamvisor`` console script of this interpreter's environment."""
    exe = os.path.join(os.path.dirname(sys.executable), "streamvisor")
    return [exe] if os.path.exists(exe) else [sys.executable, "-m", "streamvisor"]


def _finish(proc: subprocess.Popen[bytes], t0: float, what: str) -> float:
    try:
        _, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate(timeout=10)
        raise RuntimeError(f"{what}: timed out") from None
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{what}: exit {proc.returncode}: {err.decode(errors='replace')[-300:]}")
    return elapsed


def run_ld_jsonl(url: str, n: int, folder: Path, read1: bool = False) -> FileRun:
    path = folder / "ld.jsonl"
    args = [sys.executable, os.path.join(BENCH_DIR, "ld_jsonl.py"), url, str(n), str(path)]
    cpu0, t0 = _children_cpu(), time.perf_counter()
    proc = subprocess.Popen(args + (["--read1"] if read1 else []), stderr=subprocess.PIPE)
    elapsed = _finish(proc, t0, "ld_jsonl")
    cpu = _children_cpu() - cpu0
    return FileRun(elapsed, *check_file(path, n), cpu)


def run_tail(url: str, n: int, folder: Path) -> FileRun:
    path = folder / "tail.jsonl"
    args = [*cli_command(), "tail", url, "--max-events", str(n), "--format", "jsonl"]
    with open(path, "wb") as out:
        cpu0, t0 = _children_cpu(), time.perf_counter()
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.PIPE)
        elapsed = _finish(proc, t0, "tail")
        cpu = _children_cpu() - cpu0
    return FileRun(elapsed, *check_file(path, n), cpu)


def run_daemon(url: str, n: int, folder: Path, flush_interval: float | None = None) -> FileRun:
    path = folder / "daemon.jsonl"
    path.unlink(missing_ok=True)
    extra = f"    flush_interval: {flush_interval}\n" if flush_interval is not None else ""
    config = folder / "daemon.yaml"
    config.write_text(
        f"streams:\n  - name: bench\n    url: {url}\n"
        f"sinks:\n  - name: archive\n    type: file\n    path: {path}\n{extra}"
    )
    args = [*cli_command(), "run", str(config), "--log-level", "warning"]
    cpu0, t0 = _children_cpu(), time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    lines = 0
    try:
        deadline = time.monotonic() + TIMEOUT
        fh = None
        while lines < n:
            if time.monotonic() > deadline:
                raise RuntimeError(f"daemon: {lines} lines after {TIMEOUT:g}s")
            if proc.poll() is not None:
                raise RuntimeError(f"daemon exited with {proc.returncode} at {lines} lines")
            if fh is None and path.exists():
                fh = open(path, "rb")  # noqa: SIM115 - closed below
            if fh is not None:
                lines += fh.read().count(b"\n")
            if lines < n:
                time.sleep(0.002)
        elapsed = time.perf_counter() - t0
        if fh is not None:
            fh.close()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        cpu = _children_cpu() - cpu0  # includes the SIGTERM shutdown
        if proc.returncode != 0:
            raise RuntimeError(f"daemon: exit {proc.returncode}: {err.decode()[-300:]}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    return FileRun(elapsed, *check_file(path, n), cpu)


def startup_seconds(args: list[str]) -> float:
    """Seconds from spawn to exit of a process that only starts up (``--help``, imports)."""
    t0 = time.perf_counter()
    subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
    return time.perf_counter() - t0
