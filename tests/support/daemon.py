"""Run ``streamvisor run CONFIG`` as a subprocess in a test, and look at what it leaves behind.

Rules: the config is written to the test's tmp_path; stdout and stderr go to files (never
pipes a test forgets to drain); every wait polls an observable condition (the output file,
the admin endpoint, stderr) until a deadline; and ``running_daemon`` always ends the process
in its ``finally``: SIGTERM, then ``kill -9`` and a failed test if it hangs. The admin
endpoint listens on 127.0.0.1 port 0 (``ADMIN``): the daemon picks the port and logs it
(``admin endpoint on http://HOST:PORT``), and ``DaemonProcess.admin_address`` reads it there.
"""

from __future__ import annotations

import collections
import contextlib
import http.client
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from streamvisor.sinks.file import read_jsonl
from tests.support.wait import wait_until

STARTUP_DEADLINE = 10.0
STOP_DEADLINE = 15.0
POLL_STEP = 0.02


ADMIN: dict[str, Any] = {"listen": "127.0.0.1:0"}
"""The ``admin:`` section of a test daemon: loopback, a port the OS picks."""
ADMIN_LINE = re.compile(r"admin endpoint on http://(\S+):(\d+) ")
"""The daemon's log line that names the admin endpoint's bound address (``daemon/run.py``)."""
FAST_DEFAULTS: dict[str, Any] = {
    "read_timeout": 5,
    "backoff": {"initial": 0.01, "max": 0.2, "jitter": 0.3, "reset_after": 5},
    "max_restarts": {"count": 0, "within": 60},
    "breaker": {"failures": 0},
}
"""Stream defaults that reconnect fast and never give up (a test's upstream misbehaves)."""


def daemon_config(
    folder: Path,
    streams: Sequence[Mapping[str, Any]],
    *,
    defaults: Mapping[str, Any] = FAST_DEFAULTS,
    **sections: Any,
) -> dict[str, Any]:
    """A daemon config as the tests run it.

    Streams get ``defaults``; a file sink ``archive`` writes every event to
    ``folder/events.jsonl`` at once (``flush_interval: 0``); checkpoints go to
    ``folder/checkpoints.db`` every 0.1 s; the admin endpoint is ``ADMIN``. ``sections``
    add or replace top-level keys (``shutdown_timeout=5``, ``sinks=[...]``).
    """
    config: dict[str, Any] = {
        "defaults": dict(defaults),
        "streams": [dict(s) for s in streams],
        "sinks": [
            {
                "name": "archive",
                "type": "file",
                "path": str(folder / "events.jsonl"),
                "flush_interval": 0,
            }
        ],
        "checkpoint": {"path": str(folder / "checkpoints.db"), "interval": 0.1},
        "admin": dict(ADMIN),
    }
    config.update(sections)
    return config


def write_config(path: Path, config: Mapping[str, Any] | str) -> Path:
    """Write ``config`` (YAML text, or a mapping dumped as YAML) to ``path``."""
    text = config if isinstance(config, str) else yaml.safe_dump(dict(config), sort_keys=False)
    path.write_text(text, encoding="utf-8")
    return path


def ids_by_stream(path: Path) -> dict[str, list[int]]:
    """The integer ids per stream in a JSONL events file, in file order ({} if no file)."""
    result: dict[str, list[int]] = collections.defaultdict(list)
    if not path.exists():
        return {}
    for event in read_jsonl(str(path)):
        if event.id is not None:
            result[event.stream].append(int(event.id))
    return dict(result)


def count_ids(path: Path, stream: str) -> int:
    """How many events of ``stream`` the JSONL file holds."""
    return len(ids_by_stream(path).get(stream, []))


