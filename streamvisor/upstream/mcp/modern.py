"""The 2026-07-28 per-request envelope (SEP-2575). Pure: no I/O.

Every request carries ``params._meta`` with the protocol version, client capabilities and
client info, and the headers ``MCP-Protocol-Version``, ``Mcp-Method`` and, for
``tools/call``, ``prompts/get`` and ``resources/read``, ``Mcp-Name`` (2026-07-28
basic/transports/streamable-http, "Request Headers"; a mismatch is a 400 ``-32020``).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "ACK_METHOD",
    "META_SUBSCRIPTION_ID",
    "envelope",
    "is_graceful_end",
    "is_modern_discover",
]

ACK_METHOD = "notifications/subscriptions/acknowledged"
META_SUBSCRIPTION_ID = "io.modelcontextprotocol/subscriptionId"
_META_VERSION = "io.modelcontextprotocol/protocolVersion"
_META_CAPABILITIES = "io.modelcontextprotocol/clientCapabilities"
_META_CLIENT_INFO = "io.modelcontextprotocol/clientInfo"
_NAME_BEARING = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}
_HEADER_SAFE = re.compile(r"[\x20-\x7e]*")


def envelope(
    message: Mapping[str, Any], version: str, client_info: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """``message`` with the ``_meta`` envelope added, and the routing headers it needs."""
    out = dict(message)
    headers = {"MCP-Protocol-Version": version}
    method = out.get("method")
    if isinstance(method, str):
        params = dict(out.get("params") or {})
        meta = dict(params.get("_meta") or {})
        meta.setdefault(_META_VERSION, version)
        meta.setdefault(_META_CAPABILITIES, {})
        meta.setdefault(_META_CLIENT_INFO, dict(client_info))
        params["_meta"] = meta
        out["params"] = params
        headers["Mcp-Method"] = method
        key = _NAME_BEARING.get(method)
        value = params.get(key) if key else None
        if isinstance(value, str):
            headers["Mcp-Name"] = _header_value(value)
    return out, headers


def _header_value(value: str) -> str:
    """Visible ASCII as is; anything else as ``=?base64?...?=`` (the spec's encoding)."""
    if _HEADER_SAFE.fullmatch(value) and value == value.strip():
        return value
    return "=?base64?" + base64.b64encode(value.encode("utf-8")).decode("ascii") + "?="


def is_modern_discover(result: Any, version: str) -> bool:
    """True when a ``server/discover`` result advertises ``version`` (basic/versioning)."""
    if not isinstance(result, Mapping):
        return False
    supported = result.get("supportedVersions")
    return isinstance(supported, list) and version in supported


def is_graceful_end(message: Mapping[str, Any], listen_id: Any) -> bool:
    """The response to the listen request: the server ended the subscription on purpose."""
    return "method" not in message and message.get("id") == listen_id
