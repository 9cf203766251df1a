"""An in-memory ring of the latest log records at WARNING and above, for the status page.

Rule: bounded (a ``deque`` with ``maxlen``), redacted before it is stored (the same
``RedactingFilter`` as the stderr handler), and cheap under the lock: a record is formatted
once when it is emitted, never when it is read.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import threading
from typing import Any

from streamvisor.daemon.logsetup import RedactingFilter, Scrubber

__all__ = ["RingLogHandler"]

DEFAULT_CAPACITY = 50


class RingLogHandler(logging.Handler):
    """Keep the last ``capacity`` records (WARNING and above by default) as plain dicts.

    Args:
        capacity: how many records to keep; older ones are forgotten.
        level: the lowest level kept.
        redactor: scrubs secrets from each record before it is kept.
    """

    def __init__(
        self,
        capacity: int = DEFAULT_CAPACITY,
        level: int = logging.WARNING,
        *,
        redactor: Scrubber | None = None,
    ) -> None:
        super().__init__(level)
        self._ring: collections.deque[dict[str, Any]] = collections.deque(maxlen=capacity)
        self._ring_lock = threading.Lock()
        if redactor is not None:
            self.addFilter(RedactingFilter(redactor))

    def emit(self, record: logging.LogRecord) -> None:
        """Store the record as ``{"ts", "level", "logger", "msg"}`` (message one line)."""
        try:
            message = record.getMessage()
        except Exception:
            self.handleError(record)
            return
        when = dt.datetime.fromtimestamp(record.created, tz=dt.UTC)
        line = {
            "ts": when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": message.splitlines()[0] if message else "",
        }
        with self._ring_lock:
            self._ring.append(line)

    def lines(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The kept records, oldest first (the last ``limit`` of them when given)."""
        with self._ring_lock:
            items = list(self._ring)
        return items[-limit:] if limit is not None and limit > 0 else items
