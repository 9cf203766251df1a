"""Command line: ``streamvisor tail|relay|run|check|demo|top|cluster status``. Thin: parse,
wire, report, exit code.

Exit codes scripts can rely on: 0 success, 1 runtime failure (a permanent stream error,
retries exhausted), 2 usage or config errors, 130 interrupted (Ctrl-C). User mistakes get
one line on stderr and no traceback. ``main(argv)`` never calls ``sys.exit``.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable, Sequence

from streamvisor import __version__
from streamvisor.cli.arguments import argument_problem, header, token
from streamvisor.spec import MAX_TIMEOUT

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so ``main`` returns the code."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(f"{self.prog}: error: {message}")


class _UsageError(Exception):
    pass


def _float_type(check: Callable[[float], bool], wanted: str) -> Callable[[str], float]:
    """An argparse ``type``: a float for which ``check`` holds (NaN never does), else a
    usage error "expected <wanted>, got '<text>'"."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not check(value):
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}")
        return value

    return parse


_INF = float("inf")
_positive_float = _float_type(lambda v: 0 < v < _INF, "a number > 0")
_timeout = _float_type(
    lambda v: 0 < v <= MAX_TIMEOUT, f"a number > 0 and at most {MAX_TIMEOUT:g} seconds"
)
_non_negative_float = _float_type(lambda v: 0 <= v < _INF, "a number >= 0")
_multiplier = _float_type(lambda v: 1 <= v < _INF, "a number >= 1")
_fraction = _float_type(lambda v: 0 <= v <= 1, "a fraction between 0 and 1")