class DaemonProcess:
    """One ``streamvisor run`` subprocess with its config, output files and admin endpoint.

    Args:
        workdir: folder for the config, stdout and stderr files (and the process's cwd).
        config: the config: YAML text or a mapping (written to ``workdir``), or the path
            of an existing file.
        env: extra environment variables.
        name: prefix of the files, so a test can run several daemons one after another.
        log_level: the daemon's ``--log-level``.
    """

    def __init__(
        self,
        workdir: Path,
        config: Mapping[str, Any] | str | Path,
        *,
        env: Mapping[str, str] | None = None,
        name: str = "daemon",
        log_level: str = "info",
    ) -> None:
        self.workdir = workdir
        if isinstance(config, Path):
            self.config_path = config  # an existing file, run as it is
        else:
            self.config_path = write_config(workdir / f"{name}.yaml", config)
        self.stdout_path = workdir / f"{name}.stdout"
        self.stderr_path = workdir / f"{name}.stderr"
        self._admin: tuple[str, int] | None = None
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.log_level = log_level
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> DaemonProcess:
        """Start the process (stdout and stderr to files)."""
        command = [
            sys.executable,
            "-m",
            "streamvisor",
            "run",
            str(self.config_path),
            "--log-level",
            self.log_level,
        ]
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                command, stdout=out, stderr=err, cwd=self.workdir, env=self.env
            )
        return self

    # -- state -------------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        """True while the process runs."""
        return self.proc is not None and self.proc.poll() is None

    def stderr(self) -> str:
        """Everything the process wrote to stderr so far."""
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def stdout(self) -> str:
        """Everything the process wrote to stdout so far."""
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    def wait_for(self, predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
        """Wait until ``predicate()`` holds; fail (with stderr) at the deadline or if the
        process exits first."""
        died: list[int] = []

        def check() -> bool:
            if predicate():
                return True
            if self.proc is not None and self.proc.poll() is not None:
                died.append(self.proc.returncode)
                return True
            return False

        if not wait_until(check, timeout, POLL_STEP):
            pytest.fail(f"timed out after {timeout}s waiting for {what}\n{self._tail()}")
        if died and not predicate():
            pytest.fail(f"daemon exited ({died[0]}) while waiting for {what}\n{self._tail()}")

    def wait_for_log(self, text: str, timeout: float = 10.0) -> None:
        """Wait until ``text`` appears on stderr."""
        self.wait_for(lambda: text in self.stderr(), f"{text!r} on stderr", timeout)

    def _tail(self) -> str:
        return "--- daemon stderr (tail) ---\n" + "\n".join(self.stderr().splitlines()[-30:])

    # -- admin endpoint ----------------------------------------------------------------
    @property
    def has_admin(self) -> bool:
        """True if the config has an ``admin:`` section."""
        config = yaml.safe_load(self.config_path.read_text(encoding="utf-8"))
        return isinstance(config, dict) and config.get("admin") is not None

    @property
    def admin_address(self) -> tuple[str, int] | None:
        """The admin endpoint's bound ``(host, port)``, from the daemon's log line (None
        until it is logged; the line is at INFO, so ``log_level`` must show it)."""
        if self._admin is None:
            match = ADMIN_LINE.search(self.stderr())
            if match is not None:
                self._admin = (match.group(1), int(match.group(2)))
        return self._admin

    def wait_for_admin(self, timeout: float = STARTUP_DEADLINE) -> tuple[str, int]:
        """Wait until the admin endpoint is logged and answers; its ``(host, port)``."""
        self.wait_for(lambda: self.admin_address is not None, "the admin endpoint's log line")
        self.wait_for(self.admin_answers, "the admin endpoint", timeout)
        assert self._admin is not None
        return self._admin

    def get(self, path: str, timeout: float = 5.0) -> tuple[int, str]:
        """GET ``path`` from the admin endpoint: (status, body text).

        Raises:
            OSError: nothing listens (yet).
        """
        address = self.admin_address
        assert address is not None, f"no admin endpoint logged (yet)\n{self._tail()}"
        conn = http.client.HTTPConnection(*address, timeout=timeout)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.read().decode("utf-8")
        finally:
            conn.close()

    def get_json(self, path: str) -> Any:
        """GET ``path`` and decode its JSON body."""
        status, body = self.get(path)
        assert status == 200, f"GET {path}: {status} {body}"
        return json.loads(body)

    def admin_answers(self, path: str = "/health") -> bool:
        """True once the admin endpoint answers (any status)."""
        try:
            self.get(path, timeout=1.0)
        except OSError:
            return False
        return True

    def stream_info(self, stream: str) -> dict[str, Any] | None:
        """The stream's entry in ``/streams`` (None if not listed or no answer)."""
        try:
            status, body = self.get("/streams")
        except OSError:
            return None
        if status != 200:
            return None
        info: dict[str, Any] | None = json.loads(body)["streams"].get(stream)
        return info

    # -- signals and exit --------------------------------------------------------------
    def send_signal(self, sig: int) -> None:
        """Send ``sig`` to the process."""
        assert self.proc is not None
        self.proc.send_signal(sig)

    def terminate(self, timeout: float = STOP_DEADLINE) -> int:
        """SIGTERM, then wait for the exit; ``kill -9`` and fail the test if it hangs."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def wait(self, timeout: float) -> int:
        """Wait for the exit code; ``kill -9`` and fail the test at the deadline."""
        assert self.proc is not None
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"daemon did not exit within {timeout}s; killed\n{self._tail()}")

    def kill(self) -> None:
        """``kill -9`` and reap the process."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=STOP_DEADLINE)


@contextlib.contextmanager
def running_daemon(
    workdir: Path,
    config: Mapping[str, Any] | str | Path,
    *,
    env: Mapping[str, str] | None = None,
    name: str = "daemon",
    log_level: str = "info",
    wait_ready: bool = True,
) -> Iterator[DaemonProcess]:
    """Start a daemon and always end it: a daemon still running when the block ends is sent
    SIGTERM; one that then hangs is killed with SIGKILL and the test fails.

    With ``wait_ready`` (and an ``admin:`` section), the block starts once the admin
    endpoint is logged and ``/health`` answers.
    """
    daemon = DaemonProcess(workdir, config, env=env, name=name, log_level=log_level).start()
    failed = False
    try:
        if wait_ready and daemon.has_admin:
            daemon.wait_for_admin()
        yield daemon
    except BaseException:
        failed = True
        raise
    finally:
        if failed:
            daemon.kill()
        elif daemon.alive:
            daemon.terminate()
