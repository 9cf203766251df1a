"""A real ``redis-server`` for the cluster tests.

One server per test session on a free loopback port, persistence off (``--save ""
--appendonly no``); it is ready once it answers PING (deadline), and it is stopped by its PID
(SIGTERM, then SIGKILL) however the session ends. Each test starts from an empty database.
Without ``redis-server`` on PATH the tests skip, except under CI (``CI`` set), where
``.ci/run`` installs it and a missing server is a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

redis = pytest.importorskip("redis")

READY_DEADLINE = 10.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@dataclass
class RedisServer:
    """A running ``redis-server``: its process, port and URL."""

    proc: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self, **kwargs: Any) -> Any:
        """A new ``redis.Redis`` on this server (decoded responses unless told otherwise)."""
        kwargs.setdefault("decode_responses", True)
        return redis.Redis.from_url(self.url, **kwargs)

    def cpu_seconds(self) -> float:
        """User + system CPU the server has used so far (from /proc/PID/stat)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_redis(workdir: Path) -> RedisServer:
    """Start ``redis-server`` on a free loopback port and wait for PING (or fail)."""
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed (.ci/run installs it)")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    for _ in range(3):  # a port free a moment ago may be taken in between: try another
        port = _free_port()
        log = open(workdir / f"redis-{port}.log", "wb")  # noqa: SIM115 (closed below)
        proc = subprocess.Popen(
            [
                binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(workdir),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        server = RedisServer(proc, port)
        if _wait_ready(server):
            return server
        stop_redis(server)
    pytest.fail("redis-server did not answer PING within the deadline")


def _wait_ready(server: RedisServer) -> bool:
    deadline = time.monotonic() + READY_DEADLINE
    client = server.client(socket_timeout=1.0, socket_connect_timeout=1.0)
    try:
        while time.monotonic() < deadline:
            if server.proc.poll() is not None:
                return False
            try:
                if client.ping():
                    return True
            except redis.RedisError:
                time.sleep(0.01)
        return False
    finally:
        client.close()


def stop_redis(server: RedisServer) -> None:
    """SIGTERM by PID, then SIGKILL if it lingers; always reaps the process."""
    if server.proc.poll() is None:
        server.proc.terminate()
        try:
            server.proc.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait(timeout=5.0)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """The session's redis-server."""
    server = start_redis(tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        stop_redis(server)


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The server's URL, its database flushed for this test."""
    client = redis_server.client()
    try:
        client.flushall()
        client.script_flush()
    finally:
        client.close()
    return redis_server.url


@pytest.fixture
def rclient(redis_url: str, redis_server: RedisServer) -> Iterator[Any]:
    """A decoded ``redis.Redis`` client on the flushed server; closed after the test."""
    client = redis_server.client()
    try:
        yield client
    finally:
        client.close()
