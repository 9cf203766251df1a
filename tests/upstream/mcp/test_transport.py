"""``upstream/mcp/transport.py`` and ``call.result_of``: what a malformed answer or a slow
server is called."""

from __future__ import annotations

import pytest
import requests
import responses

from streamvisor.errors import ReadTimeoutError, StreamProtocolError
from streamvisor.spec import StreamSpec
from streamvisor.upstream.mcp.call import result_of
from streamvisor.upstream.mcp.jsonrpc import McpCallError
from streamvisor.upstream.mcp.transport import post

URL = "http://mcp.test/mcp"
SPEC = StreamSpec(name="tools", url=URL, kind="mcp")
PING = {"jsonrpc": "2.0", "id": 1, "method": "ping"}


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (
            b"<html>hi</html>",
            "application/json",
            "got a body that is not JSON-RPC (application/json)",
        ),
        (b"", "application/json", "got a body that is not JSON-RPC (application/json)"),
        (b"hello", "text/plain", "got text/plain"),
        (b"hello", None, "got no content type"),
    ],
)
def test_a_200_that_is_not_json_rpc_says_what_it_was(
    body: bytes, content_type: str | None, message: str
) -> None:
    # Before: a JSON content type with a body that is not JSON was reported as
    # "expected a JSON-RPC answer, got application/json".
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, URL, body=body, status=200, content_type=content_type)
        with pytest.raises(StreamProtocolError) as raised:
            post(requests.Session(), SPEC, URL, PING, {})
    assert str(raised.value).endswith(message)


def test_a_read_timeout_names_the_timeout_rounded() -> None:
    # Before: the remaining time of a call's deadline was shown as "within 1.99994s".
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, URL, body=requests.ReadTimeout("slow"))
        with pytest.raises(ReadTimeoutError, match=r"no response within 2s$"):
            post(requests.Session(), SPEC, URL, PING, {}, read_timeout=1.9999412)


@pytest.mark.parametrize("error", ["nope", None, 3, [1]])
def test_an_answer_with_a_malformed_error_and_no_result_is_an_error_not_a_result(
    error: object,
) -> None:
    # Before: {"error": "nope"} (or null) gave the result None: ``mcp call`` printed null
    # and exited 0.
    with pytest.raises(McpCallError, match="tools/list: a malformed JSON-RPC error"):
        result_of({"jsonrpc": "2.0", "id": 1, "error": error}, "tools/list")


def test_a_result_is_still_a_result_even_null() -> None:
    assert result_of({"jsonrpc": "2.0", "id": 1, "result": None}) is None
    assert result_of({"jsonrpc": "2.0", "id": 1, "result": {"a": 1}, "error": None}) == {"a": 1}
    with pytest.raises(McpCallError, match=r"m \(JSON-RPC error 7\)"):
        result_of({"jsonrpc": "2.0", "id": 1, "error": {"code": 7, "message": "m"}})
