"""A real ``redis-server`` for the tests of the cluster mode, the Redis checkpoint store and
the ``redis_streams`` sink.

One server per test session, listening on a Unix socket in the session's temporary folder
(``--port 0`` turns TCP off: redis-server cannot bind TCP port 0 and report the port, and a
socket path cannot be taken by anyone else, so there is no free-port race), persistence off
(``--save "" --appendonly no``). It is ready once it answers PING (deadline), and it is
stopped by its PID (SIGTERM, then SIGKILL) however the session ends. Each test starts from an
empty database. Without ``redis-server`` on PATH (or the ``redis`` package) the tests that
use it skip, except under CI (``CI`` set), where ``.ci/run`` installs it and a missing server
is a failure.

The fixtures (``redis_server``, ``redis_url``, ``rclient``) are registered in
``tests/conftest.py``, so that the session shares one server whatever folder a test is in.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

READY_DEADLINE = 10.0


def _redis() -> Any:
    """The ``redis`` package (skips the test without it)."""
    return pytest.importorskip("redis")


@dataclass
class RedisServer:
    """A running ``redis-server``: its process and the path of its Unix socket."""

    proc: subprocess.Popen[bytes]
    socket_path: Path

    @property
    def url(self) -> str:
        """The server's URL (database 0)."""
        return f"unix://{self.socket_path}?db=0"

    def client(self, **kwargs: Any) -> Any:
        """A new ``redis.Redis`` on this server (decoded responses unless told otherwise)."""
        kwargs.setdefault("decode_responses", True)
        return _redis().Redis.from_url(self.url, **kwargs)

    def cpu_seconds(self) -> float:
        """User + system CPU the server has used so far (from /proc/PID/stat)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_redis(workdir: Path) -> RedisServer:
    """Start ``redis-server`` on a Unix socket in ``workdir`` and wait for PING (or fail)."""
    _redis()
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed (.ci/run installs it)")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    socket_path = workdir / "redis.sock"
    with open(workdir / "redis.log", "wb") as log:
        proc = subprocess.Popen(
            [
                binary,
                "--port",
                "0",
                "--unixsocket",
                str(socket_path),
                "--unixsocketperm",
                "700",
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
    server = RedisServer(proc, socket_path)
    if not _wait_ready(server):
        stop_redis(server)
        log_tail = (workdir / "redis.log").read_text(errors="replace")[-2000:]
        pytest.fail(f"redis-server did not answer PING within the deadline\n{log_tail}")
    return server


def _wait_ready(server: RedisServer) -> bool:
    redis = _redis()
    deadline = time.monotonic() + READY_DEADLINE
    client = server.client(socket_timeout=1.0, socket_connect_timeout=1.0)
    pause = 0.01
    try:
        while time.monotonic() < deadline:
            if server.proc.poll() is not None:
                return False
            try:
                if client.ping():
                    return True
            except redis.RedisError:
                time.sleep(pause)  # a separate process: nothing to wait on but its socket
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
