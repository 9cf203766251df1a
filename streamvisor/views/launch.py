"""Run a config's daemon inside this process, for ``streamvisor top CONFIG``.

The daemon runs as it would under ``streamvisor run`` (checkpoints, sinks, reload on demand)
but in a background thread, without signal handlers, and with its admin endpoint moved to a
free loopback port (the config's ``admin.token`` is kept), so ``top`` reads it through HTTP
exactly as it reads a remote daemon.
"""

from __future__ import annotations

import dataclasses
import threading
import time

from streamvisor.config.load import AdminConfig, load_config
from streamvisor.daemon.run import Daemon
from streamvisor.errors import StreamvisorError

__all__ = ["LocalDaemon", "LocalDaemonError"]


class LocalDaemonError(StreamvisorError):
    """The in-process daemon did not start (its reason is already on stderr)."""


class LocalDaemon:
    """A ``Daemon`` for ``path`` running in a thread of this process.

    Args:
        path: the YAML config.

    Raises:
        ConfigErrors: the config is invalid (raised by the constructor).
    """

    def __init__(self, path: str) -> None:
        config = load_config(path)
        token = config.admin.token if config.admin is not None else None
        self.token = token
        self.config = dataclasses.replace(config, admin=AdminConfig("127.0.0.1", 0, token=token))
        self._daemon = Daemon(self.config, path)
        self._thread: threading.Thread | None = None
        self.exit_code: int | None = None

    def start(self, timeout: float = 10.0) -> str:
        """Start the daemon and return its admin base URL (``http://127.0.0.1:PORT``).

        Raises:
            LocalDaemonError: it ended, or did not serve, within ``timeout`` seconds.
        """
        self._thread = threading.Thread(target=self._run, name="streamvisor-top-daemon")
        self._thread.start()
        deadline = time.monotonic() + timeout
        pause = threading.Event()
        while (address := self._daemon.admin_address) is None:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise LocalDaemonError("the daemon did not start")
            pause.wait(0.01)
        return f"http://{address[0]}:{address[1]}"

    def _run(self) -> None:
        self.exit_code = self._daemon.run(install_signals=False)

    def stop(self, timeout: float | None = None) -> None:
        """Stop the daemon gracefully (streams, sinks, checkpoints) and join its thread."""
        self._daemon.request_stop()
        if self._thread is not None:
            limit = self.config.shutdown_timeout + 5.0 if timeout is None else timeout
            self._thread.join(limit)
