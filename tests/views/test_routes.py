"""The admin endpoint's views over real sockets: commands, token, the live feed, the page."""

from __future__ import annotations

import http.client
import json
import logging
import re
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from streamvisor.daemon.admin import AdminServer
from streamvisor.sse import Decoder, Event
from streamvisor.views.ringlog import RingLogHandler
from tests.support.wait import wait_until

TIMEOUT = 5.0
TOKEN = "t0k-3n_for.tests"


class Daemonish:
    """Streams whose states the commands change, as ``Streamvisor`` would."""

    def __init__(self) -> None:
        self.streams: dict[str, dict[str, Any]] = {
            "ticker": {"state": "connected", "events": 5, "last_event_id": "5"},
            "news": {"state": "closed", "events": 0, "last_event_id": None},
            "weird/näme": {"state": "connected", "events": 0, "last_event_id": None},
        }
        self.calls: list[tuple[str, str]] = []
        self.refuse = False
        self.error: Exception | None = None

    def snapshot(self) -> Mapping[str, Any]:
        return {"streams": self.streams, "subscribers": {}, "started_at": 1.0e9}

    def _act(self, command: str, name: str, state: str) -> bool:
        self.calls.append((command, name))
        if self.error is not None:
            raise self.error
        if self.refuse:
            return False
        self.streams[name]["state"] = state
        return True

    def reconnect(self, name: str) -> bool:
        return self._act("reconnect", name, "connecting")

    def close(self, name: str) -> bool:
        return self._act("close", name, "closed")


@pytest.fixture
def daemon() -> Daemonish:
    return Daemonish()


def start_admin(daemon: Daemonish, **kwargs: Any) -> AdminServer:
    kwargs.setdefault("commands", daemon)
    server = AdminServer(
        "127.0.0.1", 0, snapshot=daemon.snapshot, ready=lambda: True, feed_interval=0.05, **kwargs
    )
    server.start()
    return server


@pytest.fixture
def admin(daemon: Daemonish) -> Iterator[AdminServer]:
    server = start_admin(daemon)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def secured(daemon: Daemonish) -> Iterator[AdminServer]:
    server = start_admin(daemon, token=TOKEN)
    try:
        yield server
    finally:
        server.stop()


