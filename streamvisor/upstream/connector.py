"""``HTTPConnector``: the default connection factory, with what a stream keeps between attempts.

A connection lives for one attempt; some things must outlive it, per stream:

* **Cookies.** A browser's ``EventSource`` sends back the cookies its origin set (load
  balancers pin a client to a backend with a sticky-session cookie). Each stream gets its
  own jar, so streams never see each other's cookies; the daemon, ``tail`` and the API
  all use this. The jar is made at the first ``Set-Cookie``: a stream that never gets a
  cookie costs one absent dict entry (the lead's budget: 1000 idle streams within 40 MiB).
* **What was already reported**, so a WARNING about the same problem (an id that cannot be
  sent) is logged once, not on every reconnect.

All streams share one ``requests.Session`` (connection pool) whose own jar refuses every
cookie: a session per stream costs about 12 KiB.
"""

from __future__ import annotations

import http.cookiejar
import threading
from typing import Protocol

import requests
import requests.adapters
from requests.cookies import RequestsCookieJar, extract_cookies_to_jar

from streamvisor.spec import StreamSpec
from streamvisor.upstream.connection import Connection
from streamvisor.upstream.watch import WatchingAdapter

__all__ = ["HTTPConnector", "StreamMemory", "shared_session"]

_shared: requests.Session | None = None
_shared_lock = threading.Lock()


def shared_session() -> requests.Session:
    """One process-wide session (one connection pool) for every stream.

    A session per stream costs about 12 KiB; with a thousand streams that is most of the
    memory budget. The session's own jar keeps no cookie: each stream's cookies live in its
    ``HTTPConnector`` jar and are passed per request, so streams never see each other's.
    """
    global _shared
    with _shared_lock:
        if _shared is None:
            session = requests.Session()
            session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
            adapter = WatchingAdapter(pool_connections=16, pool_maxsize=256)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            _shared = session
        return _shared


class StreamMemory(Protocol):
    """What a connection may keep per stream across attempts (``HTTPConnector``)."""

    def cookie_jar(self, stream: str, create: bool = False) -> RequestsCookieJar | None:
        """The stream's cookie jar, made when ``create`` is true; None otherwise."""
        ...

    def remember_cookies(self, stream: str, response: requests.Response) -> None:
        """Keep the cookies ``response`` sets in the stream's jar."""
        ...

    def first_report(self, stream: str, key: str) -> bool:
        """True when ``key`` is not the problem last reported for ``stream``."""
        ...


class HTTPConnector:
    """``connector(spec, last_event_id) -> Connection``, keeping per-stream memory.

    Thread-safe: each stream's attempts run in that stream's thread, and different streams
    touch different entries.

    Args:
        session: the session to send with (not closed here); ``shared_session()`` when None.
    """

    __slots__ = ("_jars", "_lock", "_reported", "_session")

    def __init__(self, session: requests.Session | None = None) -> None:
        self._session = session
        self._jars: dict[str, RequestsCookieJar] = {}
        self._reported: dict[str, str] = {}
        self._lock = threading.Lock()

    def __call__(self, spec: StreamSpec, last_event_id: str | None) -> Connection:
        """A connection for one attempt of ``spec``'s stream."""
        session = self._session if self._session is not None else shared_session()
        return Connection(spec, last_event_id, session=session, memory=self)

    def cookie_jar(self, stream: str, create: bool = False) -> RequestsCookieJar | None:
        """The stream's cookie jar; None when it has none and ``create`` is false."""
        jar = self._jars.get(stream)
        if jar is None and create:
            with self._lock:
                jar = self._jars.setdefault(stream, RequestsCookieJar())
        return jar

    def remember_cookies(self, stream: str, response: requests.Response) -> None:
        """Keep the cookies ``response`` sets in the stream's jar (made at the first one)."""
        if "Set-Cookie" not in response.headers or response.request is None:
            return
        jar = self.cookie_jar(stream, create=True)
        extract_cookies_to_jar(jar, response.request, response.raw)  # type: ignore[no-untyped-call]

    def first_report(self, stream: str, key: str) -> bool:
        """True when ``key`` differs from the last problem reported for ``stream`` (then it
        becomes the last one): report it. False for a repeat."""
        with self._lock:
            if self._reported.get(stream) == key:
                return False
            self._reported[stream] = key
            return True

    def forget(self, stream: str) -> None:
        """Drop a removed stream's cookies and reports."""
        with self._lock:
            self._jars.pop(stream, None)
            self._reported.pop(stream, None)
