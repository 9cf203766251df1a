"""MCP upstreams (``kind: mcp``): keep an MCP server's notification channel alive.

Layers, in flow order (pure modules marked):
``options`` (pure: the ``mcp:`` mapping), ``session`` (pure: the state machine and what
HTTP statuses mean), ``jsonrpc`` and ``modern`` (pure: framing, the 2026 envelope),
``transport`` (HTTP over requests), ``call`` (one request, resumed by GET +
Last-Event-ID), ``stream`` (the per-stream session shared by attempts and callers),
``normalise`` and ``mailbox`` (translation; cross-thread hand-over), ``connection`` and
``legacy`` (the ``ConnectionLike`` the stream actor reads), ``invoke`` (``sv.call``),
``registry`` (per-``Streamvisor`` wiring), ``metrics``, ``cli``.

Contract: on a ``kind: mcp`` stream, ``Event.event`` is the JSON-RPC ``method``
(``response`` for results and errors), ``Event.data`` the raw JSON-RPC message and
``Event.id`` the upstream SSE id; the synthetic ``mcp/session_restarted``, ``mcp/gap``
and ``mcp/resync`` events say when a gap may exist.
"""

from streamvisor.upstream.mcp.call import McpTimeoutError
from streamvisor.upstream.mcp.jsonrpc import McpCallError
from streamvisor.upstream.mcp.options import McpOptions

__all__ = ["McpCallError", "McpOptions", "McpTimeoutError"]
