"""An endpoint that refuses every request (404, 405): ``mcp call``, ``sv.call`` and
``kind: mcp`` streams fail at once with the real status, on the HTTP+SSE fallback path and
on the 2026-07-28 path, and a fallback that could not work is not stuck for good."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from streamvisor.api.facade import Streamvisor
from streamvisor.cli.main import main
from streamvisor.errors import StreamError
from streamvisor.upstream.mcp import McpCallError
from tests.support.mcp_fake import FakeMcp
from tests.support.mcpkind import mcp_spec
from tests.support.wait import wait_until

REFUSALS = [(404, "HTTP 404 Not Found"), (405, "HTTP 405 Method Not Allowed")]
MODERN = ["2026-07-28", "2025-11-25"]
# Long enough that "no session in time" cannot pass for a failure at once: the real cause
# is printed only by the failure path.
TIMEOUT = 10.0


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """``main()`` points the root logger at the captured stderr; leave it as it was."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        yield
    finally:
        for handler in [h for h in root.handlers if h not in handlers]:
            root.removeHandler(handler)
            handler.close()
        root.setLevel(level)


def _refuse(fake: FakeMcp, status: int) -> None:
    fake.post_status = fake.get_status = status


def _stream(sv: Streamvisor) -> dict[str, Any]:
    info: dict[str, Any] = sv.status()["streams"]["tools"]
    return info


@pytest.mark.parametrize(("status", "cause"), REFUSALS)
def test_mcp_call_fails_at_once_with_the_status_when_the_fallback_get_is_refused(
    fake_mcp: FakeMcp, capsys: pytest.CaptureFixture[str], status: int, cause: str
) -> None:
    _refuse(fake_mcp, status)
    argv = ["mcp", "call", fake_mcp.url, "tools/list", "{}", "--timeout", str(TIMEOUT)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("streamvisor mcp call: ")
    assert f"initialize answered {cause}" in err and f"fallback failed: {cause}" in err
    assert "in time" not in err
    sent = [(r.method, (r.body or {}).get("method")) for r in fake_mcp.requests]
    assert sent == [("POST", "server/discover"), ("POST", "initialize"), ("GET", None)]


@pytest.mark.parametrize(("status", "cause"), REFUSALS)
def test_sv_call_on_a_stream_whose_fallback_is_refused_fails_at_once_with_the_status(
    fake_mcp: FakeMcp, make_sv: Callable[..., Streamvisor], status: int, cause: str
) -> None:
    _refuse(fake_mcp, status)
    sv = make_sv([mcp_spec(fake_mcp.url)])
    sv.start()
    with pytest.raises(McpCallError, match=f"fallback failed: {cause}") as caught:
        sv.call("tools", "tools/list", {}, timeout=TIMEOUT)
    assert isinstance(caught.value, StreamError) and caught.value.code is None
    assert wait_until(lambda: _stream(sv)["state"] == "failed")
    info = _stream(sv)
    assert cause in info["last_error"]
    mcp = info["mcp"]
    assert mcp["session"] == "failed" and f"initialize answered {cause}" in mcp["error"]
    assert mcp["era"] == "unknown" and mcp["listen"] != "connecting"


def test_every_call_on_a_stream_whose_fallback_failed_says_why_at_once(
    fake_mcp: FakeMcp, make_sv: Callable[..., Streamvisor]
) -> None:
    _refuse(fake_mcp, 404)
    sv = make_sv([mcp_spec(fake_mcp.url)])
    sv.start()
    assert wait_until(lambda: _stream(sv)["state"] == "failed")
    for _ in range(2):  # the stream is down for good: every call says why, at once
        with pytest.raises(McpCallError, match="fallback failed: HTTP 404 Not Found"):
            sv.call("tools", "tools/list", {}, timeout=TIMEOUT)
    assert len(fake_mcp.seen("GET")) == 1  # a call does not open the HTTP+SSE stream
    assert _stream(sv)["mcp"]["era"] == "unknown"  # the calls' initialize guessed nothing


def test_a_refused_fallback_is_forgotten_so_a_recovered_server_is_initialized_again(
    fake_mcp: FakeMcp, make_sv: Callable[..., Streamvisor]
) -> None:
    fake_mcp.post_status, fake_mcp.get_status = 404, 503  # 503 on GET: retried
    sv = make_sv([mcp_spec(fake_mcp.url)])
    sv.start()
    assert wait_until(lambda: len(fake_mcp.seen("GET")) >= 2)
    assert len(fake_mcp.seen("POST", "initialize")) >= 2  # each attempt asks again
    fake_mcp.post_status = None  # now a Streamable HTTP server (GET still 503 for a while)
    assert wait_until(lambda: bool(fake_mcp.sessions))
    fake_mcp.get_status = None
    assert wait_until(lambda: _stream(sv)["mcp"]["listen"] == "connected")
    mcp = _stream(sv)["mcp"]
    assert mcp["era"] == "streamable_http" and mcp["session"] == "ready" and not mcp["error"]


@pytest.mark.parametrize("status", [404, 405])
def test_mcp_call_on_a_2026_server_that_refuses_the_request_fails_at_once(
    fake_mcp: FakeMcp, capsys: pytest.CaptureFixture[str], status: int
) -> None:
    fake_mcp.discover_versions = ["2026-07-28"]
    _refuse(fake_mcp, status)
    versions = [arg for v in MODERN for arg in ("--protocol-version", v)]
    argv = ["mcp", "call", fake_mcp.url, "tools/list", "{}", "--timeout", str(TIMEOUT)]
    assert main([*argv, *versions]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"tools/list: HTTP {status}" in err
    assert [r.body["method"] for r in fake_mcp.requests] == ["server/discover", "tools/list"]


@pytest.mark.parametrize(("status", "cause"), REFUSALS)
def test_2026_stream_whose_listen_is_refused_fails_and_calls_fail_at_once(
    fake_mcp: FakeMcp, make_sv: Callable[..., Streamvisor], status: int, cause: str
) -> None:
    fake_mcp.discover_versions = ["2026-07-28"]
    _refuse(fake_mcp, status)
    sv = make_sv([mcp_spec(fake_mcp.url, protocol_versions=MODERN)])
    sv.start()
    assert wait_until(lambda: _stream(sv)["state"] == "failed")
    assert cause in _stream(sv)["last_error"] and _stream(sv)["mcp"]["era"] == "2026-07-28"
    with pytest.raises(McpCallError, match=f"tools/list: HTTP {status}"):
        sv.call("tools", "tools/list", {}, timeout=TIMEOUT)
    assert not fake_mcp.seen("GET")  # no HTTP+SSE fallback on a 2026 server


def test_listen_subscriptions_on_a_server_without_2026_says_what_discover_got(
    fake_mcp: FakeMcp, make_sv: Callable[..., Streamvisor]
) -> None:
    _refuse(fake_mcp, 404)
    spec = mcp_spec(fake_mcp.url, protocol_versions=MODERN, listen="subscriptions")
    sv = make_sv([spec])  # not started: the call makes the session itself
    with pytest.raises(StreamError, match="server/discover answered HTTP 404 Not Found"):
        sv.call("tools", "tools/list", {}, timeout=TIMEOUT)
    assert not fake_mcp.seen("POST", "initialize")  # 2026 only: no handshake era tried
