"""The real ``mcp`` SDK server for the tests, run as ``python tests/support/mcp_real_server.py``.

It prints its port on the first line of stdout and serves until killed:
* ``--app streamable`` (default): ``/mcp``, Streamable HTTP with an in-memory EventStore
  (the wheel ships none) and ``retry_interval``; the same endpoint serves the 2026-07-28
  sessionless era (``subscriptions/listen``);
* ``--app sse``: the deprecated 2024-11-05 HTTP+SSE transport at ``/sse``.
Control routes drive it: ``POST /control/notify?start=S&count=N&interval=T`` (standalone
``notifications/message`` with ``data.n`` = S.., to every session), ``POST /control/cut``
(close every standalone GET stream), ``POST /control/tools_changed``, ``GET /control/stats``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import sys
from typing import Any

import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.streamable_http import EventCallback, EventMessage, EventStore
from mcp.server.subscriptions import ToolsListChanged
from starlette.requests import Request
from starlette.responses import JSONResponse, Response


class MemoryEventStore(EventStore):
    """Events in a list; a replay reads the live list to its end (so events stored while
    replaying are not lost)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, Any]] = []

    async def store_event(self, stream_id: str, message: Any) -> str:
        event_id = str(len(self.events) + 1)
        self.events.append((event_id, stream_id, message))
        return event_id

    async def replay_events_after(
        self, last_event_id: str, send_callback: EventCallback
    ) -> str | None:
        ids = [e[0] for e in self.events]
        if last_event_id not in ids:
            return None
        i = ids.index(last_event_id)
        stream_id = self.events[i][1]
        i += 1
        while i < len(self.events):
            event_id, sid, message = self.events[i]
            if sid == stream_id and message is not None:
                await send_callback(EventMessage(message, event_id))
            i += 1
        return stream_id


class State:
    def __init__(self) -> None:
        self.connections: dict[Any, Any] = {}
        self.closers: dict[Any, Any] = {}
        self.stats = {"setlevel": 0, "initialize": 0, "calls": 0}


def build(app_kind: str) -> Any:
    state = State()

    async def register(ctx: Any, call_next: Any) -> Any:
        conn = ctx.session._connection
        key = conn.session_id or id(conn)
        state.connections[key] = conn
        if ctx.close_standalone_sse_stream is not None:
            state.closers[key] = ctx.close_standalone_sse_stream
        if ctx.method == "logging/setLevel":
            state.stats["setlevel"] += 1
        elif ctx.method == "initialize":
            state.stats["initialize"] += 1
        elif ctx.method == "tools/call":
            state.stats["calls"] += 1
        return await call_next(ctx)

    server = MCPServer("streamvisor-test", middleware=[register])

    @server.tool()
    def echo(text: str) -> str:
        return text

    @server.tool()
    async def progress_then_close(steps: int, ctx: Context) -> str:
        for i in range(steps):
            await ctx.report_progress(i + 1, steps)
            if i == steps // 2:
                await ctx.close_sse_stream()
            await asyncio.sleep(0.02)
        return f"done after {steps}"

    async def notify(request: Request) -> Response:
        q = request.query_params
        start, count = int(q.get("start", "0")), int(q.get("count", "1"))
        interval = float(q.get("interval", "0"))

        async def emit() -> None:
            for n in range(start, start + count):
                for conn in list(state.connections.values()):
                    await conn.notify("notifications/message", {"level": "info", "data": {"n": n}})
                if interval:
                    await asyncio.sleep(interval)

        asyncio.get_running_loop().create_task(emit())
        return JSONResponse({"ok": True})

    async def cut(request: Request) -> Response:
        for closer in list(state.closers.values()):
            with contextlib.suppress(Exception):
                await closer()
        return JSONResponse({"cut": len(state.closers)})

    async def tools_changed(request: Request) -> Response:
        await server._subscriptions.publish(ToolsListChanged())
        for conn in list(state.connections.values()):
            await conn.send_tool_list_changed()
        return JSONResponse({"ok": True})

    async def stats(request: Request) -> Response:
        return JSONResponse({**state.stats, "sessions": len(state.connections)})

    if app_kind == "sse":
        app = server.sse_app()
    else:
        app = server.streamable_http_app(event_store=MemoryEventStore(), retry_interval=200)
    app.add_route("/control/notify", notify, methods=["POST"])
    app.add_route("/control/cut", cut, methods=["POST"])
    app.add_route("/control/tools_changed", tools_changed, methods=["POST"])
    app.add_route("/control/stats", stats, methods=["GET"])
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--app", default="streamable", choices=["streamable", "sse"])
    args = parser.parse_args()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    print(sock.getsockname()[1], flush=True)
    config = uvicorn.Config(build(args.app), log_level="error", lifespan="on")
    uvicorn.Server(config).run(sockets=[sock])
    sys.exit(0)


if __name__ == "__main__":
    main()