def request(
    server: AdminServer, path: str, method: str = "POST", headers: Mapping[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    assert server.address is not None
    conn = http.client.HTTPConnection(*server.address, timeout=TIMEOUT)
    try:
        conn.request(method, path, headers=dict(headers or {}))
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- commands -------------------------------------------------------------------------------


def test_close_and_reconnect_answer_json_with_the_new_state(
    admin: AdminServer, daemon: Daemonish
) -> None:
    code, headers, body = request(admin, "/streams/ticker/close")
    assert code == 200
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {
        "stream": "ticker",
        "command": "close",
        "ok": True,
        "changed": True,
        "state": "closed",
    }
    code, _, body = request(admin, "/streams/ticker/reconnect")
    assert (code, json.loads(body)["state"]) == (200, "connecting")
    assert daemon.calls == [("close", "ticker"), ("reconnect", "ticker")]


def test_start_starts_a_stopped_stream_and_leaves_a_running_one_alone(
    admin: AdminServer, daemon: Daemonish
) -> None:
    code, _, body = request(admin, "/streams/news/start")
    assert (code, json.loads(body)["state"], json.loads(body)["changed"]) == (
        200,
        "connecting",
        True,
    )
    code, _, body = request(admin, "/streams/ticker/start")
    answer = {"stream": "ticker", "command": "start", "ok": True, "changed": False}
    assert (code, json.loads(body)) == (200, {**answer, "state": "connected"})
    assert daemon.calls == [("reconnect", "news")]


def test_closing_a_closed_stream_changes_nothing_and_says_so(
    admin: AdminServer, daemon: Daemonish
) -> None:
    request(admin, "/streams/ticker/close")
    code, _, body = request(admin, "/streams/ticker/close")
    answer = {"stream": "ticker", "command": "close", "ok": True, "changed": False}
    assert (code, json.loads(body)) == (200, {**answer, "state": "closed"})
    assert daemon.calls == [("close", "ticker")]


def test_a_stream_name_with_a_slash_and_non_ascii_is_found_when_percent_encoded(
    admin: AdminServer, daemon: Daemonish
) -> None:
    code, _, body = request(admin, "/streams/weird%2Fn%C3%A4me/close")
    assert (code, json.loads(body)["stream"]) == (200, "weird/näme")
    assert daemon.calls == [("close", "weird/näme")]


def test_an_unknown_stream_is_404_and_nothing_is_done(
    admin: AdminServer, daemon: Daemonish
) -> None:
    code, _, body = request(admin, "/streams/nope/close")
    assert (code, json.loads(body)) == (404, {"error": "unknown stream", "stream": "nope"})
    assert daemon.calls == []


def test_a_command_needs_post(admin: AdminServer) -> None:
    code, headers, _ = request(admin, "/streams/ticker/close", "GET")
    assert (code, headers["Allow"]) == (405, "POST")


def test_a_refused_command_is_409_and_a_failing_one_503(
    admin: AdminServer, daemon: Daemonish
) -> None:
    daemon.refuse = True
    code, _, body = request(admin, "/streams/ticker/close")
    assert (code, json.loads(body)["ok"]) == (409, False)
    daemon.refuse = False
    daemon.error = TimeoutError("ask timed out")
    code, _, body = request(admin, "/streams/ticker/close")
    assert (code, json.loads(body)["reason"]) == (503, "TimeoutError")
    assert request(admin, "/health", "GET")[0] == 200


def test_without_commands_a_command_is_503(daemon: Daemonish) -> None:
    server = start_admin(daemon, commands=None)
    try:
        code, _, body = request(server, "/streams/ticker/close")
    finally:
        server.stop()
    assert (code, json.loads(body)) == (503, {"error": "commands unavailable"})


def test_a_cross_site_browser_request_is_refused(admin: AdminServer, daemon: Daemonish) -> None:
    code, _, _ = request(admin, "/streams/ticker/close", headers={"Origin": "https://evil.example"})
    assert code == 403
    code, _, _ = request(admin, "/streams/ticker/close", headers={"Sec-Fetch-Site": "cross-site"})
    assert code == 403
    assert daemon.calls == []


def test_without_a_token_a_command_through_a_host_name_is_refused(
    admin: AdminServer, secured: AdminServer, daemon: Daemonish
) -> None:
    rebound = {"Host": "rebind.example:9108"}
    assert request(admin, "/streams/ticker/close", headers=rebound)[0] == 403
    assert request(secured, "/streams/ticker/close", headers={**rebound, **bearer()})[0] == 200
    assert daemon.calls == [("close", "ticker")]


# -- token ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "path"),
    [
        ({}, "/streams/ticker/close"),
        (bearer("wrong"), "/streams/ticker/close"),
        ({"Authorization": TOKEN}, "/streams/ticker/close"),
        ({}, f"/streams/ticker/close?token={TOKEN}"),  # commands take the header only
    ],
)
def test_with_a_token_a_command_without_it_is_401(
    secured: AdminServer, daemon: Daemonish, headers: dict[str, str], path: str
) -> None:
    code, answer_headers, body = request(secured, path, headers=headers)
    assert code == 401
    assert answer_headers["WWW-Authenticate"] == 'Bearer realm="streamvisor"'
    assert json.loads(body) == {"error": "token required"}
    assert daemon.calls == []


def test_with_a_token_a_command_with_it_works(secured: AdminServer, daemon: Daemonish) -> None:
    code, _, body = request(secured, "/streams/ticker/close", headers=bearer())
    assert (code, json.loads(body)["state"]) == (200, "closed")


def test_reads_other_than_the_feed_stay_open_with_a_token(secured: AdminServer) -> None:
    for path in ("/health", "/streams", "/metrics", "/"):
        assert request(secured, path, "GET")[0] == 200, path


def test_the_feed_takes_the_token_as_header_or_query_and_head_probes_it(
    secured: AdminServer,
) -> None:
    assert request(secured, "/status/events", "HEAD")[0] == 401
    assert request(secured, "/status/events", "GET")[0] == 401
    assert request(secured, f"/status/events?token={TOKEN}", "HEAD")[0] == 200
    assert request(secured, "/status/events", "HEAD", bearer())[0] == 200
    with open_feed(secured, f"/status/events?token={TOKEN}") as events:
        assert next(events).event == "status"


def test_the_token_in_a_feed_url_is_not_logged(
    secured: AdminServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="streamvisor.daemon.admin"):
        request(secured, f"/status/events?token={TOKEN}", "HEAD")
        assert wait_until(lambda: any("HEAD" in r.getMessage() for r in caplog.records))
    assert TOKEN not in caplog.text


# -- the live feed ----------------------------------------------------------------------------


class open_feed:
    """Open ``/status/events`` and iterate its decoded events (closed on exit)."""

    def __init__(self, server: AdminServer, path: str = "/status/events") -> None:
        assert server.address is not None
        self.conn = http.client.HTTPConnection(*server.address, timeout=TIMEOUT)
        self.conn.request("GET", path)
        self.response = self.conn.getresponse()

    def __enter__(self) -> Iterator[Event]:
        return self.events()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.response.close()  # the response holds the socket open past conn.close()
        self.conn.close()

    def events(self) -> Iterator[Event]:
        assert self.response.status == 200
        decoder = Decoder()
        while True:
            chunk = self.response.read1(65536)
            if not chunk:
                return
            yield from decoder.feed(chunk)


def test_the_feed_is_an_event_stream_of_status_snapshots(
    admin: AdminServer, daemon: Daemonish
) -> None:
    feed = open_feed(admin)
    headers = dict(feed.response.getheaders())
    assert headers["Content-Type"] == "text/event-stream; charset=utf-8"
    assert headers["Cache-Control"] == "no-store"
    with feed as events:
        first = next(events)
        status = json.loads(first.data)
        assert first.event == "status"
        assert set(status) == {"streams", "subscribers", "started_at", "time", "log"}
        assert status["streams"]["ticker"]["state"] == "connected"
        daemon.streams["ticker"]["state"] = "failed"
        assert any(json.loads(e.data)["streams"]["ticker"]["state"] == "failed" for e in events)


def test_the_feed_carries_recent_warnings_from_the_ring_log(daemon: Daemonish) -> None:
    ring = RingLogHandler()
    server = start_admin(daemon, log_ring=ring)
    try:
        assert ring in logging.getLogger().handlers
        logging.getLogger("streamvisor.test").warning("upstream ticker is slow")
        with open_feed(server) as events:
            status = json.loads(next(events).data)
    finally:
        server.stop()
    assert [line["msg"] for line in status["log"]] == ["upstream ticker is slow"]
    assert ring not in logging.getLogger().handlers


def test_open_feeds_do_not_block_other_requests_and_stop_ends_them_at_once(
    daemon: Daemonish,
) -> None:
    server = start_admin(daemon)
    feeds = [open_feed(server) for _ in range(3)]
    try:
        for feed in feeds:
            assert next(feed.events()).event == "status"
        started = time.monotonic()
        assert request(server, "/health", "GET")[0] == 200
        assert request(server, "/streams/ticker/close")[0] == 200
        assert time.monotonic() - started < 1.0
        started = time.monotonic()
        server.stop()
        stop_took = time.monotonic() - started
        for feed in feeds:
            assert list(feed.events()) is not None  # each one ends (EOF), none hangs
    finally:
        for feed in feeds:
            feed.close()
        server.stop()
    assert stop_took < 1.0
    assert not [t for t in threading.enumerate() if t.name == "streamvisor-admin-request"]


def test_feeds_beyond_the_limit_get_503_with_retry_after(daemon: Daemonish) -> None:
    server = start_admin(daemon, max_feeds=1)
    try:
        with open_feed(server) as events:
            next(events)
            code, headers, _ = request(server, "/status/events", "GET")
            assert (code, headers["Retry-After"]) == (503, "5")
        assert wait_until(lambda: server.open_feeds == 0)
        with open_feed(server) as events:
            assert next(events).event == "status"
    finally:
        server.stop()


# -- the page ---------------------------------------------------------------------------------


def test_the_page_is_one_self_contained_html_document_with_a_strict_csp(
    admin: AdminServer,
) -> None:
    code, headers, body = request(admin, "/", "GET")
    assert code == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    html = body.decode()
    assert html.startswith("<!doctype html>")
    # Nothing loaded from anywhere: no src/href attributes, no CSS url() or @import.
    assert not re.search(r"\b(src|href)\s*=|url\(|@import", html)
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp
    assert re.search(r"script-src 'sha256-[A-Za-z0-9+/=]+'", csp)
    assert "unsafe-inline" not in csp
    assert request(admin, "/", "POST")[0] == 405
