"""describe_cause: the real cause of a failed attempt, in words a person can act on."""

from __future__ import annotations

import pytest

from streamvisor.errors import ConnectError
from streamvisor.spec import StreamSpec
from streamvisor.upstream.connection import Connection
from tests.support.sse_server import SSEServer

pytestmark = pytest.mark.timeout(30)


def test_a_dead_proxy_is_named_as_the_proxy_and_its_password_is_not_shown(
    sse_server: SSEServer, refusing_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://user:s3cret-pw@127.0.0.1:{refusing_port}")
    spec = StreamSpec(name="t", url=sse_server.url("/events"), connect_timeout=2)
    with pytest.raises(ConnectError) as info:
        Connection(spec).open()  # a private session: it reads the proxy from the environment
    assert info.value.cause == "the proxy failed: Connection refused"
    assert "s3cret-pw" not in str(info.value)
    assert sse_server.requests == []  # nothing reached the server itself


def test_without_a_proxy_the_cause_is_the_servers(
    refusing_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    spec = StreamSpec(name="t", url=f"http://127.0.0.1:{refusing_port}/", connect_timeout=2)
    with pytest.raises(ConnectError) as info:
        Connection(spec).open()
    assert info.value.cause == "Connection refused"
