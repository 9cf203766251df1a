"""Command-line values checked by the config's rules, so that a value the config rejects is
a usage error here too (exit 2, one line): the URL (``upstream.fields.url_problem``), header
values (``upstream.fields.header_problem``), ``--backoff-max`` against
``--backoff-initial`` (``config.checker.order_problem``) and relay tokens.

``header`` and ``token`` are argparse types; ``argument_problem`` checks what one value
alone cannot show, after parsing. Pure: no I/O.
"""

from __future__ import annotations

import argparse

from streamvisor.config.checker import order_problem
from streamvisor.policy.backoff import BackoffPolicy
from streamvisor.upstream.fields import OWS, header_problem, url_problem

__all__ = ["DEFAULT_BACKOFF_MAX", "argument_problem", "header", "token"]

DEFAULT_BACKOFF_MAX = BackoffPolicy().max
"""``--backoff-max`` when it is not given (seconds): the config's default, 30."""


def header(text: str) -> tuple[str, str]:
    """``Name: value`` as ``(name, value)``, surrounding spaces and tabs of the value removed.

    Raises:
        argparse.ArgumentTypeError: no colon, a name that is not a token, or a value a
            request cannot carry. The message never quotes the value (it may be a secret).
    """
    name, sep, value = text.partition(":")
    name = name.strip()
    if not sep or not name or any(c in name for c in " \t\r\n"):
        raise argparse.ArgumentTypeError(f"expected 'Name: value', got {text.split(':')[0]!r}")
    value = value.strip(OWS)
    problem = header_problem(name, value)
    if problem is not None:
        raise argparse.ArgumentTypeError(problem)
    return name, value


def token(text: str) -> str:
    """A relay token: any text but an empty one (a client could never present it).

    Raises:
        argparse.ArgumentTypeError: empty or only whitespace.
    """
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def argument_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the parsed ``args``, as ``argument NAME: message``; None if nothing.

    Checks the ``url`` of every command that has one (its surrounding whitespace is
    removed in ``args``, as the config does) and the backoff options of ``tail`` and
    ``relay``; fills in ``backoff_max`` when it was not given.
    """
    url = getattr(args, "url", None)
    if isinstance(url, str):
        args.url = url.strip()
        problem = url_problem(args.url)
        if problem is not None:
            return f"argument url: {problem}"
    if hasattr(args, "backoff_initial") and hasattr(args, "backoff_max"):
        given = args.backoff_max is not None
        if not given:
            args.backoff_max = DEFAULT_BACKOFF_MAX
        problem = order_problem(
            "--backoff-initial", args.backoff_initial, "--backoff-max", args.backoff_max, given
        )
        if problem is not None:
            flag = "--backoff-max" if given else "--backoff-initial"
            return f"argument {flag}: {problem}"
    return None
