"""The admin server over real sockets: routes, failures, binding and shutdown."""

from __future__ import annotations

import http.client
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from streamvisor.daemon.admin import REQUEST_TIMEOUT, AdminError, AdminServer
from streamvisor.errors import StreamvisorError

TIMEOUT = 5.0

SNAPSHOT: dict[str, Any] = {
    "streams": {
        "ticker": {
            "state": "connected",
            "url": "http://user:***@host/x",
            "last_event_id": "42",
            "events": 12,
            "failures": {"retry": 2},
            "last_event_at": 1795478071.6,
            "connected_since": None,
            "subscribers": {"archive": {"queue_depth": 0, "dropped": 0, "delivered": 12}},
        }
    },
    "subscribers": {"archive": {"alive": True, "policy": "block", "queue_depth": 0}},
    "reloads": {"ok": 1, "failed": 0},
    "started_at": 1795478000.0,
}


class Status:
    """A snapshot and readiness flag the tests change while the server runs."""

    def __init__(self) -> None:
        self.ready = False
        self.error: Exception | None = None

    def snapshot(self) -> Mapping[str, Any]:
        if self.error is not None:
            raise self.error
        return SNAPSHOT

    def is_ready(self) -> bool:
        return self.ready


def admin_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "streamvisor-admin"]


@pytest.fixture
def status() -> Status:
    return Status()


@pytest.fixture
def admin(status: Status) -> Iterator[AdminServer]:
    server = AdminServer("127.0.0.1", 0, snapshot=status.snapshot, ready=status.is_ready)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def request(
    address: tuple[str, int] | None, path: str, method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    assert address is not None
    conn = http.client.HTTPConnection(address[0], address[1], timeout=TIMEOUT)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_health_answers_ok_and_then_stopping(admin: AdminServer) -> None:
    status, headers, body = request(admin.address, "/health")
    assert (status, json.loads(body)) == (200, {"status": "ok"})
    assert headers["Content-Type"] == "application/json"
    admin.set_stopping()
    status, _, body = request(admin.address, "/health")
    assert (status, json.loads(body)) == (200, {"status": "stopping"})


def test_head_on_health_gets_headers_and_no_body(admin: AdminServer) -> None:
    status, headers, body = request(admin.address, "/health", "HEAD")
    assert status == 200
    assert body == b""
    assert int(headers["Content-Length"]) == len(b'{"status": "ok"}')


def test_ready_follows_the_ready_callable(admin: AdminServer, status: Status) -> None:
    code, _, body = request(admin.address, "/ready")
    assert (code, json.loads(body)) == (503, {"ready": False})
    status.ready = True
    code, _, body = request(admin.address, "/ready")
    assert (code, json.loads(body)) == (200, {"ready": True})


def test_streams_returns_the_streams_and_subscribers_as_json(admin: AdminServer) -> None:
    code, headers, body = request(admin.address, "/streams")
    assert code == 200
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {
        "streams": SNAPSHOT["streams"],
        "subscribers": SNAPSHOT["subscribers"],
    }


def test_streams_turns_values_json_cannot_hold_into_plain_ones(status: Status) -> None:
    odd = {"streams": {"a": {"last_event_at": float("nan"), "tags": {"x"}, "n": 1}}}
    server = AdminServer("127.0.0.1", 0, snapshot=lambda: odd, ready=status.is_ready)
    address = server.start()
    try:
        code, _, body = request(address, "/streams")
    finally:
        server.stop()
    assert code == 200
    assert json.loads(body) == {
        "streams": {"a": {"last_event_at": None, "tags": ["x"], "n": 1}},
        "subscribers": {},
    }


def test_metrics_serves_the_prometheus_text_format(admin: AdminServer) -> None:
    code, headers, body = request(admin.address, "/metrics")
    assert code == 200
    assert headers["Content-Type"].startswith("text/plain")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }
    assert samples[("streamvisor_events_total", (("stream", "ticker"),))] == 12
    assert samples[("streamvisor_up", ())] == 1
    assert not any(name.endswith("_created") for name, _ in samples)


