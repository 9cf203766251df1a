"""``streamvisor relay URL``: one supervised upstream re-served at ``/streams/NAME``.

Prints exactly one line on stdout, ``listening on http://HOST:PORT``, once clients can
connect; logs go to stderr. SIGINT and SIGTERM stop it gracefully (exit 0). It exits 1 when
the upstream fails for good (one line on stderr) or the address cannot be bound, 2 on a
usage error, and 0 when the upstream ends the stream for good (HTTP 204).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType
from typing import Any

from streamvisor.api.facade import Streamvisor
from streamvisor.cli.tail import upstream_redactor, upstream_spec
from streamvisor.daemon.logsetup import configure_logging
from streamvisor.relay.feed import attach
from streamvisor.relay.server import RelayError, RelayServer
from streamvisor.relay.settings import RelayConfig
from streamvisor.states import StreamState
from streamvisor.upstream.connector import HTTPConnector

__all__ = ["parse_listen", "run_relay"]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[IPv6]:PORT`` as ``(host, port)``.

    Raises:
        ValueError: not of that form, or the port is not 0 to 65535.
    """
    host, sep, port_text = text.strip().rpartition(":")
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError(f"--listen: expected HOST:PORT such as 127.0.0.1:8080, got {text!r}")
    return host, int(port_text)


def _config(args: argparse.Namespace) -> RelayConfig:
    host, port = parse_listen(args.listen)
    name = args.name
    if not name or "/" in name or name != name.strip():
        raise ValueError(f"--name: expected a name without '/' or spaces, got {name!r}")
    return RelayConfig(
        host=host,
        port=port,
        streams=(name,),
        max_events=args.history_events,
        max_age=args.history_seconds,
        max_buffer_bytes=args.client_max_bytes,
        heartbeat=args.heartbeat,
        tokens=tuple(args.tokens),
    )


def run_relay(args: argparse.Namespace) -> int:
    """Run ``streamvisor relay`` with parsed arguments; return the exit code."""
    redactor = upstream_redactor(args)
    for token in args.tokens:
        redactor.add(token)
    configure_logging(args.log_level, args.log_format, redactor=redactor)
    try:
        config = _config(args)
        spec = upstream_spec(args, args.name)
    except ValueError as exc:
        print(f"streamvisor relay: {redactor.scrub(str(exc))}", file=sys.stderr)
        return EXIT_USAGE

    done = threading.Event()
    ended: list[StreamState] = []

    def on_state(stream: str, state: StreamState) -> None:
        if state in (StreamState.FAILED, StreamState.CLOSED):
            ended.append(state)
            done.set()

    # One cookie jar per stream (the connector's), kept across reconnects as a browser does.
    sv = Streamvisor([spec], on_state=on_state, connect=HTTPConnector())
    server = RelayServer(config)
    feed = attach(sv, server.publish, config.streams)
    previous: dict[int, Any] = {}
    try:
        try:
            host, port = server.start()
        except RelayError as exc:
            print(f"streamvisor relay: {exc}", file=sys.stderr)
            return EXIT_FAILURE
        shown = f"[{host}]" if ":" in host else host
        print(f"listening on http://{shown}:{port}", flush=True)
        previous = _install_signals(done)
        sv.start()
        while not done.wait(0.5):
            pass
        reason = None
        if ended and ended[0] is StreamState.FAILED:
            reason = sv.status()["streams"].get(spec.name, {}).get("last_error")
    finally:
        sv.stop(timeout=5.0)
        feed.close()
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if ended and ended[0] is StreamState.FAILED:
        print(f"streamvisor relay: {redactor.scrub(reason or 'stream failed')}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def _install_signals(done: threading.Event) -> dict[int, Any]:
    """SIGINT/SIGTERM set ``done`` (graceful stop); only possible in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return {}

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    return {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
