"""``streamvisor mcp call`` and ``streamvisor tail --mcp`` against the fake server; the
usage errors ``sv.call`` shares with it."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable

import pytest

from streamvisor.api.facade import Streamvisor
from streamvisor.cli.main import main
from tests.support.mcp_fake import FakeMcp
from tests.support.mcpkind import mcp_spec
from tests.support.wait import wait_until


def test_mcp_call_prints_the_result_and_deletes_the_session(
    fake_mcp: FakeMcp, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["mcp", "call", fake_mcp.url, "tools/call", '{"name": "echo"}', "--timeout", "5"])
    out = capsys.readouterr()
    assert code == 0 and json.loads(out.out) == {"echo": {"name": "echo"}}
    assert len(fake_mcp.seen("DELETE")) == 1 and not fake_mcp.seen("GET")


def test_mcp_call_json_rpc_error_exits_1(
    fake_mcp: FakeMcp, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["mcp", "call", fake_mcp.url, "tools/call", '{"name": "fail"}']) == 1
    assert "tool failed" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["tools/call", "{bad"], "params are not JSON"),
        (["tools/call", "[1]"], "params must be a JSON object"),
        (["tools/list", "5"], "params must be a JSON object"),
        (["tools/list", '"x"'], "params must be a JSON object"),
        (["tools/list", "null"], "params must be a JSON object"),
        (["", "{}"], "the method is empty"),
        ([" \t", "{}"], "the method is empty"),
        ([""], "the method is empty"),
    ],
)
def test_mcp_call_usage_errors_exit_2(
    fake_mcp: FakeMcp, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["mcp", "call", fake_mcp.url, *argv]) == 2
    out, err = capsys.readouterr()
    assert message in err and err.count("\n") == 1 and not out
    assert not fake_mcp.requests  # rejected before anything was sent


@pytest.mark.parametrize("method", ["", "  "])
def test_sv_call_rejects_an_empty_method_before_sending(
    fake_mcp: FakeMcp, make_sv: Callable[..., Streamvisor], method: str
) -> None:
    sv = make_sv([mcp_spec(fake_mcp.url)])
    with pytest.raises(ValueError, match="the method is empty"):
        sv.call("tools", method, {}, timeout=5)
    assert not fake_mcp.requests


@pytest.mark.parametrize("params", [[1, 2], "x", 5])
def test_sv_call_rejects_params_that_are_not_a_mapping_before_sending(
    fake_mcp: FakeMcp, make_sv: Callable[..., Streamvisor], params: object
) -> None:
    # Before: a list was sent as is (TypeError: cannot convert dictionary update sequence
    # element #0 to a sequence), or a str/int failed somewhere inside.
    sv = make_sv([mcp_spec(fake_mcp.url)])
    with pytest.raises(ValueError, match="params must be a mapping"):
        sv.call("tools", "tools/call", params, timeout=5)  # type: ignore[arg-type]
    assert not fake_mcp.requests


def test_mcp_call_bad_url_exits_2_and_unreachable_exits_1_without_the_token(
    capsys: pytest.CaptureFixture[str], refusing_port: int
) -> None:
    assert main(["mcp", "call", "ftp://x/mcp", "ping"]) == 2
    url = f"http://127.0.0.1:{refusing_port}/mcp"
    assert main(["mcp", "call", url, "ping", "-H", "Authorization: Bearer s3cr3t-tok"]) == 1
    err = capsys.readouterr().err
    assert "s3cr3t-tok" not in err and "Connection refused" in err


def test_tail_mcp_prints_messages_with_their_method(
    fake_mcp: FakeMcp, capsys: pytest.CaptureFixture[str]
) -> None:
    codes: list[int] = []
    argv = ["tail", "--mcp", fake_mcp.url, "--max-events", "1", "--backoff-initial", "0.05"]
    thread = threading.Thread(target=lambda: codes.append(main(argv)))
    thread.start()
    try:
        assert wait_until(lambda: fake_mcp.streaming == 1, 5)
        fake_mcp.notify("notifications/resources/updated", {"uri": "file:///a"})
        thread.join(10)
    finally:
        fake_mcp.expire_all()
        thread.join(10)
    assert codes == [0]
    line = json.loads(capsys.readouterr().out.splitlines()[0])
    assert line["event"] == "notifications/resources/updated" and line["stream"] == "tail"


def test_mcp_call_runs_as_a_subprocess(fake_mcp: FakeMcp) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "streamvisor", "mcp", "call", fake_mcp.url, "ping"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and json.loads(proc.stdout) == {"echo": None}


def test_tail_mcp_on_a_server_that_is_not_mcp_names_initialize_and_the_fallback(
    fake_mcp: FakeMcp, capsys: pytest.CaptureFixture[str]
) -> None:
    # Before: "streamvisor tail: permanent error: HTTP 405 Method Not Allowed", with
    # nothing about the POST initialize answered 404 (mcp call said both).
    fake_mcp.post_status, fake_mcp.get_status = 404, 405
    assert main(["tail", "--mcp", fake_mcp.url, "--max-attempts", "1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "initialize answered HTTP 404" in err, err
    assert "HTTP+SSE fallback failed: HTTP 405" in err, err
