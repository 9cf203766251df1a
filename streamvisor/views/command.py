"""The ``streamvisor top`` command line: its arguments and checks, before rich is imported.

Kept apart from ``views.top`` so that ``streamvisor --help`` and the other commands never
import the terminal UI library, and a missing ``top`` extra is one clear line.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any
from urllib.parse import urlsplit

from streamvisor.extras import install_hint

__all__ = ["add_top_command", "run_top_command"]

EXIT_FAILURE, EXIT_USAGE = 1, 2


def _admin_url(text: str) -> str:
    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(
            f"expected the admin endpoint's URL such as http://127.0.0.1:9108, got {text!r}"
        )
    return text.strip().rstrip("/")


def _interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.1 <= value <= 60:
        raise argparse.ArgumentTypeError(f"expected 0.1 to 60 seconds, got {text!r}")
    return value


def add_top_command(sub: Any) -> None:
    """Add ``top`` to the ``streamvisor`` subcommands (``sub`` from ``add_subparsers``)."""
    top = sub.add_parser(
        "top",
        help="live terminal view of a daemon's streams (needs the top extra)",
        description="A live view of every stream of a daemon, read through its admin "
        "endpoint. Keys: arrows select, r reconnect, c close, s start, / filter, q quit.",
    )
    top.add_argument(
        "config",
        nargs="?",
        help="a YAML config: run its daemon inside this command and watch it",
    )
    top.add_argument(
        "--admin",
        type=_admin_url,
        metavar="URL",
        help="watch a running daemon through its admin endpoint, e.g. http://127.0.0.1:9108",
    )
    top.add_argument(
        "--token", default=None, help="the admin.token for commands (or STREAMVISOR_TOKEN)"
    )
    top.add_argument(
        "--interval", type=_interval, default=1.0, metavar="SECONDS", help="refresh period"
    )


def run_top_command(args: argparse.Namespace) -> int:
    """Check the arguments, then run the terminal view; return the exit code."""
    if (args.config is None) == (args.admin is None):
        print("streamvisor top: give either a CONFIG or --admin URL", file=sys.stderr)
        return EXIT_USAGE
    try:
        from streamvisor.views.top import run_top
    except ImportError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing == "rich":
            reason = f"the rich library: {install_hint('top')}"
        elif missing in ("termios", "tty"):
            reason = "a POSIX terminal (termios)"
        else:
            raise
        print(f"streamvisor top needs {reason}", file=sys.stderr)
        return EXIT_FAILURE
    return run_top(args)
