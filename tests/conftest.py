"""Shared fixtures; the helpers behind them live in ``tests/support/`` (import helpers from
there, never from here).

* Hygiene (autouse): a test ends with no pykka actor and no non-daemon thread it started.
* Servers on 127.0.0.1 port 0: ``sse_server`` (scripted), ``make_receiver`` (webhooks),
  ``make_demo`` (demo sources), ``fake_mcp``; ``redis_server``/``redis_url``/``rclient`` (one
  redis-server per session, on a Unix socket); ``refusing_port`` (connections refused).
* Clients and actors: ``opened`` (connections), ``pool`` (relay clients), ``make_sv``,
  ``make_collector``/``collector``, ``blocker`` (a stuck subscriber), ``spawn`` (blocking
  calls in threads).

Rules: every wait has a deadline (``wait_until`` polls in short ``Event.wait`` steps), and
everything a fixture starts is stopped in its ``finally``.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import pykka
import pytest

from streamvisor.api.facade import Streamvisor
from streamvisor.demo.source import DemoSource
from streamvisor.spec import StreamSpec
from streamvisor.upstream.connection import Connection
from tests.support.actors import BlockerHandle, CollectorHandle
from tests.support.demo import HEARTBEAT, MakeDemo
from tests.support.flow import Spawner
from tests.support.mcp_fake import FakeMcp
from tests.support.redis_server import rclient, redis_server, redis_url  # noqa: F401 (fixtures)
from tests.support.relay import ClientPool
from tests.support.sse_server import SSEServer
from tests.support.wait import wait_until
from tests.support.webhooks import Answer, MakeReceiver, WebhookReceiver

THREAD_EXIT_DEADLINE = 5.0


def _non_daemon_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if not t.daemon and t.is_alive()}


@pytest.fixture(autouse=True)
def _no_leaked_actors_or_threads() -> Iterator[None]:
    """After each test: stop every pykka actor still running, then assert that no
    non-daemon thread the test started is still alive."""
    before = _non_daemon_threads()
    yield
    pykka.ActorRegistry.stop_all(timeout=THREAD_EXIT_DEADLINE)

    def leaked() -> set[threading.Thread]:
        return _non_daemon_threads() - before

    wait_until(lambda: not leaked(), THREAD_EXIT_DEADLINE)
    names = sorted(t.name for t in leaked())
    assert not names, f"non-daemon threads leaked by the test: {names}"


@pytest.fixture
def sse_server() -> Iterator[SSEServer]:
    """A started scripted SSE server (no scripts yet: add them with ``add_script``)."""
    server = SSEServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def make_collector() -> Iterator[Callable[[], CollectorHandle]]:
    """Start any number of collectors; all are stopped at the end of the test."""
    started: list[CollectorHandle] = []

    def make() -> CollectorHandle:
        handle = CollectorHandle()
        started.append(handle)
        return handle

    try:
        yield make
    finally:
        for handle in started:
            handle.ref.stop(block=True, timeout=THREAD_EXIT_DEADLINE)


@pytest.fixture
def collector(make_collector: Callable[[], CollectorHandle]) -> CollectorHandle:
    """One started collector (stopped at the end of the test)."""
    return make_collector()


@pytest.fixture
def blocker() -> Iterator[BlockerHandle]:
    """A subscriber stuck until ``blocker.gate.set()``; the gate opens at the end anyway."""
    handle = BlockerHandle()
    try:
        yield handle
    finally:
        handle.gate.set()
        handle.ref.stop(block=True, timeout=THREAD_EXIT_DEADLINE)


@pytest.fixture
def make_sv() -> Iterator[Callable[..., Streamvisor]]:
    """Build ``Streamvisor(streams, **kwargs)`` objects; each is stopped at the end."""
    made: list[Streamvisor] = []

    def make(streams: Sequence[StreamSpec], **kwargs: Any) -> Streamvisor:
        sv = Streamvisor(streams, **kwargs)
        made.append(sv)
        return sv

    try:
        yield make
    finally:
        for sv in made:
            sv.stop(timeout=THREAD_EXIT_DEADLINE)


@pytest.fixture
def spawn() -> Iterator[Spawner]:
    """Run blocking calls in threads; each is abandoned (through its control) and joined at
    the end of the test."""
    with Spawner() as spawner:
        yield spawner


@pytest.fixture
def make_receiver() -> Iterator[MakeReceiver]:
    """Start webhook receivers: ``make_receiver(plan=(), then=(200, {}))`` (see
    ``tests/support/webhooks.py``); all are stopped at the end of the test."""
    started: list[WebhookReceiver] = []

    def make(plan: Iterable[Answer] = (), then: Answer = (200, {})) -> WebhookReceiver:
        receiver = WebhookReceiver(plan, then).start()
        started.append(receiver)
        return receiver

    try:
        yield make
    finally:
        for receiver in started:
            receiver.stop()


@pytest.fixture
def make_demo() -> Iterator[MakeDemo]:
    """Start demo sources (``tests/support/demo.py``); all are stopped at the end."""
    with contextlib.ExitStack() as stack:

        def make(channels: Sequence[str], **options: Any) -> DemoSource:
            options.setdefault("heartbeat", HEARTBEAT)
            return stack.enter_context(DemoSource(channels, **options))

        yield make


@pytest.fixture
def refusing_port() -> Iterator[int]:
    """A port bound but not listening: connecting to it is refused (for as long as held)."""
    sock = socket.socket()
    try:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]
    finally:
        sock.close()


@pytest.fixture
def fake_mcp() -> Iterator[FakeMcp]:
    """A started fake MCP server (``tests/support/mcp_fake.py``), stopped after the test."""
    server = FakeMcp().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def opened() -> Iterator[Callable[..., Connection]]:
    """Open ``Connection(spec, last_event_id)``s; all are closed at the end of the test."""
    made: list[Connection] = []

    def make(spec: StreamSpec, last_event_id: str | None = None) -> Connection:
        conn = Connection(spec, last_event_id)
        made.append(conn)
        conn.open()
        return conn

    try:
        yield make
    finally:
        for conn in made:
            conn.close()


@pytest.fixture
def pool() -> Iterator[ClientPool]:
    """Relay clients (``tests/support/relay.py``); all are closed at the end of the test."""
    clients = ClientPool()
    try:
        yield clients
    finally:
        clients.close()
