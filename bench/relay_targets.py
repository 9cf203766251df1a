"""Servers and processes of the relay benchmark: the relay, nginx + nchan, /proc sampling.

Used by ``relay.py``. Every process started here is stopped by its ``stop()`` (terminate,
then kill); nginx runs with ``daemon off``, 1 worker, 127.0.0.1 only, from a temporary
prefix.
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
LOAD = [sys.executable, str(BENCH / "relay_load.py")]
TICK = os.sysconf("SC_CLK_TCK")
NCHAN_MODULE = "/usr/lib/nginx/modules/ngx_nchan_module.so"


def _raise_fd_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Proc:
    """A child process with line-wise stdout (read with a deadline) and a sure stop."""

    def __init__(self, args: list[str], stdin: bool = False, **kw: Any) -> None:
        self.p = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            preexec_fn=_raise_fd_limit,
            text=True,
            **kw,
        )

    def line(self, timeout: float = 60.0) -> str:
        box: list[str] = []
        reader = threading.Thread(target=lambda: box.append(self.p.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(timeout)
        if not box or not box[0]:
            raise RuntimeError(f"no output from {self.p.args[:4]} within {timeout}s")
        return box[0].strip()

    def send(self, text: str) -> None:
        assert self.p.stdin is not None
        self.p.stdin.write(text + "\n")
        self.p.stdin.flush()

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)


def tree(pid: int) -> list[int]:
    """``pid`` and its children (nginx's workers)."""
    pids = [pid]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    pids.append(int(entry))
    return pids


def cpu_seconds(pid: int) -> float:
    total = 0
    for p in tree(pid):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / TICK


def rss(pid: int) -> int:
    total = 0
    for p in tree(pid):
        with contextlib.suppress(OSError):
            m = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{p}/status").read_text())
            total += int(m.group(1)) * 1024 if m else 0
    return total


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# -- targets ------------------------------------------------------------------------------
class Relay:
    name = "relay"
    path = "/streams/b"

    def __init__(self, rate: float, drop_every: float = 0.0) -> None:
        self.upstream = Proc(
            [*LOAD, "--role", "upstream", "--rate", str(rate), "--drop-every", str(drop_every)]
        )
        up = int(self.upstream.line())
        self.server = Proc(
            [
                sys.executable,
                "-m",
                "streamvisor",
                "relay",
                f"http://127.0.0.1:{up}/",
                "--name",
                "b",
                "--listen",
                "127.0.0.1:0",
                "--backoff-initial",
                "0.05",
                "--log-level",
                "warning",
            ]
        )
        self.port = int(self.server.line().rsplit(":", 1)[1])
        self.pid = self.server.p.pid

    def cuts(self) -> int:
        text = (
            urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5)
            .read()
            .decode()
        )
        m = re.search(r'streamvisor_relay_slow_client_cuts_total\{stream="b"\} (\S+)', text)
        return int(float(m.group(1))) if m else -1

    def stop(self) -> None:
        self.server.stop()
        self.upstream.stop()


NGINX_CONF = """
load_module {module};
worker_processes 1;
worker_rlimit_nofile 19000;
daemon off;
error_log {prefix}/error.log warn;
pid {prefix}/nginx.pid;
events {{ worker_connections 18000; }}
http {{
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 600s;
  client_body_temp_path {prefix}/body; proxy_temp_path {prefix}/proxy;
  fastcgi_temp_path {prefix}/fcgi; uwsgi_temp_path {prefix}/uwsgi; scgi_temp_path {prefix}/scgi;
  nchan_shared_memory_size 256M;
  nchan_message_buffer_length 1000;
  nchan_message_timeout 300s;
  server {{
    listen 127.0.0.1:{port};
    location = /pub {{ nchan_publisher; nchan_channel_id b; }}
    location = /sub {{ nchan_subscriber eventsource; nchan_channel_id b;
                      nchan_subscriber_first_message newest; }}
  }}
}}
"""


class Nchan:
    name = "nchan"
    path = "/sub"

    def __init__(self, rate: float) -> None:
        self.prefix = tempfile.mkdtemp(prefix="nchan-bench-")
        self.port = free_port()
        conf = Path(self.prefix) / "nginx.conf"
        conf.write_text(NGINX_CONF.format(module=NCHAN_MODULE, prefix=self.prefix, port=self.port))
        self.server = Proc(["nginx", "-c", str(conf), "-p", self.prefix], stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.2),
            ):
                break
            time.sleep(0.05)
        self.pid = self.server.p.pid
        self.publisher = Proc(
            [*LOAD, "--role", "nchan-pub", "--port", str(self.port), "--rate", str(rate)]
        )
        self.publisher.line()

    def stop(self) -> None:
        self.publisher.stop()
        self.server.stop()
        shutil.rmtree(self.prefix, ignore_errors=True)


def ensure_nchan() -> bool:
    if shutil.which("nginx") and os.path.exists(NCHAN_MODULE):
        return True
    print("installing nginx-light and libnginx-mod-nchan from Debian ...", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], env=env, check=False)
    subprocess.run(
        [
            "apt-get",
            "install",
            "-y",
            "-qq",
            "--no-install-recommends",
            "nginx-light",
            "libnginx-mod-nchan",
        ],
        env=env,
        check=False,
    )
    return bool(shutil.which("nginx")) and os.path.exists(NCHAN_MODULE)
