"""Every file in examples/ runs under test, against a local server, with a bounded run time."""

from __future__ import annotations

import collections
import importlib.util
import json
import math
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from streamvisor.demo.source import DemoSource
from tests.support.daemon import running_daemon
from tests.support.sse_server import Close, Headers, Hold, Send, SSEServer
from tests.support.webhooks import WebhookReceiver

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
RUN_DEADLINE = 30.0
COVERED = {
    "README.md",
    "iterate.py",
    "subscriber_actor.py",
    "mcp_post_stream.py",
    "webhook_rate_limited.yaml",
}


def load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_example_is_run_by_a_test_and_listed_in_the_readme() -> None:
    present = {p.name for p in EXAMPLES.iterdir() if not p.name.startswith((".", "__"))}
    assert present == COVERED, "an example was added or removed: give it a test here"
    readme = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    assert all(f"`{name}`" in readme for name in COVERED - {"README.md"})


def test_subscriber_actor_prints_the_events_of_its_own_flaky_demo_source_and_exits_0() -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "subscriber_actor.py"), "--max-events", "30"],
        capture_output=True,
        text=True,
        timeout=RUN_DEADLINE,
    )
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("ticker #")]
    ids = [int(line.split()[1][1:]) for line in lines]
    assert ids == list(range(1, 31)), "events lost, repeated or out of order"
    assert re.search(r"state connected, last id 30, restarts [1-9]", result.stderr), (
        "the demo source's faults should have forced reconnects"
    )
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("mode", [[], ["--asyncio"]], ids=["for", "async-for"])
def test_iterate_prints_every_event_once_in_order_through_reconnects(mode: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "iterate.py"), "--max-events", "25", *mode],
        capture_output=True,
        text=True,
        timeout=RUN_DEADLINE,
    )
    assert result.returncode == 0, result.stderr
    ids = [int(line.split()[0][1:]) for line in result.stdout.splitlines() if line[:1] == "#"]
    assert ids == list(range(1, 26)), "events lost, repeated or out of order"
    assert "Traceback" not in result.stderr


def test_subscriber_actor_reads_a_given_url(capsys: pytest.CaptureFixture[str]) -> None:
    example = load_example("subscriber_actor")
    with DemoSource(["ticker"], rate=200.0) as source:
        code = example.main([source.url("ticker"), "--max-events", "5", "--timeout", "10"])
    assert code == 0
    assert capsys.readouterr().out.count("ticker #") == 5


def test_mcp_post_stream_resends_the_body_and_a_fresh_token_on_a_reconnect(
    sse_server: SSEServer, capsys: pytest.CaptureFixture[str]
) -> None:
    progress = {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progress": 1}}
    result = {"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": "ok"}]}}
    sse_server.add_script(
        Headers(),
        Send(b"id: 1\nevent: message\ndata: %s\n\n" % json.dumps(progress).encode()),
        Close(),
    )
    sse_server.add_script(
        Headers(),
        Send(b"id: 2\nevent: message\ndata: %s\n\n" % json.dumps(result).encode()),
        Hold(),
    )
    example = load_example("mcp_post_stream")

    code = example.main([sse_server.url("/mcp"), "--max-events", "2", "--timeout", "10"])

    assert code == 0
    first, second = sse_server.requests[:2]
    for request in (first, second):
        assert request.method == "POST"
        assert json.loads(request.body) == example.REQUEST
        assert request.headers["Content-Type"] == "application/json"
        assert request.headers["Authorization"].startswith("Bearer ")
    assert first.headers["Authorization"] != second.headers["Authorization"], "token reused"
    assert "Last-Event-ID" not in first.headers
    assert second.headers["Last-Event-ID"] == "1"
    out = capsys.readouterr().out.splitlines()
    assert [json.loads(line.split(": ", 1)[1]) for line in out] == [progress, result]


@pytest.fixture
def ticker() -> Iterator[DemoSource]:
    source = DemoSource(["ticker"], total=60, rate=math.inf)
    source.start()
    try:
        yield source
    finally:
        source.stop()


def test_webhook_rate_limited_yaml_delivers_every_event_once_within_the_rate_limit(
    tmp_path: Path, ticker: DemoSource
) -> None:
    receiver = WebhookReceiver(plan=[(429, {"Retry-After": "0"})] * 2).start()
    dead = tmp_path / "dead.jsonl"
    env = {"SOURCE_URL": ticker.url("ticker"), "HOOK_URL": receiver.url, "DEAD_LETTER": str(dead)}
    try:
        with running_daemon(tmp_path, EXAMPLES / "webhook_rate_limited.yaml", env=env) as d:
            d.wait_for(lambda: len(receiver.accepted_ids("ticker")) >= 60, "60 delivered events")
            assert d.terminate() == 0, d.stderr()
    finally:
        receiver.stop()

    accepted = receiver.accepted_ids("ticker")
    assert sorted(accepted) == list(range(1, 61))
    assert collections.Counter(accepted).most_common(1)[0][1] == 1, "an event arrived twice"
    assert not dead.exists()
    times = [r.time for r in receiver.requests]
    rate, burst = 20, 2  # the example's rate_limit
    assert len(times) >= 60 // 5 + 2  # 12 batches of 5, and the two rate-limited attempts
    assert times[-1] - times[0] >= 0.95 * (len(times) - burst) / rate, "rate limit not kept"
    assert "Traceback" not in d.stderr()


def test_webhook_rate_limited_yaml_passes_check() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "streamvisor", "check", str(EXAMPLES / "webhook_rate_limited.yaml")],
        capture_output=True,
        text=True,
        timeout=RUN_DEADLINE,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_the_readme_subscriber_snippet_runs_and_exits(sse_server: SSEServer) -> None:
    # Before: the snippet subscribed ``Printer.start()`` and never stopped it, so the
    # program printed its events and then never exited (a pykka actor's thread is not a
    # daemon, and ``Streamvisor.stop()`` leaves user actors alone).
    readme = (EXAMPLES.parent / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    snippet = next(b for b in blocks if "class Printer" in b)
    assert snippet.count("http://127.0.0.1:8000/events/ticker") == 1
    sse_server.add_script(Headers(), Send(b"id: 1\ndata: hello\n\n"), Hold())
    code = snippet.replace("http://127.0.0.1:8000/events/ticker", sse_server.url("/ticker"))
    code = re.sub(r"\n    \.\.\.  #.*\n", "\n    __import__('time').sleep(0.5)\n", code)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=15)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["ticker 1 hello"]
