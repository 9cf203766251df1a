"""The admin endpoint's views: the status page ``/``, its feed ``/status/events``, and the
stream commands ``POST /streams/<name>/reconnect|close|start``.

A WSGI application the admin server hands these paths to (``handles(path)``). It reads
status through the ``status`` callable and acts through ``StreamCommands``
(``Streamvisor.reconnect`` / ``close``); who may do what is decided in ``views.auth``.
Answers are JSON (``{"stream", "command", "ok", "changed", "state"}``, or ``{"error": ...}``
with 401, 403, 404, 405, 409 or 503), never a traceback.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.resources
import json
import logging
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol
from wsgiref.types import StartResponse, WSGIEnvironment

from streamvisor.views import auth
from streamvisor.views.feed import FeedSlots, FrameCache, feed

__all__ = ["COMMANDS", "FEED_PATH", "StreamCommands", "ViewRoutes"]

log = logging.getLogger(__name__)

COMMANDS = ("reconnect", "close", "start")
FEED_PATH = "/status/events"
MAX_FEEDS = 16
STARTABLE = frozenset({"closed", "failed", "disconnected"})
"""States ``start`` acts on; in any other state the stream is already running."""

_JSON = "application/json"
_COMMAND = re.compile(r"^/streams/(?P<name>.+)/(?P<command>reconnect|close|start)$")
Answer = tuple[str, list[tuple[str, str]], bytes]


class StreamCommands(Protocol):
    """What the commands need: ``Streamvisor.reconnect`` and ``Streamvisor.close``."""

    def reconnect(self, name: str) -> bool:
        """Reconnect (or start) the stream; False when it is unknown or stopping."""
        ...

    def close(self, name: str) -> bool:
        """Close the stream for good; False when it is unknown."""
        ...


def _page() -> tuple[bytes, str]:
    """The page's bytes and a Content-Security-Policy allowing exactly its inline code."""
    html = importlib.resources.files("streamvisor.views").joinpath("page.html").read_bytes()
    hashes: dict[str, list[str]] = {"script": [], "style": []}
    for tag in hashes:
        for body in re.findall(rb"<%s>(.*?)</%s>" % (tag.encode(), tag.encode()), html, re.S):
            digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
            hashes[tag].append(f"'sha256-{digest}'")
    csp = (
        "default-src 'none'; connect-src 'self'; img-src 'self' data:; "
        f"script-src {' '.join(hashes['script'])}; style-src {' '.join(hashes['style'])}; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    return html, csp


def _json(status: str, value: Any, *extra: tuple[str, str]) -> Answer:
    body = json.dumps(value).encode()
    return status, [("Content-Type", _JSON), *extra], body


class ViewRoutes:
    """WSGI app for ``/``, ``/status/events`` and ``POST /streams/<name>/<command>``.

    Args:
        status: returns the JSON-ready status mapping (``streams``, ``subscribers``, ...).
        closing: set by the admin server's ``stop()``; open feeds end within a tick.
        commands: what commands act on; None answers them with 503.
        token: the ``admin.token``, or None (no token required).
        log_lines: recent WARNING+ log records for the page, or None.
        interval: seconds between feed frames.
        max_feeds: open feeds allowed at once.
    """

    def __init__(
        self,
        status: Callable[[], Mapping[str, Any]],
        closing: threading.Event,
        *,
        commands: StreamCommands | None = None,
        token: str | None = None,
        log_lines: Callable[[], list[dict[str, Any]]] | None = None,
        interval: float = 1.0,
        max_feeds: int = MAX_FEEDS,
    ) -> None:
        self._status = status
        self._closing = closing
        self._commands = commands
        self._token = token
        self._interval = interval
        self._cache = FrameCache(status, log_lines, ttl=min(0.5, interval / 2))
        self._slots = FeedSlots(max_feeds)
        self._page: tuple[bytes, str] | None = None

    @property
    def open_feeds(self) -> int:
        """How many ``/status/events`` responses are open."""
        return self._slots.open

    @staticmethod
    def handles(path: str) -> bool:
        """True for the paths this app answers."""
        return path in ("/", FEED_PATH) or _COMMAND.match(path) is not None

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "/")
        if path == FEED_PATH and method == "GET":
            return self._feed(environ, start_response)
        if path in ("/", FEED_PATH):
            if method not in ("GET", "HEAD"):
                answer = _json(
                    "405 Method Not Allowed",
                    {"error": "method not allowed"},
                    ("Allow", "GET, HEAD"),
                )
            elif path == "/":
                answer = self._serve_page()
            else:
                answer = self._feed_probe(environ)
        else:
            answer = self._command(environ, method, path)
        status, headers, body = answer
        headers.append(("Content-Length", str(len(body))))
        headers.append(("Cache-Control", "no-store"))
        start_response(status, headers)
        return [] if method == "HEAD" else [body]

    # -- page and feed -------------------------------------------------------------------
    def _serve_page(self) -> Answer:
        if self._page is None:
            self._page = _page()
        html, csp = self._page
        headers = [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Security-Policy", csp),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer"),
        ]
        return "200 OK", headers, html

    def _unauthorized(self) -> Answer:
        return _json(
            "401 Unauthorized",
            {"error": "token required"},
            ("WWW-Authenticate", 'Bearer realm="streamvisor"'),
        )

    def _feed_probe(self, environ: WSGIEnvironment) -> Answer:
        """HEAD on the feed: tells the page whether its token is accepted."""
        if not auth.authorized(environ, self._token, allow_query=True):
            return self._unauthorized()
        return "200 OK", [("Content-Type", "text/event-stream; charset=utf-8")], b""

    def _feed(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        answer: Answer | None = None
        if not auth.authorized(environ, self._token, allow_query=True):
            answer = self._unauthorized()
        elif self._closing.is_set():
            answer = _json("503 Service Unavailable", {"error": "stopping"})
        elif not self._slots.acquire():
            answer = _json(
                "503 Service Unavailable",
                {"error": "too many open feeds"},
                ("Retry-After", "5"),
            )
        if answer is not None:
            status, headers, body = answer
            headers.append(("Content-Length", str(len(body))))
            start_response(status, headers)
            return [body]
        start_response(
            "200 OK",
            [
                ("Content-Type", "text/event-stream; charset=utf-8"),
                ("Cache-Control", "no-store"),
                ("X-Accel-Buffering", "no"),  # proxies such as nginx: do not buffer
            ],
        )
        return feed(self._cache, self._slots, self._closing, interval=self._interval)

    # -- commands ------------------------------------------------------------------------
    def _command(self, environ: WSGIEnvironment, method: str, path: str) -> Answer:
        match = _COMMAND.match(path)
        assert match is not None
        command = match["command"]
        try:
            # PATH_INFO is decoded as Latin-1 (PEP 3333); names are UTF-8.
            name = match["name"].encode("latin-1").decode("utf-8")
        except UnicodeError:
            return _json("404 Not Found", {"error": "unknown stream"})
        if method != "POST":
            return _json("405 Method Not Allowed", {"error": "use POST"}, ("Allow", "POST"))
        if auth.cross_site(environ):
            return _json("403 Forbidden", {"error": "cross-site request refused"})
        if not auth.authorized(environ, self._token, allow_query=False):
            return self._unauthorized()
        if self._token is None and not auth.local_host(environ):
            return _json(
                "403 Forbidden",
                {"error": "commands through a host name need admin.token"},
            )
        if self._commands is None:
            return _json("503 Service Unavailable", {"error": "commands unavailable"})
        try:
            return self._run(self._commands, name, command, environ)
        except Exception as exc:  # an ask that timed out, a stopped actor system
            log.warning("admin: %s %s failed: %s", command, name, type(exc).__name__)
            return _json(
                "503 Service Unavailable",
                {"error": "command failed", "reason": type(exc).__name__, "stream": name},
            )

    def _state(self, name: str) -> str | None:
        info = self._status().get("streams", {}).get(name)
        return str(info.get("state")) if isinstance(info, Mapping) else None

    def _run(
        self, commands: StreamCommands, name: str, command: str, environ: WSGIEnvironment
    ) -> Answer:
        before = self._state(name)
        if before is None:
            return _json("404 Not Found", {"error": "unknown stream", "stream": name})
        if (command == "start" and before not in STARTABLE) or (
            command == "close" and before == "closed"
        ):
            body = {"stream": name, "command": command, "ok": True, "changed": False}
            return _json("200 OK", {**body, "state": before})
        act = commands.close if command == "close" else commands.reconnect
        log.info(
            "admin: %s stream %s (from %s)",
            command,
            name,
            environ.get("REMOTE_ADDR", "?"),
            extra={"stream": name, "command": command},
        )
        if not act(name):
            return _json(
                "409 Conflict",
                {"error": "refused (the daemon is stopping)", "stream": name, "ok": False},
            )
        after = self._state(name)
        body = {"stream": name, "command": command, "ok": True, "changed": True}
        return _json("200 OK", {**body, "state": after})
