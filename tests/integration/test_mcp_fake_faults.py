"""``kind: mcp`` streams against the scripted fake server: handshake, headers, 404
re-initialize, 405, 409, polling, unresumable ids, server ping, DELETE on stop."""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Callable

import pytest

from streamvisor.api.facade import Streamvisor
from streamvisor.upstream.mcp.call import McpTimeoutError
from tests.support.actors import CollectorHandle
from tests.support.mcp_fake import FakeMcp
from tests.support.mcpkind import data, mcp_spec, of, seqs
from tests.support.wait import wait_until


def _listening(sv: Streamvisor, name: str = "tools") -> bool:
    info = sv.status()["streams"].get(name, {}).get("mcp") or {}
    return info.get("listen") == "connected"


def test_handshake_sends_initialize_then_initialized_then_get_with_session_headers(
    fake_mcp: FakeMcp, make_sv: Callable[..., Streamvisor], collector: CollectorHandle
) -> None:
    sv = make_sv([mcp_spec(fake_mcp.url)])
    sv.subscribe(collector.ref)
    sv.start()
    assert wait_until(lambda: _listening(sv))
    fake_mcp.notify(params={"data": {"n": 1}})
    assert collector.wait_until(lambda evs: seqs(evs) == [1])
    posts = fake_mcp.seen("POST")
    assert [p.body["method"] for p in posts[:2]] == ["initialize", "notifications/initialized"]
    assert "Mcp-Session-Id" not in posts[0].headers
    assert "application/json" in posts[0].headers["Accept"]
    assert "text/event-stream" in posts[0].headers["Accept"]
    sid = next(iter(fake_mcp.sessions))
    for later in [posts[1], *fake_mcp.seen("GET")]:
        assert later.headers["Mcp-Session-Id"] == sid
        assert later.headers["MCP-Protocol-Version"] == "2025-11-25"
    event = of(collector.events, "notifications/message")[0]
    assert event.id is not None and data(event)["method"] == "notifications/message"
    status = sv.status()["streams"]["tools"]["mcp"]
    assert status["session"] == "ready" and status["era"] == "streamable_http"
    assert status["session_id"] == "***" and sid not in repr(sv.status())


def test_expired_session_is_reinitialized_and_announced(
    fake_mcp: FakeMcp, make_sv: Callable[..., Streamvisor], collector: CollectorHandle
) -> None:
    sv = make_sv([mcp_spec(fake_mcp.url, after_initialize=[{"method": "logging/setLevel"}])])
    sv.subscribe(collector.ref)
    sv.start()
    assert wait_until(lambda: _listening(sv))
    fake_mcp.notify(params={"data": {"n": 1}})
    assert collector.wait_until(lambda evs: seqs(evs) == [1])
    fake_mcp.expire_all()  # the GET stream ends; the reconnect GET gets 404
    assert collector.wait_until(lambda evs: bool(of(evs, "mcp/session_restarted")), 5)
    assert wait_until(lambda: _listening(sv) and len(fake_mcp.sessions) == 1)
    fake_mcp.notify(params={"data": {"n": 2}})
    assert collector.wait_until(lambda evs: seqs(evs) == [1, 2])
    inits = fake_mcp.seen("POST", "initialize")
    assert len(inits) == 2 and "Mcp-Session-Id" not in inits[1].headers
    assert len(fake_mcp.seen("POST", "logging/setLevel")) == 2
    status = sv.status()["streams"]["tools"]["mcp"]
    assert status["initializations"] == 2 and status["session_expiries"] == 1


def test_get_405_is_a_state_with_one_get_and_no_reconnects(
    fake_mcp: FakeMcp, make_sv: Callable[..., Streamvisor]
) -> None:
    fake_mcp.get_status = 405
    sv = make_sv([mcp_spec(fake_mcp.url, ping_interval=0.2)])
    sv.start()
    assert wait_until(lambda: len(fake_mcp.seen("POST", "ping")) >= 2, 5)
    info = sv.status()["streams"]["tools"]
    assert info["mcp"]["listen"] == "unsupported" and info["state"] == "connected"
    assert len(fake_mcp.seen("GET")) == 1 and info["restarts"] == 0
    assert info["mcp"]["last_ping_rtt"] is not None