def _event_size(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of bytes, got {text!r}") from None
    if value < 64:
        raise argparse.ArgumentTypeError(f"expected at least 64 bytes, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def _add_logging(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument(
        "--log-level",
        default=default,
        choices=["debug", "info", "warning", "error"],
        type=str.lower,
        help=f"log level on stderr (default: {default})",
    )
    p.add_argument(
        "--log-format", default="text", choices=["text", "json"], help="log format on stderr"
    )


def _add_upstream(p: argparse.ArgumentParser) -> None:
    """The options that describe one upstream stream (tail and relay)."""
    p.add_argument("url", help="the SSE endpoint (http:// or https://)")
    p.add_argument(
        "-H",
        "--header",
        dest="headers",
        action="append",
        default=[],
        type=header,
        metavar="'Name: value'",
        help="request header, repeatable (sent on every reconnect)",
    )
    p.add_argument(
        "--method",
        default=None,
        type=str.upper,
        choices=["GET", "POST"],
        help="GET, or POST when --data is given (as curl -d)",
    )
    p.add_argument("--data", default=None, help="request body, sent as given; implies POST")
    p.add_argument("--last-event-id", default=None, help="resume after this event id")
    p.add_argument("--read-timeout", type=_timeout, default=60.0, metavar="SECONDS")
    p.add_argument("--connect-timeout", type=_timeout, default=10.0, metavar="SECONDS")
    p.add_argument("--backoff-initial", type=_positive_float, default=1.0, metavar="SECONDS")
    p.add_argument(
        "--backoff-max",
        type=_positive_float,
        default=None,  # not given: 30, unless --backoff-initial is larger (a usage error)
        metavar="SECONDS",
        help="longest wait between attempts, a server's retry: included; at least "
        "--backoff-initial (default: 30)",
    )
    p.add_argument("--backoff-jitter", type=_fraction, default=0.3, metavar="FRACTION")
    p.add_argument(
        "--backoff-multiplier",
        type=_multiplier,
        default=2.0,
        metavar="FACTOR",
        help="growth of the delay per failed attempt (default: 2)",
    )
    p.add_argument(
        "--backoff-reset-after",
        type=_non_negative_float,
        default=60.0,
        metavar="SECONDS",
        help="a connection up this long resets the backoff (default: 60)",
    )
    p.add_argument(
        "--max-retry-after",
        type=_non_negative_float,
        default=3600.0,
        metavar="SECONDS",
        help="cap on a server's Retry-After (default: 3600); the server's retry: is "
        "capped at --backoff-max",
    )
    p.add_argument(
        "--max-event-size",
        type=_event_size,
        default=8 << 20,
        metavar="BYTES",
        help="largest event or line accepted (default: 8388608, 8 MiB)",
    )
    p.add_argument(
        "--max-attempts",
        type=_positive_int,
        default=None,
        help="give up (exit 1) after N failed attempts in a row (default: retry forever)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every command."""
    parser = _Parser(
        prog="streamvisor",
        description="Supervised Server-Sent-Events streams: reconnects, Last-Event-ID "
        "resume, dedup, fan-out.",
    )
    parser.add_argument("--version", action="version", version=f"streamvisor {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    tail = sub.add_parser("tail", help="stream one URL to stdout with full reconnect logic")
    _add_upstream(tail)
    tail.add_argument("--max-events", type=_positive_int, default=None, help="exit 0 after N")
    tail.add_argument("--format", default="jsonl", choices=["jsonl", "text"])
    tail.add_argument(
        "--mcp",
        action="store_true",
        help="the URL is an MCP server: keep a session and print its messages",
    )
    _add_logging(tail, "warning")

    relay = sub.add_parser("relay", help="re-serve one URL to many SSE clients, with replay")
    _add_upstream(relay)
    relay.add_argument(
        "--listen", default="127.0.0.1:8080", metavar="HOST:PORT", help="port 0 picks one"
    )
    relay.add_argument("--name", default="relay", help="served at /streams/NAME")
    relay.add_argument(
        "--history-events", type=_positive_int, default=1000, metavar="N", help="replay depth"
    )
    relay.add_argument(
        "--history-seconds", type=_positive_float, default=300.0, metavar="S", help="replay age"
    )
    relay.add_argument(
        "--client-max-bytes",
        type=_positive_int,
        default=262144,
        metavar="B",
        help="a client with more unsent bytes is disconnected (it resumes)",
    )
    relay.add_argument("--heartbeat", type=_positive_float, default=15.0, metavar="S")
    relay.add_argument(
        "--token",
        dest="tokens",
        action="append",
        default=[],
        type=token,
        metavar="TOKEN",
        help="clients must present one (Bearer or ?access_token=); repeatable",
    )
    _add_logging(relay, "info")

    run = sub.add_parser("run", help="run the daemon from a YAML config until SIGTERM")
    run.add_argument("config", help="path to the YAML config")
    _add_logging(run, "info")

    check = sub.add_parser("check", help="validate a YAML config (exit 0 ok, 2 errors)")
    check.add_argument("config", help="path to the YAML config")

    cluster = sub.add_parser("cluster", help="cluster mode: see who owns which stream")
    cluster_sub = cluster.add_subparsers(
        dest="cluster_command", metavar="COMMAND", parser_class=_Parser, required=True
    )
    status = cluster_sub.add_parser("status", help="each stream's owner, each instance's load")
    status.add_argument("config", help="path to the YAML config (its cluster: section)")
    status.add_argument("--json", action="store_true", help="print JSON instead of tables")

    demo = sub.add_parser("demo", help="run against a built-in local flaky SSE source")
    demo.add_argument("--seconds", type=_positive_float, default=6.0, help="how long to run")
    demo.add_argument("--streams", type=_positive_int, default=3, help="how many streams")
    demo.add_argument(
        "--daemon",
        action="store_true",
        help="run the full daemon (file sink, checkpoints, admin) on a generated config",
    )
    demo.add_argument("--quiet", action="store_true", help="print only the summary")
    _add_logging(demo, "warning")

    from streamvisor.views.command import add_top_command

    add_top_command(sub)

    from streamvisor.upstream.mcp.cli import add_parser as add_mcp

    add_mcp(sub, header, _positive_float, _add_logging)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except _UsageError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as exc:  # --help / --version
        return int(exc.code or 0)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    problem = argument_problem(args)
    if problem is not None:
        command = " ".join(filter(None, (args.command, getattr(args, "mcp_command", None))))
        print(f"streamvisor {command}: error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    try:
        if args.command == "tail":
            from streamvisor.cli.tail import run_tail

            return run_tail(args)
        if args.command == "check":
            from streamvisor.daemon.run import run_check

            return run_check(args.config)
        if args.command == "run":
            # Until the daemon handles SIGHUP, one (a reload sent as it starts) must not end
            # it: the config is read after this, so ignoring it loses nothing.
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
            from streamvisor.daemon.run import run_daemon

            return run_daemon(args.config, args.log_level, args.log_format)
        if args.command == "relay":
            from streamvisor.relay.cli import run_relay

            return run_relay(args)
        if args.command == "cluster":
            from streamvisor.cluster.status import run_status

            return run_status(args.config, as_json=args.json)
        if args.command == "demo":
            from streamvisor.demo.run import run_demo

            return run_demo(args)
        if args.command == "top":
            from streamvisor.views.command import run_top_command

            return run_top_command(args)
        if args.command == "mcp":
            from streamvisor.upstream.mcp.cli import run_call

            if args.mcp_command is None:
                print("streamvisor mcp: choose an action: call", file=sys.stderr)
                return EXIT_USAGE
            return run_call(args)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return EXIT_USAGE


def run_main() -> None:
    """Console-script entry point."""
    raise SystemExit(main())
