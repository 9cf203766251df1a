"""``streamvisor mcp call URL METHOD JSON``: one request on a fresh MCP session.

Prints the result as JSON on stdout. Exit codes: 0 result, 1 runtime failure (a JSON-RPC
error, the server unreachable, a timeout), 2 usage (an empty method, params that are not a
JSON object, a bad URL or header), 130 Ctrl-C (``cli.main``). The session is deleted
afterwards; secrets never reach stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from streamvisor.upstream.mcp.stream import McpStream

__all__ = ["add_parser", "run_call"]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def add_parser(sub: Any, header: Any, positive_float: Any, add_logging: Any) -> None:
    """Add ``mcp call`` to the command line (``sub``: the subparsers of ``cli.py``)."""
    mcp = sub.add_parser("mcp", help="talk to an MCP server (Streamable HTTP or HTTP+SSE)")
    actions = mcp.add_subparsers(dest="mcp_command", metavar="ACTION", parser_class=type(mcp))
    call = actions.add_parser("call", help="send one JSON-RPC request, print its result")
    call.add_argument("url", help="the MCP endpoint, e.g. http://127.0.0.1:8000/mcp")
    call.add_argument("method", help="the JSON-RPC method, e.g. tools/call")
    call.add_argument("params", nargs="?", default=None, help="params as a JSON object")
    call.add_argument(
        "-H",
        "--header",
        dest="headers",
        action="append",
        default=[],
        type=header,
        metavar="'Name: value'",
    )
    call.add_argument("--timeout", type=positive_float, default=30.0, metavar="SECONDS")
    call.add_argument(
        "--idempotent", action="store_true", help="the request may be sent again if lost"
    )
    call.add_argument(
        "--protocol-version",
        dest="versions",
        action="append",
        default=None,
        help="offer this version (repeatable; newest first)",
    )
    add_logging(call, "warning")


def run_call(args: argparse.Namespace) -> int:
    """Run ``mcp call`` with parsed arguments; return the exit code."""
    from streamvisor.daemon.logsetup import configure_logging
    from streamvisor.errors import StreamError
    from streamvisor.policy.redact import Redactor, request_secrets
    from streamvisor.spec import StreamSpec
    from streamvisor.upstream.mcp.invoke import EMPTY_METHOD, invoke
    from streamvisor.upstream.mcp.jsonrpc import McpCallError
    from streamvisor.upstream.mcp.stream import LegacySseRequired, McpStream

    headers = dict(args.headers)
    redactor = Redactor(request_secrets(args.url, headers.items()))
    configure_logging(args.log_level, "text", redactor=redactor)
    if not args.method.strip():
        return _usage(EMPTY_METHOD)
    try:
        params = json.loads(args.params) if args.params is not None else None
    except ValueError as exc:
        return _usage(f"params are not JSON: {exc}")
    if args.params is not None and not isinstance(params, dict):
        return _usage("params must be a JSON object (MCP requests take named params)")
    options: dict[str, Any] = {"listen": "none"}
    if args.versions:
        options["protocol_versions"] = args.versions
    try:
        spec = StreamSpec(
            name="call",
            url=args.url,
            headers=headers,
            kind="mcp",
            mcp=options,
            read_timeout=args.timeout,
            connect_timeout=min(args.timeout, 10.0),
        )
    except ValueError as exc:
        return _usage(redactor.scrub(str(exc)))
    stream = McpStream(spec)
    reader: _Reader | None = None
    try:
        try:
            stream.ensure_session(stream.clock() + args.timeout)
        except LegacySseRequired:
            reader = _Reader(stream)
        result = invoke(
            stream, args.method, params, timeout=args.timeout, idempotent=args.idempotent
        )
    except (McpCallError, StreamError) as exc:
        print(f"streamvisor mcp call: {redactor.scrub(str(exc))}", file=sys.stderr)
        return EXIT_FAILURE
    finally:
        if reader is not None:
            reader.stop()
        stream.close()
    print(json.dumps(result, ensure_ascii=False))
    return EXIT_OK


def _usage(message: str) -> int:
    print(f"streamvisor mcp call: {message}", file=sys.stderr)
    return EXIT_USAGE


class _Reader:
    """Reads an HTTP+SSE stream in a thread while the call waits for its answer there."""

    def __init__(self, stream: McpStream) -> None:
        from streamvisor.upstream.mcp.connection import McpConnection

        self._conn = McpConnection(stream)
        self._thread = threading.Thread(target=self._run, name="mcp-call-reader", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._conn.open()
            while self._conn.read():
                pass
        except Exception:  # open_legacy recorded why: the waiting call raises it at once
            return

    def stop(self) -> None:
        self._conn.interrupt()
        self._thread.join(5)
        self._conn.close()
