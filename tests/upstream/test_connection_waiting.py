"""A stop reaches an attempt still waiting for the response headers (``upstream/watch.py``).

The server takes the request and never answers; the read timeout is long. Before, a stop
waited for it (``Streamvisor.stop()`` and the daemon's shutdown used their whole timeout).
"""

from __future__ import annotations

import socket
import threading
import time

import pytest

from streamvisor import StreamSpec
from streamvisor.api.facade import Streamvisor
from streamvisor.upstream import watch
from streamvisor.upstream.connection import Connection
from streamvisor.upstream.connector import HTTPConnector
from streamvisor.upstream.watch import Waiter
from tests.support.sse_server import Hold, SSEServer

pytestmark = pytest.mark.timeout(30)


def _silent(server: SSEServer) -> StreamSpec:
    server.add_script(Hold())  # the request is read, no answer ever comes
    return StreamSpec(name="s", url=server.url("/events"), read_timeout=25)


@pytest.mark.parametrize("connector", ["private session", "shared session"])
def test_interrupt_wakes_an_open_waiting_for_the_headers(
    sse_server: SSEServer, connector: str
) -> None:
    spec = _silent(sse_server)
    conn = Connection(spec) if connector == "private session" else HTTPConnector()(spec, None)
    outcome: list[object] = []
    thread = threading.Thread(target=lambda: outcome.append(conn.open() or "returned"))
    thread.start()
    try:
        assert sse_server.wait_for_requests(1), "the request never reached the server"
        started = time.monotonic()
        conn.interrupt()
        thread.join(5)
        assert not thread.is_alive(), "open() still waits for the headers after interrupt()"
        assert time.monotonic() - started < 5
        assert outcome == ["returned"]  # a requested stop is not a failure
        assert conn.read() == b""
    finally:
        conn.close()
        thread.join(30)


def test_an_interrupt_just_before_the_wait_is_not_lost(
    sse_server: SSEServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # interrupt() lands after the request was sent but before its socket was shown: it has
    # nothing to shut down yet, so the socket is shut when it shows up.
    conn = Connection(_silent(sse_server))
    show = Waiter._show

    def interrupted_first(waiter: Waiter, sock: socket.socket) -> None:
        conn.interrupt()
        show(waiter, sock)

    monkeypatch.setattr(Waiter, "_show", interrupted_first)
    started = time.monotonic()
    conn.open()
    assert time.monotonic() - started < 5, "open() waited for the headers"
    assert conn.read() == b""
    conn.close()


def test_a_waiter_stopped_first_shuts_the_socket_it_is_shown() -> None:
    a, b = socket.socketpair()
    try:
        waiter = Waiter()
        waiter.stop()
        with waiter.watch():
            watch._show(a)  # what a request does before it waits for its answer
        a.settimeout(5)
        assert a.recv(1) == b""  # shut down: a read ends at once
    finally:
        a.close()
        b.close()


def test_outside_watch_nothing_is_shown() -> None:
    a, b = socket.socketpair()
    try:
        waiter = Waiter()
        with waiter.watch():
            pass
        watch._show(a)
        waiter.stop()
        b.sendall(b"x")
        a.settimeout(5)
        assert a.recv(1) == b"x"  # untouched
    finally:
        a.close()
        b.close()


def test_stop_does_not_wait_for_a_server_that_never_answers(sse_server: SSEServer) -> None:
    sv = Streamvisor([_silent(sse_server)])
    sv.start()
    try:
        assert sse_server.wait_for_requests(1), "the request never reached the server"
    finally:
        started = time.monotonic()
        sv.stop(timeout=20)
        took = time.monotonic() - started
    assert took < 5, f"stop() took {took:.1f}s: it waited for the response headers"
    assert not [t for t in threading.enumerate() if t.name.startswith("StreamActor")]
