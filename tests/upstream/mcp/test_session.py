"""The MCP session state machine (pure): what statuses and stream ends mean."""

from __future__ import annotations

import pytest

from streamvisor.upstream.mcp.options import McpOptions
from streamvisor.upstream.mcp.session import (
    EndVerdict,
    Era,
    GetVerdict,
    ListenPhase,
    McpSession,
    SessionPhase,
    valid_session_id,
)


def ready(**options: object) -> McpSession:
    s = McpSession(McpOptions(**options))  # type: ignore[arg-type]
    s.initialized(Era.STREAMABLE, "sid-1", "2025-11-25")
    return s


@pytest.mark.parametrize(
    ("status", "sent_cursor", "verdict"),
    [
        (200, False, GetVerdict.OPEN),
        (405, False, GetVerdict.UNSUPPORTED),
        (405, True, GetVerdict.UNSUPPORTED),
        (404, False, GetVerdict.EXPIRED),
        (404, True, GetVerdict.EXPIRED),
        (409, False, GetVerdict.CONFLICT_RETRY),
        (400, True, GetVerdict.UNRESUMABLE_RETRY),
        (400, False, GetVerdict.FAIL),
        (401, True, GetVerdict.FAIL),
        (503, False, GetVerdict.FAIL),
    ],
)
def test_get_status_table(status: int, sent_cursor: bool, verdict: GetVerdict) -> None:
    assert ready().get_verdict(status, sent_cursor) is verdict


def test_404_without_a_session_is_not_an_expiry() -> None:
    s = McpSession(McpOptions())
    assert s.get_verdict(404, False) is GetVerdict.FAIL


def test_conflicts_escalate_to_a_new_session_after_the_limit_and_reset() -> None:
    s = ready(conflict_reinit_after=3)
    verdicts = [s.get_verdict(409, False) for _ in range(4)]
    assert verdicts == [
        GetVerdict.CONFLICT_RETRY,
        GetVerdict.CONFLICT_RETRY,
        GetVerdict.CONFLICT_NEW_SESSION,
        GetVerdict.CONFLICT_RETRY,
    ]


def test_an_open_stream_resets_the_conflict_count() -> None:
    s = ready(conflict_reinit_after=2)
    assert s.get_verdict(409, False) is GetVerdict.CONFLICT_RETRY
    s.opened()
    assert s.get_verdict(409, False) is GetVerdict.CONFLICT_RETRY
    assert s.listen is ListenPhase.CONNECTED


@pytest.mark.parametrize(
    ("cursor", "received", "sent_cursor", "verdict"),
    [
        ("7", True, True, EndVerdict.POLL),
        ("7", True, False, EndVerdict.POLL),
        (None, True, False, EndVerdict.END),
        (None, False, False, EndVerdict.END),
        ("7", False, True, EndVerdict.UNRESUMABLE_RETRY),
    ],
)
def test_clean_end_table(
    cursor: str | None, received: bool, sent_cursor: bool, verdict: EndVerdict
) -> None:
    s = ready()
    s.cursor = cursor
    assert s.end_verdict(received, sent_cursor) is verdict


def test_unresumable_cursor_is_dropped_after_the_limit_and_counted() -> None:
    s = ready(unresumable_after=3)
    s.saw("42")
    got = [s.end_verdict(False, True) for _ in range(3)]
    assert got == [EndVerdict.UNRESUMABLE_RETRY] * 2 + [EndVerdict.UNRESUMABLE_DROP]
    assert s.cursor is None and s.resumes["failed"] == 3


def test_a_message_resets_the_unresumable_count() -> None:
    s = ready(unresumable_after=2)
    s.saw("1")
    assert s.end_verdict(False, True) is EndVerdict.UNRESUMABLE_RETRY
    s.saw("2")
    assert s.end_verdict(False, True) is EndVerdict.UNRESUMABLE_RETRY
    assert s.cursor == "2"


def test_empty_id_clears_the_cursor() -> None:
    s = ready()
    s.saw("5")
    s.saw("")
    assert s.cursor is None


def test_expire_is_compare_and_drop() -> None:
    s = ready()
    s.saw("9")
    assert not s.expire("other-session")
    assert s.session_id == "sid-1" and s.cursor == "9"
    assert s.expire("sid-1")
    assert s.session_id is None and s.cursor is None
    assert s.phase is SessionPhase.REINITIALIZING and s.expiries == 1
    assert not s.expire("sid-1")  # the second thread's 404 for the same session


