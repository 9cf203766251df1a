"""Start and stop the real ``mcp`` SDK server (``mcp_real_server.py`` here) in a subprocess."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from typing import Any

import requests

_SCRIPT = os.path.join(os.path.dirname(__file__), "mcp_real_server.py")


class RealServer:
    """One server process; ``restart()`` kills it and starts a new one on the same port."""

    def __init__(self, app: str = "streamable") -> None:
        self.app = app
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return self.base + ("/sse" if self.app == "sse" else "/mcp")

    def start(self, timeout: float = 30.0) -> RealServer:
        self.proc = subprocess.Popen(
            [sys.executable, _SCRIPT, "--port", str(self.port), "--app", self.app],
            stdout=subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            self.stop()
            raise RuntimeError("the mcp test server did not start")
        self.port = int(self.proc.stdout.readline())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:  # listening already; wait for the app's lifespan
            try:
                requests.get(self.base + "/control/stats", timeout=1).raise_for_status()
                return self
            except requests.RequestException:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("the mcp test server did not become ready")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def control(self, path: str, **params: Any) -> Any:
        method = "GET" if path == "stats" else "POST"
        response = requests.request(method, f"{self.base}/control/{path}", params=params, timeout=5)
        response.raise_for_status()
        return response.json()
