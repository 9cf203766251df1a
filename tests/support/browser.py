"""Drive a headless Chromium from a test over the Chrome DevTools Protocol, on a pipe.

Why a pipe and no library: ``--remote-debugging-pipe`` makes Chromium read CDP messages
(JSON, each ended by a NUL byte) on fd 3 and write them on fd 4, so no port, no WebSocket
client and no driver binary are needed (puppeteer's default transport). Only the handful of
commands the tests use are wrapped: open a page, evaluate JavaScript, take a screenshot.

Rules: every read has a deadline (``select``); ``close()`` asks the browser to quit, waits,
kills it if it hangs, and always reaps it. The browser runs with a fresh profile folder.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

LAUNCH_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--remote-debugging-pipe",
)
DEADLINE = 15.0


def find_chromium() -> str | None:
    """The Chromium binary (Debian's ``chromium``), or None."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class CDPError(Exception):
    """A CDP command answered with an error, or the browser went away."""


class Browser:
    """One headless Chromium process and a CDP session on one page target.

    Args:
        binary: the Chromium executable.
        profile: an empty folder for ``--user-data-dir``.
    """

    def __init__(self, binary: str, profile: Path) -> None:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        flags = [*LAUNCH_FLAGS, f"--user-data-dir={profile}", "about:blank"]
        # bash puts our pipe ends on fds 3 and 4 of the browser (dash cannot name fds above
        # 9; preexec_fn is unsafe in a process with threads).
        script = (
            f"exec {shlex.quote(binary)} {' '.join(shlex.quote(f) for f in flags)} "
            f"3<&{to_browser_r} 4>&{from_browser_w}"
        )
        self._proc = subprocess.Popen(
            ["bash", "-c", script],
            pass_fds=(to_browser_r, from_browser_w),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: close() can kill it all
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self._session: str | None = None
        try:
            target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            attached = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})
            self._session = attached["sessionId"]
            self.call("Page.enable")
            self.call("Runtime.enable")
        except BaseException:
            self.close()
            raise

    # -- protocol ----------------------------------------------------------------------
    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send one command (on the page session once attached) and return its result."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if self._session is not None:
            message["sessionId"] = self._session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + DEADLINE
        while True:
            reply = self._read(deadline)
            if reply.get("id") != self._next_id:
                continue  # an event, or the answer to something else: not needed here
            if "error" in reply:
                raise CDPError(f"{method}: {reply['error']}")
            result: dict[str, Any] = reply.get("result", {})
            return result

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CDPError("no answer from the browser in time")
            ready, _, _ = select.select([self._from_browser], [], [], left)
            if not ready:
                continue
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise CDPError("the browser closed its pipe")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        parsed: dict[str, Any] = json.loads(message)
        return parsed

    # -- what tests use ----------------------------------------------------------------
    def open(self, url: str) -> None:
        """Navigate the page to ``url`` and wait until its document has loaded."""
        self.call("Page.navigate", {"url": url})
        self.wait_for("document.readyState === 'complete' && location.href !== 'about:blank'")

    def evaluate(self, expression: str) -> Any:
        """Evaluate JavaScript in the page (promises awaited) and return its JSON value."""
        result = self.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in result:
            raise CDPError(f"JavaScript error: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = DEADLINE) -> Any:
        """Poll ``expression`` until it is truthy; return its value (CDPError on timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise CDPError(f"still false after {timeout:g}s: {expression}")
            self.evaluate("new Promise(r => setTimeout(r, 50))")

    def screenshot(self, path: Path) -> None:
        """Save a PNG of the page (for looking at it while developing)."""
        data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        """Quit the browser and reap it (killed if it does not quit within 5 s)."""
        try:
            if self._proc.poll() is None:
                self._session = None
                try:
                    self.call("Browser.close")
                except (CDPError, OSError):
                    pass
        finally:
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait(5)
            for fd in (self._to_browser, self._from_browser):
                try:
                    os.close(fd)
                except OSError:
                    pass
