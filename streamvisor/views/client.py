"""A small HTTP client for a daemon's admin endpoint: ``/streams`` and the stream commands.

What ``streamvisor top`` uses, so it works the same against a local or a remote daemon. Every
request has a timeout; every failure becomes an ``AdminClientError`` with one short line
(never the token, never a traceback).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import requests

from streamvisor.errors import StreamvisorError
from streamvisor.policy.redact import Redactor, redact_url

__all__ = ["AdminClient", "AdminClientError"]


class AdminClientError(StreamvisorError):
    """The admin endpoint could not be reached or refused the request."""


class AdminClient:
    """Talks to ``base`` (``http://HOST:PORT``, the admin endpoint).

    Args:
        base: the admin endpoint's base URL.
        token: the ``admin.token`` for commands, or None.
        timeout: seconds per request (connect and read).
    """

    def __init__(self, base: str, token: str | None = None, timeout: float = 3.0) -> None:
        self.base = base.rstrip("/")
        self.shown = redact_url(self.base)
        self._timeout = timeout
        self._session = requests.Session()
        self._session.trust_env = False  # never send a loopback admin call through a proxy
        if token:
            self._session.headers["Authorization"] = f"Bearer {token}"
        self._redactor = Redactor([token] if token else [])

    def close(self) -> None:
        """Close the connection pool."""
        self._session.close()

    def streams(self) -> dict[str, Any]:
        """The ``streams`` mapping of ``GET /streams``.

        Raises:
            AdminClientError: unreachable, not an admin endpoint, or not JSON.
        """
        body = self._request("GET", "/streams")
        streams = body.get("streams") if isinstance(body, dict) else None
        if not isinstance(streams, dict):
            raise AdminClientError(f"{self.shown}/streams did not answer a status")
        return streams

    def command(self, stream: str, command: str) -> str:
        """Run ``POST /streams/<stream>/<command>``; return a line saying what happened.

        Raises:
            AdminClientError: unreachable, or the command was refused (401, 404, 409, ...).
        """
        body = self._request("POST", f"/streams/{quote(stream, safe='')}/{command}")
        state = body.get("state") if isinstance(body, dict) else None
        return f"{command} {stream}: {state}" if state else f"{command} {stream}: ok"

    def _request(self, method: str, path: str) -> Any:
        try:
            response = self._session.request(method, self.base + path, timeout=self._timeout)
        except requests.RequestException as exc:
            reason = type(exc).__name__
            if isinstance(exc, requests.ConnectionError):
                reason = "connection refused or unreachable"
            elif isinstance(exc, requests.Timeout):
                reason = f"no answer within {self._timeout:g}s"
            raise AdminClientError(f"cannot reach {self.shown}: {reason}") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code != 200:
            if response.status_code == 401:
                detail = "token required or refused (use --token)"
            elif isinstance(body, dict) and isinstance(body.get("error"), str):
                detail = body["error"]
            else:
                detail = response.reason or "error"
            text = f"{method} {path}: HTTP {response.status_code} {detail}"
            raise AdminClientError(self._redactor.scrub(text))
        if body is None:
            raise AdminClientError(f"{self.shown}{path} did not answer JSON")
        return body