def test_409_twice_then_recovers_on_the_same_session(
    fake_mcp: FakeMcp, make_sv: Callable[..., Streamvisor]
) -> None:
    fake_mcp.conflicts = 2
    sv = make_sv([mcp_spec(fake_mcp.url)])
    sv.start()
    assert wait_until(lambda: _listening(sv), 5)
    assert len(fake_mcp.seen("GET")) == 3 and len(fake_mcp.seen("POST", "initialize")) == 1


def test_409_forever_deletes_and_starts_a_new_session(
    fake_mcp: FakeMcp, make_sv: Callable[..., Streamvisor], collector: CollectorHandle
) -> None:
    fake_mcp.conflicts, fake_mcp.conflict_sessions = 100, 1
    sv = make_sv([mcp_spec(fake_mcp.url)])
    sv.subscribe(collector.ref)
    sv.start()
    assert wait_until(lambda: _listening(sv), 5)
    assert len(fake_mcp.seen("DELETE")) == 1 and len(fake_mcp.seen("POST", "initialize")) == 2
    restarted = of(collector.events, "mcp/session_restarted")
    assert collector.wait_until(lambda evs: bool(of(evs, "mcp/session_restarted")))
    assert data(of(collector.events, "mcp/session_restarted")[0])["reason"] == "conflict"
    del restarted


def test_sse_polling_waits_retry_and_is_not_a_failure(
    fake_mcp: FakeMcp, make_sv: Callable[..., Streamvisor]
) -> None:
    fake_mcp.poll_retry_ms, fake_mcp.poll_close_after = 300, 0.05
    sv = make_sv([mcp_spec(fake_mcp.url)])
    sv.start()
    assert wait_until(lambda: len(fake_mcp.seen("GET")) >= 4, 5)
    gets = fake_mcp.seen("GET")
    for before, after in itertools.pairwise(gets):
        assert after.at - before.at >= 0.3 + 0.05 - 0.02
        assert after.headers.get("Last-Event-ID")
    info = sv.status()["streams"]["tools"]
    assert info["restarts"] == 0 and info["state"] == "connected"
    assert info["mcp"]["resumes"]["ok"] >= 2


def test_unresumable_id_is_dropped_with_a_gap_event(
    fake_mcp: FakeMcp, make_sv: Callable[..., Streamvisor], collector: CollectorHandle
) -> None:
    sv = make_sv([mcp_spec(fake_mcp.url, unresumable_after=2)])
    sv.subscribe(collector.ref)
    sv.start()
    assert wait_until(lambda: _listening(sv))
    fake_mcp.notify(params={"data": {"n": 1}})
    assert collector.wait_until(lambda evs: seqs(evs) == [1])
    fake_mcp.unresumable = True
    sv.reconnect("tools")
    assert collector.wait_until(lambda evs: bool(of(evs, "mcp/gap")), 5)
    fake_mcp.unresumable = False
    assert wait_until(lambda: _listening(sv), 5)
    fake_mcp.notify(params={"data": {"n": 2}})
    assert collector.wait_until(lambda evs: seqs(evs) == [1, 2])
    assert sv.status()["streams"]["tools"]["mcp"]["resumes"]["failed"] == 2


def test_server_ping_on_the_get_stream_is_answered(
    fake_mcp: FakeMcp, make_sv: Callable[..., Streamvisor], collector: CollectorHandle
) -> None:
    fake_mcp.ping_on_get = True
    sv = make_sv([mcp_spec(fake_mcp.url)])
    sv.subscribe(collector.ref)
    sv.start()
    assert wait_until(lambda: bool(fake_mcp.pongs), 2)
    get_at = fake_mcp.seen("GET")[0].at
    pong_id, pong_at = fake_mcp.pongs[0]
    assert pong_id == "srv-1" and pong_at - get_at < 1.0
    answer = next(r for r in fake_mcp.seen("POST") if r.body.get("id") == "srv-1")
    assert answer.body["result"] == {} and answer.headers["Mcp-Session-Id"]
    assert not of(collector.events, "ping")
    assert sv.status()["streams"]["tools"]["mcp"]["server_requests"] == {"ping": 1}


