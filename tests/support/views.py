"""Shared by the views tests: a demo upstream, an in-process daemon on it, admin HTTP calls.

Rule: everything started here is stopped in a ``finally``; waits have deadlines.
"""

from __future__ import annotations

import contextlib
import http.client
import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from streamvisor.demo.source import DemoSource
from streamvisor.views.launch import LocalDaemon
from tests.support.daemon import ADMIN

TIMEOUT = 5.0


def demo_source(channels: Sequence[str], rate: float = 20.0) -> DemoSource:
    """A ``DemoSource`` with endless, well-behaved channels; ``with`` starts and stops it."""
    return DemoSource(channels, rate=rate, heartbeat=1.0)


def write_config(
    folder: Path, source: DemoSource, *, token: str | None = None, extra: str = ""
) -> Path:
    """A config with one stream per demo channel and an admin section (with ``token``)."""
    admin: dict[str, Any] = dict(ADMIN)
    if token is not None:
        admin["token"] = token
    config = {
        "streams": [{"name": c, "url": source.url(c)} for c in source.channels],
        "admin": admin,
        "shutdown_timeout": 3,
    }
    path = folder / "views.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False) + extra, encoding="utf-8")
    return path


@contextlib.contextmanager
def local_daemon(path: Path) -> Iterator[tuple[LocalDaemon, str]]:
    """The daemon for ``path`` running in this process; yields it and its admin URL."""
    daemon = LocalDaemon(str(path))
    url = daemon.start()
    try:
        yield daemon, url
    finally:
        daemon.stop()


@contextlib.contextmanager
def demo_daemon(
    folder: Path, channels: Sequence[str], *, token: str | None = None, rate: float = 20.0
) -> Iterator[tuple[DemoSource, str]]:
    """A demo upstream and an in-process daemon reading it; yields both (source, admin URL)."""
    with contextlib.ExitStack() as stack:
        source = stack.enter_context(demo_source(channels, rate))
        _, base = stack.enter_context(local_daemon(write_config(folder, source, token=token)))
        yield source, base


def call(
    base: str, path: str, method: str = "GET", headers: Mapping[str, str] | None = None
) -> tuple[int, Any]:
    """One request to the admin endpoint; returns the status and the parsed JSON body."""
    parts = urlsplit(base)
    assert parts.hostname is not None and parts.port is not None
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=TIMEOUT)
    try:
        conn.request(method, path, headers=dict(headers or {}))
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    return response.status, json.loads(body) if body else None


def states(base: str) -> dict[str, str]:
    """Each stream's state, read from ``/streams``."""
    _, body = call(base, "/streams")
    return {name: info["state"] for name, info in body["streams"].items()}
