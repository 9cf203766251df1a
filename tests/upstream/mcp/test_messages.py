"""MCP options, JSON-RPC framing and the 2026 envelope (pure)."""

from __future__ import annotations

import json
import textwrap

import pytest

from streamvisor.config.load import ConfigErrors, parse_config
from streamvisor.spec import StreamSpec
from streamvisor.sse import Decoder
from streamvisor.upstream.mcp import jsonrpc, modern
from streamvisor.upstream.mcp.options import McpOptions, parse_options


def test_defaults_offer_2026_first_then_the_handshake_versions() -> None:
    o = parse_options(None)
    assert o.protocol_versions[0] == "2026-07-28" and o.modern_version == "2026-07-28"
    assert o.handshake_versions[0] == "2025-11-25" and o.listen == "auto"
    assert parse_options({"listen": "get"}).modern_version is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"listen": "always"}, "mcp.listen: expected one of"),
        ({"protocol_versions": ["2099-01-01"]}, "mcp.protocol_versions[0]: unknown protocol"),
        ({"ping_interval": -1}, "mcp.ping_interval: must be at least 0"),
        ({"conflict_reinit_after": 0}, "mcp.conflict_reinit_after: expected an integer"),
        ({"after_initialize": [{"params": {}}]}, "mcp.after_initialize[0]: expected"),
        ({"after_initialize": [{"method": "x", "bogus": 1}]}, "after_initialize[0].bogus"),
        ({"ping_intervall": 1}, "did you mean 'ping_interval'?"),
        ({"legacy_sse": "yes"}, "mcp.legacy_sse: expected true or false"),
    ],
)
def test_bad_options_name_the_key(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_options(options)
    assert message in str(info.value)


def test_stream_spec_takes_mcp_options_only_with_kind_mcp() -> None:
    spec = StreamSpec(name="t", url="http://127.0.0.1/mcp", kind="mcp", mcp={"listen": "none"})
    assert isinstance(spec.mcp, McpOptions) and spec.mcp.listen == "none"
    assert StreamSpec(name="t", url="http://127.0.0.1/mcp", kind="mcp").mcp == McpOptions()
    with pytest.raises(ValueError, match="need kind: mcp"):
        StreamSpec(name="t", url="http://127.0.0.1/mcp", mcp={})
    with pytest.raises(ValueError, match="kind must be sse or mcp"):
        StreamSpec(name="t", url="http://127.0.0.1/mcp", kind="grpc")


def test_config_check_reports_mcp_problems_with_lines() -> None:
    text = textwrap.dedent(
        """\
        streams:
          - name: tools
            kind: mcp
            url: http://127.0.0.1:8000/mcp
            mcp:
              listen: sometimes
              after_initialize:
                - {method: resources/subscribe, params: {uri: "file:///a"}}
        """
    )
    with pytest.raises(ConfigErrors) as info:
        parse_config(text, source="c.yaml", base_dir="/", environ={})
    assert [e.format() for e in info.value.errors] == [
        "c.yaml:6: streams[0].mcp.listen: expected one of auto, get, subscriptions, none, "
        "got 'sometimes'"
    ]
    good = text.replace("sometimes", "get")
    config = parse_config(good, source="c.yaml", base_dir="/", environ={})
    spec = config.streams[0]
    assert spec.kind == "mcp" and spec.mcp.listen == "get"
    assert spec.mcp.after_initialize_calls() == [("resources/subscribe", {"uri": "file:///a"})]


def test_each_message_becomes_one_sse_event_named_by_its_method() -> None:
    note = '{"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}}'
    block = jsonrpc.encode_event("notifications/progress", note, "e7")
    block += jsonrpc.encode_event("response", '{"jsonrpc":"2.0","id":1,\n"result":{}}')
    events = Decoder("s").feed(block)
    assert [(e.event, e.id) for e in events] == [
        ("notifications/progress", "e7"),
        ("response", None),
    ]
    assert events[0].data == note and json.loads(events[1].data) == {
        "jsonrpc": "2.0",
        "id": 1,
        "result": {},
    }


def test_an_empty_id_resets_the_last_event_id() -> None:
    decoder = Decoder("s", last_event_id="old")
    decoder.feed(jsonrpc.encode_event("mcp/session_restarted", "{}", ""))
    assert not decoder.last_event_id


@pytest.mark.parametrize(
    ("data", "methods"),
    [
        ('{"jsonrpc":"2.0","method":"a"}', ["a"]),
        (
            '[{"jsonrpc":"2.0","method":"a"},{"jsonrpc":"2.0","id":1,"result":{}}]',
            ["a", "response"],
        ),
        ("", None),
        ("ping", None),
        ("[1, 2]", None),
    ],
)
def test_parse_messages_splits_2025_03_26_batches(data: str, methods: list[str] | None) -> None:
    parsed = jsonrpc.parse_messages(data)
    assert (None if parsed is None else [jsonrpc.event_name(m) for m in parsed]) == methods


def test_2026_envelope_adds_meta_and_routing_headers() -> None:
    msg = jsonrpc.request(3, "tools/call", {"name": "héllo", "arguments": {}})
    out, headers = modern.envelope(msg, "2026-07-28", {"name": "streamvisor"})
    meta = out["params"]["_meta"]
    assert meta["io.modelcontextprotocol/protocolVersion"] == "2026-07-28"
    assert meta["io.modelcontextprotocol/clientCapabilities"] == {}
    assert headers["Mcp-Method"] == "tools/call" and headers["MCP-Protocol-Version"] == "2026-07-28"
    assert headers["Mcp-Name"].startswith("=?base64?")
    assert "_meta" not in msg["params"]  # the caller's message is not changed
    _, plain = modern.envelope(
        jsonrpc.request(4, "resources/read", {"uri": "file:///a"}), "2026-07-28", {}
    )
    assert plain["Mcp-Name"] == "file:///a"


def test_call_errors_carry_their_code() -> None:
    error = jsonrpc.McpCallError("Method not found", -32601)
    assert error.code == -32601 and "-32601" in str(error)
