"""``streamvisor top`` in a pseudo-terminal (pexpect), against a real daemon and upstream."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pexpect
import pytest

from streamvisor.cli.main import main
from tests.support.views import demo_daemon, demo_source, states, write_config
from tests.support.wait import wait_until

DEADLINE = 15
ANSI = r"(?:\s|\x1b\[[0-9;?]*[A-Za-z])+"  # spaces and styling between two cells of a row


def cells(*texts: str) -> str:
    """A pattern for these cell texts side by side in one row, whatever the styling."""
    return ANSI.join(re.escape(text) for text in texts)


@contextmanager
def top(args: Sequence[str], cwd: Path | None = None) -> Iterator[pexpect.spawn]:
    env = {**os.environ, "TERM": "xterm-256color", "PYTHONUNBUFFERED": "1"}
    env.pop("NO_COLOR", None)
    child = pexpect.spawn(
        sys.executable,
        ["-m", "streamvisor", "top", *args],
        dimensions=(30, 150),
        env=env,
        cwd=str(cwd) if cwd else None,
        encoding="utf-8",
        timeout=DEADLINE,
    )
    try:
        yield child
    finally:
        if child.isalive():
            child.terminate(force=True)
        child.close()


def test_top_shows_the_streams_closes_the_selected_one_and_quits(tmp_path: Path) -> None:
    with demo_daemon(tmp_path, ["alpha", "beta"]) as (_, base):
        assert wait_until(lambda: set(states(base).values()) == {"connected"}, DEADLINE)
        with top(["--admin", base, "--interval", "0.3"]) as child:
            child.expect(cells("alpha", "connected"))
            child.expect(cells("beta", "connected"))
            child.send("c")  # the first row is selected: alpha
            child.expect("close alpha: closed")
            assert states(base) == {"alpha": "closed", "beta": "connected"}
            child.expect(cells("alpha", "closed"))
            child.send("\x1b[B")  # down: beta
            child.send("r")
            child.expect("reconnect beta")
            child.send("/bet\r")  # filter: only beta
            child.expect(r"\(1 shown\)")
            child.send("q")
            child.expect(pexpect.EOF)
        assert child.exitstatus == 0


def test_top_with_a_config_runs_the_daemon_itself_and_stops_it_on_quit(tmp_path: Path) -> None:
    with demo_source(["gamma"]) as source:
        config = write_config(tmp_path, source)
        with top([str(config), "--interval", "0.3"], cwd=tmp_path) as child:
            child.expect(cells("gamma", "connected"))
            assert source.stats["gamma"].connections >= 1
            child.send("q")
            child.expect(pexpect.EOF)
        assert child.exitstatus == 0  # the in-process daemon stopped with it


def test_top_against_an_unreachable_daemon_says_so_and_exits_1() -> None:
    with top(["--admin", "http://127.0.0.1:9"]) as child:
        child.expect("cannot reach http://127.0.0.1:9")
        child.expect(pexpect.EOF)
    assert child.exitstatus == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["top"], "give either a CONFIG or --admin URL"),
        (["top", "c.yaml", "--admin", "http://127.0.0.1:1"], "give either a CONFIG or --admin"),
        (["top", "--admin", "ftp://h"], "expected the admin endpoint's URL"),
        (["top", "--admin", "http://127.0.0.1:1", "--interval", "0"], "expected 0.1 to 60"),
    ],
)
def test_top_usage_mistakes_exit_2_with_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_top_without_a_terminal_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["top", "--admin", "http://127.0.0.1:1"]) == 2
    assert "needs a terminal" in capsys.readouterr().err


def test_without_rich_top_names_the_extra_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "rich.console", None)
    monkeypatch.delitem(sys.modules, "streamvisor.views.top", raising=False)
    assert main(["top", "--admin", "http://127.0.0.1:1"]) == 1
    assert capsys.readouterr().err.strip() == (
        "streamvisor top needs the rich library: pip install 'streamvisor[top]' "
        "(from a source checkout: pip install '.[top]')"
    )
