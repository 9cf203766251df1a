"""Bad command-line values are usage errors (exit 2, one stderr line, no traceback), checked
by the config's own rules before anything connects: the URL of ``tail``, ``relay`` and
``mcp call``, header values, ``--backoff-max`` against ``--backoff-initial``, relay tokens.

Each run points at a refused port with ``--max-attempts 1``, so a value that got through
would end the run at once (exit 1) instead of hanging the test.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from streamvisor.cli.arguments import argument_problem
from streamvisor.cli.main import build_parser
from streamvisor.cli.tail import upstream_redactor, upstream_spec
from tests.support.tail import TailRun, run_cli

pytestmark = pytest.mark.timeout(60)

SECRET = "s3cr3t-t0ken"
BAD_URLS = [
    ("http://[::1/x", "not a valid URL: 'http://[::1/x'"),
    ("http://", "URL has no host: 'http://'"),
    ("http://127.0.0.1:99999/x", "not a valid URL: 'http://127.0.0.1:99999/x'"),
    ("http://a b/x", "not a valid URL (a space in the host): 'http://a b/x'"),
    ("ftp://127.0.0.1/x", "expected an http:// or https:// URL, got 'ftp://127.0.0.1/x'"),
]


def command(name: str, url: str, *options: str) -> list[str]:
    """The argv of ``name`` (tail, relay or mcp call) for ``url``; one attempt at most."""
    if name == "mcp call":
        return ["mcp", "call", url, "ping", "--timeout", "5", *options]
    extra = ["--listen", "127.0.0.1:0"] if name == "relay" else []
    return [name, url, "--max-attempts", "1", *extra, *options]


def assert_usage_error(run: TailRun, line: str) -> None:
    assert run.code == 2, run.err
    assert run.out == ""
    assert run.err_lines == [line]


@pytest.mark.parametrize(("url", "problem"), BAD_URLS, ids=[u for u, _ in BAD_URLS])
@pytest.mark.parametrize("name", ["tail", "relay", "mcp call"])
def test_a_bad_url_is_a_usage_error_in_the_configs_words(
    capsys: pytest.CaptureFixture[str], name: str, url: str, problem: str
) -> None:
    run = run_cli(capsys, *command(name, url))
    assert_usage_error(run, f"streamvisor {name}: error: argument url: {problem}")


def test_a_bad_urls_password_is_masked_in_the_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    run = run_cli(capsys, *command("tail", f"http://u:{SECRET}@127.0.0.1:99999/x"))
    assert run.code == 2
    assert SECRET not in run.err and "'http://u:***@127.0.0.1:99999/x'" in run.err


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        ("X-Name: é中", "the value of header X-Name is not Latin-1 text"),
        (
            f"Authorization: Bearer {SECRET}\x07",
            "the value of header Authorization holds control characters",
        ),
        (f"X-Trace: a\x00{SECRET}", "the value of header X-Trace holds control characters"),
        (f"X-Trace: {SECRET}\r", "the value of header X-Trace holds control characters"),
    ],
    ids=["not-latin-1", "bell", "nul", "carriage-return"],
)
@pytest.mark.parametrize("name", ["tail", "relay", "mcp call"])
def test_a_header_value_no_request_can_carry_is_a_usage_error_that_never_shows_it(
    capsys: pytest.CaptureFixture[str], refusing_port: int, name: str, header: str, problem: str
) -> None:
    url = f"http://127.0.0.1:{refusing_port}/x"
    run = run_cli(capsys, *command(name, url, "-H", header))
    assert_usage_error(run, f"streamvisor {name}: error: argument -H/--header: {problem}")
    assert SECRET not in run.err and "é中" not in run.err


@pytest.mark.parametrize(
    ("options", "line"),
    [
        (
            ["--backoff-initial", "10", "--backoff-max", "1"],
            "argument --backoff-max: must not be less than --backoff-initial (10), got 1",
        ),
        (
            ["--backoff-initial", "60"],
            "argument --backoff-initial: must not be more than --backoff-max (30), got 60",
        ),
    ],
    ids=["max-below-initial", "initial-above-default-max"],
)
@pytest.mark.parametrize("name", ["tail", "relay"])
def test_backoff_max_below_backoff_initial_is_a_usage_error_as_in_the_config(
    capsys: pytest.CaptureFixture[str],
    refusing_port: int,
    name: str,
    options: list[str],
    line: str,
) -> None:
    run = run_cli(capsys, *command(name, f"http://127.0.0.1:{refusing_port}/x", *options))
    assert_usage_error(run, f"streamvisor {name}: error: {line}")


@pytest.mark.parametrize("option", ["--read-timeout", "--connect-timeout"])
@pytest.mark.parametrize("name", ["tail", "relay"])
def test_a_timeout_no_socket_can_wait_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], refusing_port: int, name: str, option: str
) -> None:
    run = run_cli(capsys, *command(name, f"http://127.0.0.1:{refusing_port}/x", option, "1e308"))
    assert_usage_error(
        run,
        f"streamvisor {name}: error: argument {option}: "
        "expected a number > 0 and at most 1e+09 seconds, got '1e308'",
    )


@pytest.mark.parametrize("token", ["", "  "])
def test_an_empty_relay_token_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], refusing_port: int, token: str
) -> None:
    run = run_cli(
        capsys, *command("relay", f"http://127.0.0.1:{refusing_port}/x", "--token", token)
    )
    assert_usage_error(run, "streamvisor relay: error: argument --token: must not be empty")


def test_good_values_pass_and_backoff_max_defaults_to_30() -> None:
    parser = build_parser()
    args = parser.parse_args(
        ["tail", " http://127.0.0.1:8000/events/ticker ", "--backoff-initial", "30"]
    )
    assert argument_problem(args) is None
    assert (args.url, args.backoff_max) == ("http://127.0.0.1:8000/events/ticker", 30.0)
    args = parser.parse_args(
        ["relay", "http://h/x", "--backoff-initial", "9", "--backoff-max", "9"]
    )
    assert argument_problem(args) is None and args.backoff_max == 9.0


def test_a_malformed_url_in_a_subprocess_is_one_line_and_exit_2() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "streamvisor", "tail", "http://[::1/x"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "streamvisor tail: error: argument url: not a valid URL: 'http://[::1/x'"
    ]


@pytest.mark.parametrize("name", ["tail", "relay"])
def test_bare_credentials_from_the_command_line_are_masked_in_free_text(name: str) -> None:
    # A server may echo a credential on its own (a reason phrase, an error body): the
    # daemon masks the bare values of its config's secrets, and so must tail and relay.
    url = f"http://u:pw-{SECRET}@127.0.0.1:1/e?access_token=q-{SECRET}&page=2"
    argv = [name, url, "-H", f"Authorization: Bearer b-{SECRET}", "-H", f"X-Api-Key: k-{SECRET}"]
    args = build_parser().parse_args(argv)

    redactor = upstream_redactor(args)

    echoed = f"HTTP 401 bad pw-{SECRET}, q-{SECRET}, b-{SECRET} or k-{SECRET}; page 2"
    assert redactor.scrub(echoed) == "HTTP 401 bad ***, ***, *** or ***; page 2"


@pytest.mark.parametrize(
    ("options", "method", "body"),
    [
        ((), "GET", None),
        (("--data", '{"a": 1}'), "POST", '{"a": 1}'),  # as curl -d
        (("--method", "post"), "POST", None),
        (("--method", "GET", "--data", "x"), "GET", "x"),  # said outright: as said
    ],
)
@pytest.mark.parametrize("name", ["tail", "relay"])
def test_data_implies_post_unless_a_method_is_given(
    name: str, options: tuple[str, ...], method: str, body: str | None
) -> None:
    args = build_parser().parse_args(command(name, "http://127.0.0.1:1/e", *options))
    assert argument_problem(args) is None
    spec = upstream_spec(args, name)
    assert (spec.method, spec.body) == (method, body)