def test_stop_deletes_the_session_and_tolerates_405(
    fake_mcp: FakeMcp, make_sv: Callable[..., Streamvisor]
) -> None:
    fake_mcp.delete_status = 405
    sv = make_sv([mcp_spec(fake_mcp.url)])
    sv.start()
    assert wait_until(lambda: _listening(sv))
    sid = next(iter(fake_mcp.sessions))
    sv.stop(timeout=5)
    deletes = fake_mcp.seen("DELETE")
    assert len(deletes) == 1 and deletes[0].headers["Mcp-Session-Id"] == sid


def test_sessions_that_expire_at_once_back_off_until_restart_intensity_trips(
    fake_mcp: FakeMcp, make_sv: Callable[..., Streamvisor]
) -> None:
    from dataclasses import replace

    from streamvisor.policy.backoff import RestartLimit

    fake_mcp.expire_on_get = True
    spec = replace(mcp_spec(fake_mcp.url), max_restarts=RestartLimit(count=4, within=60))
    sv = make_sv([spec])
    sv.start()
    assert wait_until(lambda: sv.status()["streams"]["tools"]["state"] == "failed", 10)
    inits = fake_mcp.seen("POST", "initialize")
    assert 4 <= len(inits) <= 6
    gaps = [b.at - a.at for a, b in itertools.pairwise(inits)]
    assert all(g >= 0.04 for g in gaps)


def test_a_batch_array_becomes_one_event_per_message_with_the_id_on_the_last(
    fake_mcp: FakeMcp, make_sv: Callable[..., Streamvisor], collector: CollectorHandle
) -> None:
    sv = make_sv([mcp_spec(fake_mcp.url, protocol_versions=["2025-03-26"])])
    sv.subscribe(collector.ref)
    sv.start()
    assert wait_until(lambda: _listening(sv))
    fake_mcp.notify_batch(["notifications/a", "notifications/b"])
    assert collector.wait_for(2)
    a, b = collector.events[:2]
    assert (a.event, b.event) == ("notifications/a", "notifications/b")
    assert a.id is None and b.id is not None
    assert "MCP-Protocol-Version" not in fake_mcp.seen("GET")[0].headers  # none for 2025-03-26


def test_an_events_filter_selects_by_json_rpc_method(
    fake_mcp: FakeMcp,
    make_sv: Callable[..., Streamvisor],
    make_collector: Callable[[], CollectorHandle],
) -> None:
    only, everything = make_collector(), make_collector()
    sv = make_sv([mcp_spec(fake_mcp.url)])
    sv.subscribe(only.ref, events=["notifications/resources/updated"])
    sv.subscribe(everything.ref)
    sv.start()
    assert wait_until(lambda: _listening(sv))
    fake_mcp.notify("notifications/message", {"data": {"n": 1}})
    fake_mcp.notify("notifications/resources/updated", {"uri": "file:///a"})
    assert everything.wait_for(2)
    assert only.wait_for(1)
    assert [e.event for e in only.events] == ["notifications/resources/updated"]


def test_sv_call_on_a_session_and_a_404_reinitializes_once(
    fake_mcp: FakeMcp, make_sv: Callable[..., Streamvisor]
) -> None:
    sv = make_sv([mcp_spec(fake_mcp.url, listen="none")])
    sv.start()
    assert sv.call("tools", "tools/call", {"name": "x"}, timeout=5) == {"echo": {"name": "x"}}
    fake_mcp.expire_all()
    assert sv.call("tools", "tools/call", {"name": "y"}, timeout=5) == {"echo": {"name": "y"}}
    assert len(fake_mcp.seen("POST", "initialize")) == 2
    from streamvisor.upstream.mcp.jsonrpc import McpCallError

    with pytest.raises(McpCallError) as info:
        sv.call("tools", "tools/call", {"name": "fail"}, timeout=5)
    assert info.value.code == -32000


