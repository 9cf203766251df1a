"""Small helpers shared by the benchmark scripts: tables, percentiles, RSS, thread counts.

Benchmarks are scripts, not tests: they print tables and ratios against baselines measured
in the same run, never pass/fail on absolute timings.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Sequence

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_DIR = os.path.dirname(BENCH_DIR)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by nearest rank; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def status_value(key: str) -> int:
    """A ``/proc/self/status`` value in bytes (for kB fields such as VmRSS) or as a count."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                parts = line.split()
                value = int(parts[1])
                return value * 1024 if len(parts) > 2 and parts[2] == "kB" else value
    raise KeyError(key)


def rss() -> int:
    """Resident set size of this process, in bytes."""
    return status_value("VmRSS")


def threads() -> int:
    """OS threads of this process."""
    return status_value("Threads")


def smaps_breakdown(stack_kib: int = 8192) -> dict[str, int]:
    """Resident bytes of this process by kind of mapping, from ``/proc/self/smaps``.

    ``thread stacks`` are the anonymous read-write mappings of exactly the default thread
    stack size (glibc maps the guard page separately); ``brk heap`` is ``[heap]``; ``other
    anonymous`` holds the per-thread malloc arenas and large allocations; ``files`` is code
    and data mapped from files.
    """
    out = {"thread stacks": 0, "brk heap": 0, "other anonymous": 0, "files": 0}
    kind = "files"
    with open("/proc/self/smaps") as fh:
        for line in fh:
            parts = line.split()
            if not parts:
                continue
            if not parts[0].endswith(":") and "-" in parts[0]:
                start, end = (int(x, 16) for x in parts[0].split("-"))
                size_kib = (end - start) // 1024
                path = parts[5] if len(parts) > 5 else ""
                if path == "[heap]":
                    kind = "brk heap"
                elif path.startswith("/"):
                    kind = "files"
                elif size_kib == stack_kib and parts[1].startswith("rw"):
                    kind = "thread stacks"
                else:
                    kind = "other anonymous"
            elif parts[0] == "Rss:":
                out[kind] += int(parts[1]) * 1024
    return out


def mib(n: float) -> str:
    return f"{n / (1 << 20):.1f}"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured Markdown table (pasteable into the README)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(cells[0]), sep, *(line(r) for r in cells[1:])])


def ratio(value: float, base: float) -> str:
    if not base or math.isnan(base) or math.isnan(value):
        return "n/a"
    return f"{value / base:.2f}x"


def ensure_repo_on_path() -> None:
    """Make ``streamvisor`` importable when the script runs from a checkout.

    ``STREAMVISOR_SRC=DIR`` (set by ``flow.py --src``) imports another copy instead, here and
    in child processes (through ``PYTHONPATH``, which wins over an editable install).
    """
    src = os.environ.get("STREAMVISOR_SRC") or REPO_DIR
    if src not in sys.path:
        sys.path.insert(0, src)


def use_source(folder: str) -> None:
    """Import streamvisor from ``folder`` in this process and every child it starts."""
    folder = os.path.abspath(folder)
    if not os.path.isfile(os.path.join(folder, "streamvisor", "__init__.py")):
        raise SystemExit(f"{folder} holds no streamvisor/ package")
    os.environ["STREAMVISOR_SRC"] = folder
    paths = [folder, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    os.environ["PYTHONPATH"] = os.pathsep.join(paths)
    sys.path.insert(0, folder)


def machine_note() -> str:
    return f"python {sys.version.split()[0]}, {os.cpu_count()} cores, pid {os.getpid()}"


def compile_bytecode() -> None:
    """Write streamvisor's ``.pyc`` files before timing processes that import it.

    An editable install under ``PYTHONDONTWRITEBYTECODE=1`` (as on our machines) has no
    ``__pycache__``, so every ``streamvisor`` process would compile all its modules from
    source while the baselines' site-packages were byte-compiled by pip: about 30-40 ms of
    start-up (measured with ``streamvisor --help``) that no installed copy pays.
    """
    import compileall

    src = os.environ.get("STREAMVISOR_SRC") or REPO_DIR
    compileall.compile_dir(os.path.join(src, "streamvisor"), quiet=1, force=False, legacy=False)