def test_an_unknown_path_is_404(admin: AdminServer) -> None:
    code, _, _ = request(admin.address, "/nope")
    assert code == 404


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_a_method_other_than_get_or_head_is_405(admin: AdminServer, method: str) -> None:
    code, headers, _ = request(admin.address, "/health", method)
    assert code == 405
    assert headers["Allow"] == "GET, HEAD"


def test_a_failing_snapshot_gives_503_once_logged_and_the_server_keeps_serving(
    admin: AdminServer, status: Status, caplog: pytest.LogCaptureFixture
) -> None:
    status.error = TimeoutError("ask timed out with token=abc")
    with caplog.at_level(logging.DEBUG, logger="streamvisor.daemon.admin"):
        for path in ("/streams", "/metrics", "/streams"):
            code, _, body = request(admin.address, path)
            assert code == 503
            assert json.loads(body) == {"error": "status unavailable", "reason": "TimeoutError"}
            assert b"Traceback" not in body
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    status.error = None
    code, _, _ = request(admin.address, "/streams")
    assert code == 200
    assert request(admin.address, "/health")[0] == 200


def test_a_raising_ready_callable_gives_503_not_ready(status: Status) -> None:
    def broken() -> bool:
        raise RuntimeError("boom")

    server = AdminServer("127.0.0.1", 0, snapshot=status.snapshot, ready=broken)
    address = server.start()
    try:
        code, _, body = request(address, "/ready")
    finally:
        server.stop()
    assert code == 503
    assert json.loads(body)["ready"] is False


def test_binding_a_port_in_use_raises_admin_error_naming_the_address(admin: AdminServer) -> None:
    assert admin.address is not None
    port = admin.address[1]
    other = AdminServer("127.0.0.1", port, snapshot=dict, ready=lambda: True)
    with pytest.raises(AdminError, match=rf"cannot listen on 127\.0\.0\.1:{port}: .+") as info:
        other.start()
    assert isinstance(info.value, StreamvisorError)
    assert other.address is None
    other.stop()  # nothing started: a no-op


def test_stop_joins_the_thread_closes_the_port_and_is_idempotent(status: Status) -> None:
    before = len(admin_threads())
    server = AdminServer("127.0.0.1", 0, snapshot=status.snapshot, ready=status.is_ready)
    address = server.start()
    assert len(admin_threads()) == before + 1
    assert request(address, "/health")[0] == 200
    server.stop()
    assert len(admin_threads()) == before
    assert server.address is None
    server.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(address, timeout=TIMEOUT).close()


def test_starting_twice_raises_and_start_after_stop_works(admin: AdminServer) -> None:
    with pytest.raises(AdminError, match="already started"):
        admin.start()
    admin.stop()
    address = admin.start()
    assert request(address, "/health")[0] == 200


def test_a_client_that_sends_nothing_delays_stop_only_until_its_socket_times_out(
    admin: AdminServer,
) -> None:
    assert admin.address is not None
    with socket.create_connection(admin.address, timeout=TIMEOUT):
        started = time.monotonic()
        admin.stop()
        elapsed = time.monotonic() - started
    assert admin_threads() == []
    assert elapsed < REQUEST_TIMEOUT + 1.0


def _ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback here")
@pytest.mark.parametrize("host", ["::1", "[::1]"])
def test_an_ipv6_literal_host_is_served(status: Status, host: str) -> None:
    server = AdminServer(host, 0, snapshot=status.snapshot, ready=status.is_ready)
    address = server.start()
    try:
        assert address[0] == "::1"
        code, _, body = request(address, "/health")
    finally:
        server.stop()
    assert (code, json.loads(body)) == (200, {"status": "ok"})


def test_construction_does_no_io() -> None:
    def forbidden() -> Mapping[str, Any]:
        raise AssertionError("snapshot called during construction")

    server = AdminServer("127.0.0.1", 0, snapshot=forbidden, ready=lambda: True)
    assert server.address is None
    server.stop()