def test_a_call_whose_stream_closes_without_an_id_fails_fast_and_is_not_resent(
    fake_mcp: FakeMcp, make_sv: Callable[..., Streamvisor]
) -> None:
    import time

    from streamvisor.upstream.mcp.jsonrpc import McpCallError

    sv = make_sv([mcp_spec(fake_mcp.url, listen="none")])
    sv.start()
    started = time.monotonic()
    with pytest.raises(McpCallError, match="cannot be resumed"):
        sv.call("tools", "tools/call", {"name": "drop"}, timeout=5)
    assert time.monotonic() - started < 2
    assert len(fake_mcp.seen("POST", "tools/call")) == 1
    with pytest.raises(McpCallError):
        sv.call("tools", "tools/call", {"name": "drop"}, timeout=5, idempotent=True)
    calls = fake_mcp.seen("POST", "tools/call")[1:]
    assert len(calls) == 2 and calls[0].body["id"] != calls[1].body["id"]


def test_neither_the_session_id_nor_the_token_reaches_logs_or_status(
    fake_mcp: FakeMcp, make_sv: Callable[..., Streamvisor], caplog: pytest.LogCaptureFixture
) -> None:
    import logging
    from dataclasses import replace

    caplog.set_level(logging.DEBUG)
    token = "tok-5ecr3t-value"
    spec = replace(mcp_spec(fake_mcp.url), headers={"Authorization": f"Bearer {token}"})
    sv = make_sv([spec])
    sv.start()
    assert wait_until(lambda: _listening(sv))
    fake_mcp.expire_all()  # a 404, a re-initialize, a DELETE on stop: all logged paths
    assert wait_until(lambda: _listening(sv) and len(fake_mcp.sessions) == 1, 5)
    sids = [r.headers["Mcp-Session-Id"] for r in fake_mcp.seen("GET")]
    status = repr(sv.status())
    sv.stop(timeout=5)
    assert fake_mcp.seen("GET")[0].headers["Authorization"] == f"Bearer {token}"
    for secret in [token, *sids]:
        assert secret not in caplog.text and secret not in status


def test_call_notifications_go_out_with_the_listening_streams_next_chunk(
    fake_mcp: FakeMcp, make_sv: Callable[..., Streamvisor], collector: CollectorHandle
) -> None:
    from streamvisor.upstream.mcp.jsonrpc import McpCallError

    sv = make_sv([mcp_spec(fake_mcp.url)])
    sv.subscribe(collector.ref)
    sv.start()
    assert wait_until(lambda: _listening(sv) and fake_mcp.streaming == 1)
    with pytest.raises(McpCallError):
        sv.call("tools", "tools/call", {"name": "drop"}, timeout=5)  # sends one progress
    fake_mcp.notify(params={"data": {"n": 1}})
    assert collector.wait_for(2)
    first, second = collector.events[:2]
    assert (first.event, first.id) == ("notifications/progress", None)
    assert second.event == "notifications/message" and second.id is not None


@pytest.mark.parametrize("stream_running", [True, False])
def test_a_call_on_a_server_slow_to_initialize_raises_mcp_timeout_at_its_timeout(
    fake_mcp: FakeMcp, make_sv: Callable[..., Streamvisor], stream_running: bool
) -> None:
    # Before: with the stream's own initialize waiting for the server (up to its read
    # timeout, 10 s here), the call waited for it, past its own timeout; making the
    # session itself, it raised ReadTimeoutError, not the documented McpTimeoutError.
    fake_mcp.initialize_delay = 2.5
    spec = mcp_spec(fake_mcp.url)
    if not stream_running:
        spec = dataclasses.replace(spec, enabled=False)
    sv = make_sv([spec]).start()
    if stream_running:
        assert wait_until(lambda: fake_mcp.seen("POST", "initialize"), 5)
    started = time.monotonic()
    with pytest.raises(McpTimeoutError):
        sv.call("tools", "tools/list", {}, timeout=0.5)
    assert time.monotonic() - started < 1.5


def test_stop_does_not_wait_for_a_server_slow_to_initialize(
    fake_mcp: FakeMcp, make_sv: Callable[..., Streamvisor]
) -> None:
    # Before: stop() waited for the initialize POST's answer (up to the read timeout), as
    # there was no socket to shut down before a response existed (upstream/watch.py).
    fake_mcp.initialize_delay = 20.0
    sv = make_sv([mcp_spec(fake_mcp.url)]).start()
    assert wait_until(lambda: fake_mcp.seen("POST", "initialize"), 5)
    started = time.monotonic()
    sv.stop(timeout=15)
    took = time.monotonic() - started
    assert took < 5, f"stop() took {took:.1f}s: it waited for initialize's answer"
