"""Every URL in README.md and config.example.yaml that points at the demo source
(``http://127.0.0.1:8000/...``) is one the demo source serves, when started as that document
says (``python -m streamvisor.demo_source ... --channels ...``): a newcomer who copies an
example gets events, not a 404.

``/mcp`` URLs on that port are not the demo source: they stand for an MCP server (the
Python SDK's FastMCP serves ``http://127.0.0.1:8000/mcp`` by default).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from streamvisor.config.load import load_config
from streamvisor.demo.source import DemoSource

pytestmark = pytest.mark.timeout(60)

REPO = Path(__file__).resolve().parents[2]
DOCS = ["README.md", "config.example.yaml"]
DEMO_URL = re.compile(r"http://127\.0\.0\.1:8000(/[\w/.~%-]*)?")
NOT_THE_DEMO = {"/mcp"}
TIMEOUT = 5.0


def demo_paths(text: str) -> list[str]:
    """The paths of the document's URLs on the demo source's port, in order, once each."""
    paths = [(m.group(1) or "/").rstrip(".") or "/" for m in DEMO_URL.finditer(text)]
    return [p for p in dict.fromkeys(paths) if p not in NOT_THE_DEMO]


def demo_channels(text: str) -> set[str]:
    """The channels of every demo source command in the document (``ticker`` by default)."""
    channels: set[str] = set()
    for line in text.splitlines():
        if "streamvisor.demo_source" in line:
            found = re.search(r"--channels[ =]([\w,-]+)", line)
            names = found.group(1) if found else "ticker"
            channels.update(name for name in names.split(",") if name)
    return channels


@pytest.fixture
def served() -> Iterator[list[DemoSource]]:
    sources: list[DemoSource] = []
    try:
        yield sources
    finally:
        for source in sources:
            source.stop()


def start(sources: list[DemoSource], channels: set[str]) -> DemoSource:
    source = DemoSource(sorted(channels), rate=50.0, heartbeat=0.2)
    sources.append(source)
    source.start()
    return source


def assert_streams(method: str, url: str, body: bytes | None = None) -> None:
    with requests.request(method, url, data=body, stream=True, timeout=TIMEOUT) as answer:
        assert answer.status_code == 200, f"{method} {url}: HTTP {answer.status_code}"
        assert answer.headers["Content-Type"].startswith("text/event-stream")
        first = next(answer.iter_lines())
        assert first.startswith((b"id:", b"data:", b"event:", b":")), first


def test_the_channel_parser_reads_the_commands() -> None:
    text = (
        "`python -m streamvisor.demo_source --port 8000 --chaos` serves\n"
        "#   python -m streamvisor.demo_source --port 8000 --channels ticker,orders\n"
    )
    assert demo_channels(text) == {"ticker", "orders"}
    assert demo_paths("GET http://127.0.0.1:8000/events/x, `http://127.0.0.1:8000/mcp`") == [
        "/events/x"
    ]


@pytest.mark.parametrize("doc", DOCS)
def test_every_demo_source_url_in_the_docs_is_served_by_the_demo_source_they_start(
    doc: str, served: list[DemoSource]
) -> None:
    text = (REPO / doc).read_text(encoding="utf-8")
    paths, channels = demo_paths(text), demo_channels(text)
    assert paths and channels, f"{doc} should say how to start the demo source its URLs need"
    source = start(served, channels)
    for path in paths:
        assert_streams("GET", source.url_base + path)


def test_each_stream_of_the_example_config_reads_the_demo_source(
    served: list[DemoSource],
) -> None:
    text = (REPO / "config.example.yaml").read_text(encoding="utf-8")
    source = start(served, demo_channels(text))
    config = load_config(REPO / "config.example.yaml", environ={})
    for spec in config.streams:
        body, _ = spec.body_bytes()
        url = spec.url.replace("http://127.0.0.1:8000", source.url_base)
        assert url != spec.url, f"stream {spec.name} does not read the demo source"
        assert_streams(spec.method, url, body)
