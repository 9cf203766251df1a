"""Logging configuration for the command line: text or JSON lines on stderr, redacted.

Rule: only the CLI calls ``configure_logging``; library modules just use
``logging.getLogger(__name__)``. The handler's ``RedactingFilter`` is the last line of defence
for secrets: it scrubs the final message, string extras and exception text of every record.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from collections.abc import Mapping
from typing import IO, Any, Protocol

__all__ = ["JsonFormatter", "RedactingFilter", "Scrubber", "TextFormatter", "configure_logging"]

FORMATS = ("text", "json")

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys() | {"message", "asctime", "taskName"}
)
_PLAIN_FORMATTER = logging.Formatter()


class Scrubber(Protocol):
    """What the filter needs from a ``streamvisor.policy.redact.Redactor``."""

    def scrub(self, text: str) -> str:
        """Return ``text`` with every known secret replaced."""
        ...


def _timestamp(created: float) -> str:
    """Return ``2026-11-23T10:00:00.123Z`` for an epoch time."""
    when = dt.datetime.fromtimestamp(created, tz=dt.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _RECORD_ATTRS and k[:1] != "_"}


class TextFormatter(logging.Formatter):
    """``2026-11-23T10:00:00.123Z INFO streamvisor.actors.supervisor: message`` (UTC)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """Return the record's time as RFC 3339 UTC with milliseconds."""
        return _timestamp(record.created)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, JSON-serialisable extras, exc."""

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as one line of JSON."""
        out: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in _extras(record).items():
            if key in out or key in ("exc", "stack"):
                continue
            try:
                json.dumps(value)
            except (TypeError, ValueError):
                continue  # not serialisable: left out rather than guessed at
            out[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exc"] = record.exc_text
        if record.stack_info:
            out["stack"] = record.stack_info
        return json.dumps(out, ensure_ascii=False, default=str)


class RedactingFilter(logging.Filter):
    """Scrub secrets from a record's final message, string extras and exception text.

    Args:
        redactor: any object with ``scrub(str) -> str``, normally a
            ``streamvisor.policy.redact.Redactor``.
    """

    def __init__(self, redactor: Scrubber) -> None:
        super().__init__()
        self._redactor = redactor

    def _scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            return self._redactor.scrub(value)
        if isinstance(value, Mapping):
            return {k: self._scrub(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._scrub(v) for v in value]
        return value

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place; never drop it."""
        try:
            message = record.getMessage()
        except Exception:
            return True  # a broken format: let the handler report it through handleError
        record.msg = self._redactor.scrub(message)
        record.args = None
        for key, value in _extras(record).items():
            setattr(record, key, self._scrub(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = _PLAIN_FORMATTER.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._redactor.scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = self._redactor.scrub(record.stack_info)
        return True


class _NoThirdPartyTraceback(logging.Filter):
    """urllib3 logs some server quirks (a malformed header line) at WARNING with a traceback,
    then uses the response anyway: keep its one-line message, drop the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Strip the exception of a urllib3 record below ERROR; never drop a record."""
        if record.exc_info and record.levelno < logging.ERROR and record.name.startswith("urllib3"):
            record.exc_info = None
            record.exc_text = None
        return True


class _StreamvisorHandler(logging.StreamHandler[IO[str]]):
    """Marks the root handler ``configure_logging`` installed, so a second call replaces it."""


def _parse_level(level: str) -> int:
    names = logging.getLevelNamesMapping()
    number = names.get(str(level).strip().upper())
    if number is None or number == logging.NOTSET:
        choices = "debug, info, warning, error, critical"
        raise ValueError(f"invalid log level {level!r}: expected one of {choices}")
    return number


def configure_logging(
    level: str = "INFO",
    fmt: str = "text",
    *,
    redactor: Scrubber | None = None,
    stream: IO[str] | None = None,
) -> logging.Handler:
    """Configure the root logger: one handler writing ``fmt`` lines to stderr.

    Calling it again replaces the handler it installed before and leaves other handlers alone.

    Args:
        level: a level name, case-insensitive (``debug``, ``INFO``, ...).
        fmt: ``text`` or ``json``.
        redactor: scrubs secrets from every record this handler writes.
        stream: where to write instead of ``sys.stderr``.

    Returns:
        The installed handler.

    Raises:
        ValueError: ``level`` or ``fmt`` is not recognised.
    """
    number = _parse_level(level)
    if fmt not in FORMATS:
        raise ValueError(f"invalid log format {fmt!r}: expected one of {', '.join(FORMATS)}")
    handler = _StreamvisorHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(_NoThirdPartyTraceback())
    if redactor is not None:
        handler.addFilter(RedactingFilter(redactor))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _StreamvisorHandler)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(number)
    logging.getLogger("urllib3.connectionpool").setLevel(logging.WARNING)
    pykka_level = logging.NOTSET if number <= logging.DEBUG else logging.WARNING
    logging.getLogger("pykka").setLevel(pykka_level)
    return handler
