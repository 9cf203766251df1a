"""Daemon with many idle streams: RSS above an idle daemon, and SIGTERM-to-exit time.

    python bench/daemon_idle.py [--streams 1000]

Starts a holding SSE server in its own process (answers every request with the SSE headers
and one comment, then keeps the connection open), then runs `streamvisor run` twice as a
subprocess: once with 1 stream (the idle baseline) and once with N streams, each with the
admin endpoint, a file sink and checkpoints. RSS is read from /proc/PID/status once
/ready says every stream connected. Loopback only; everything started is stopped.
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

_SERVER = r"""
import resource, selectors, socket
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0)); s.listen(4096)
print(s.getsockname()[1], flush=True)
sel = selectors.DefaultSelector(); sel.register(s, selectors.EVENT_READ)
while True:
    for key, _ in sel.select(1):
        if key.fileobj is s:
            c, _ = s.accept(); sel.register(c, selectors.EVENT_READ)
            continue
        try:
            d = key.fileobj.recv(65536)
        except OSError:
            d = b""
        if not d:
            sel.unregister(key.fileobj); key.fileobj.close(); continue
        if b"\r\n\r\n" in d:
            key.fileobj.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n: hi\n\n")
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads"):
            return int(line.split()[1])
    return 0


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except OSError:
        return 0, ""


def _run_daemon(folder: Path, port: int, n: int, deadline: float) -> dict[str, float]:
    admin = _free_port()
    streams = "\n".join(
        f"  - name: s{i}\n    url: http://127.0.0.1:{port}/events/{i}" for i in range(n)
    )
    config = folder / f"daemon-{n}.yaml"
    config.write_text(
        f"streams:\n{streams}\nsinks:\n  - name: archive\n    type: file\n"
        f"    path: events-{n}.jsonl\ncheckpoint:\n  path: state-{n}.db\n"
        f"admin:\n  listen: 127.0.0.1:{admin}\n"
    )
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamvisor", "run", str(config), "--log-level", "warning"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while time.monotonic() < deadline:
            code, _ = _get(f"http://127.0.0.1:{admin}/ready")
            if code == 200:
                break
            if proc.poll() is not None:
                raise RuntimeError(f"daemon exited with {proc.returncode}")
            time.sleep(0.2)
        else:
            raise RuntimeError("daemon not ready before the deadline")
        ready = time.monotonic() - started
        time.sleep(1.0)  # let connection setup garbage settle before reading RSS
        _, body = _get(f"http://127.0.0.1:{admin}/streams")
        connected = sum(
            1 for s in json.loads(body)["streams"].values() if s["state"] == "connected"
        )
        rss, threads = _rss_mib(proc.pid), _threads(proc.pid)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
        stop = time.monotonic() - t0
        return {
            "rss": rss,
            "threads": threads,
            "ready": ready,
            "connected": connected,
            "stop": stop,
            "exit": code,
        }
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=1000)
    args = parser.parse_args()
    server = subprocess.Popen([sys.executable, "-c", _SERVER], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        with tempfile.TemporaryDirectory() as tmp:
            deadline = time.monotonic() + 150
            base = _run_daemon(Path(tmp), port, 1, deadline)
            full = _run_daemon(Path(tmp), port, args.streams, deadline)
    finally:
        server.kill()
        server.wait(timeout=10)
    growth = full["rss"] - base["rss"]
    print(
        f"{'daemon':<22}{'RSS MiB':>9}{'threads':>9}{'ready s':>9}{'SIGTERM->exit s':>17}{'exit':>6}"
    )
    for label, row in (("1 stream (baseline)", base), (f"{args.streams} idle streams", full)):
        print(
            f"{label:<22}{row['rss']:>9.1f}{row['threads']:>9.0f}{row['ready']:>9.2f}"
            f"{row['stop']:>17.3f}{row['exit']:>6.0f}"
        )
    print(
        f"RSS growth for {args.streams} streams: {growth:.1f} MiB "
        f"({growth * 1024 / args.streams:.1f} KiB/stream; target <= 40 MiB); "
        f"connected {full['connected']:.0f}/{args.streams}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