def test_reinitialize_reports_a_restart_and_bumps_the_generation() -> None:
    s = McpSession(McpOptions())
    assert not s.initialized(Era.STREAMABLE, "a", "2025-06-18")
    gen = s.generation
    assert s.initialized(Era.STREAMABLE, "b", "2025-06-18")
    assert s.generation == gen + 1 and s.initializations == 2


@pytest.mark.parametrize(
    ("legacy_sse", "status", "fallback"),
    [(True, 400, True), (True, 404, True), (True, 405, True), (True, 500, False),
     (True, 401, False), (False, 405, False)],
)  # fmt: skip
def test_initialize_status_fallback_to_http_sse(
    legacy_sse: bool, status: int, fallback: bool
) -> None:
    assert McpSession(McpOptions(legacy_sse=legacy_sse)).initialize_verdict(status) is fallback


def test_a_failed_fallback_forgets_the_era_until_an_http_sse_session_was_made() -> None:
    s = McpSession(McpOptions())
    s.fall_back("initialize answered HTTP 404 Not Found")
    s.listen = ListenPhase.CONNECTING
    s.legacy_failed("GET answered HTTP 404 Not Found")
    assert s.era is Era.UNKNOWN and s.fallback_error == "GET answered HTTP 404 Not Found"
    snap = s.snapshot()
    assert snap["session"] == "failed" and snap["error"] == s.fallback_error
    assert snap["listen"] == "backing_off"
    s.fall_back("initialize answered HTTP 404 Not Found")  # a caller's own initialize
    assert s.era is Era.UNKNOWN  # while the failure stands
    s.fallback_error = None  # a new HTTP+SSE attempt starts (open_legacy)
    s.fall_back("initialize answered HTTP 404 Not Found")
    assert s.era is Era.LEGACY_SSE
    s.initialized(Era.LEGACY_SSE, None, "2024-11-05")  # the fallback worked this time
    assert s.fallback_cause is None and s.fallback_error is None
    s.discard()
    s.legacy_failed("connection refused")  # a reconnect failed: the era is known by now
    assert s.era is Era.LEGACY_SSE and s.fallback_error == "connection refused"


@pytest.mark.parametrize(
    ("version", "header"),
    [("2025-03-26", None), ("2025-06-18", "2025-06-18"), ("2025-11-25", "2025-11-25")],
)
def test_protocol_version_header_from_2025_06_18(version: str, header: str | None) -> None:
    s = McpSession(McpOptions())
    s.initialized(Era.STREAMABLE, "sid", version)
    assert s.headers().get("MCP-Protocol-Version") == header
    assert s.headers()["Mcp-Session-Id"] == "sid"


@pytest.mark.parametrize(
    ("value", "ok"),
    [("abc-123", True), ("!~", True), ("", False), ("a b", False), ("é", False),
     ("a\nb", False), (None, False)],
)  # fmt: skip
def test_session_id_must_be_visible_ascii(value: str | None, ok: bool) -> None:
    assert valid_session_id(value) is ok


def test_snapshot_never_shows_the_session_id() -> None:
    s = ready()
    snap = s.snapshot()
    assert snap["session_id"] == "***" and "sid-1" not in repr(snap)
    assert snap["era"] == "streamable_http" and snap["session"] == "ready"


def test_server_requests_are_labelled_by_known_method_else_other() -> None:
    s = ready()
    for method in ("ping", "ping", "sampling/createMessage", "x/unknown"):
        s.server_request(method)
    assert s.server_requests == {"ping": 2, "sampling/createMessage": 1, "other": 1}


def test_prometheus_families_for_mcp_streams_only() -> None:
    from prometheus_client import generate_latest

    from streamvisor.daemon.metrics import build_registry

    s = ready()
    s.expire("sid-1")
    s.initialized(Era.STREAMABLE, "sid-2", "2025-11-25")
    s.resumes["ok"] = 4
    s.server_request("ping")
    s.opened()
    status = {"streams": {"tools": {"state": "connected", "mcp": s.snapshot()}, "plain": {}}}
    text = generate_latest(build_registry(lambda: status)).decode()
    assert 'streamvisor_mcp_initialize_total{stream="tools"} 2.0' in text
    assert 'streamvisor_mcp_session_expired_total{stream="tools"} 1.0' in text
    assert 'streamvisor_mcp_resume_total{outcome="ok",stream="tools"} 4.0' in text
    assert 'streamvisor_mcp_server_requests_total{method="ping",stream="tools"} 1.0' in text
    assert 'streamvisor_mcp_listen_state{state="connected",stream="tools"} 1.0' in text
    assert 'stream="plain"' not in text.split("streamvisor_mcp_", 1)[1]
    assert "sid-2" not in text
