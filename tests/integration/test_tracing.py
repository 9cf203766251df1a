"""OpenTelemetry traces of connection attempts: spans, span events, traceparent, exporters."""

from __future__ import annotations

import gzip
import http.server
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from streamvisor.api.facade import Streamvisor
from streamvisor.config.tracing import TracingConfig
from streamvisor.daemon.tracing import AttemptTracer, TracingError, build_tracer
from streamvisor.policy.backoff import BackoffPolicy, RestartLimit
from streamvisor.spec import BreakerPolicy, StreamSpec
from tests.support.daemon import running_daemon
from tests.support.sse_server import Close, Headers, Hold, Send, SSEServer, Status
from tests.support.wait import wait_until

FAST = BackoffPolicy(initial=0.01, max=0.05, multiplier=2.0, jitter=0.0, reset_after=60.0)
DEADLINE = 5.0


@pytest.fixture
def exported() -> Iterator[tuple[AttemptTracer, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = AttemptTracer(provider.get_tracer("test"), provider)
    try:
        yield tracer, exporter
    finally:
        tracer.shutdown()


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def events(span: ReadableSpan) -> list[tuple[str, dict[str, Any]]]:
    return [(e.name, dict(e.attributes or {})) for e in span.events]


def traceparent(span: ReadableSpan) -> str:
    context = span.get_span_context()
    assert context is not None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def test_each_attempt_is_one_span_with_its_outcome_and_its_request_carries_traceparent(
    exported: tuple[AttemptTracer, InMemorySpanExporter],
) -> None:
    tracer, exporter = exported
    server = SSEServer(
        [
            [Status(503, {"Retry-After": "0"})],
            [Headers(), Send(b"id: 1\ndata: a\n\nid: 2\ndata: b\n\nid: 3\ndata: c\n\n"), Close()],
            [Headers(), Hold()],
        ]
    ).start()
    url = server.url("/events").replace("http://", "http://user:pa55word@")
    spec = StreamSpec(
        name="ticker",
        url=url,
        backoff=FAST,
        max_restarts=RestartLimit(count=1000, within=60),
        breaker=BreakerPolicy(failures=0),
    )
    sv = Streamvisor([spec], observer=tracer).start()
    try:
        assert wait_until(lambda: len(server.requests) == 3, DEADLINE)
        assert wait_until(lambda: len(exporter.get_finished_spans()) == 2, DEADLINE)
        assert sv.close("ticker")
        assert wait_until(lambda: len(exporter.get_finished_spans()) == 3, DEADLINE)
    finally:
        sv.stop(timeout=5)
        server.stop()
    first, second, third = exporter.get_finished_spans()
    assert {s.name for s in (first, second, third)} == {"sse.attempt"}
    assert attrs(first) == {
        "streamvisor.stream": "ticker",
        "streamvisor.attempt": 1,
        "url.full": url.replace("pa55word", "***"),
        "http.request.method": "GET",
        "http.response.status_code": 503,
        "streamvisor.events": 0,
        "streamvisor.bytes": 0,
        "streamvisor.outcome": "restart",
        "streamvisor.failure_class": "rate_limited",  # a 503 with Retry-After
        "error.type": "HTTPStatusError",
    }
    assert first.status.status_code.name == "ERROR"
    [(name, decision)] = events(first)
    assert name == "reconnect decision"
    assert decision["streamvisor.delay"] >= 0 and "503" in decision["reason"]

    assert attrs(second)["http.response.status_code"] == 200
    assert attrs(second)["streamvisor.events"] == 3
    assert attrs(second)["streamvisor.bytes"] > 30
    assert attrs(second)["streamvisor.outcome"] == "restart"
    assert "streamvisor.failure_class" not in attrs(second)
    assert second.status.status_code.name == "UNSET"
    assert [name for name, _ in events(second)] == ["connected", "reconnect decision"]
    assert events(second)[1][1]["reason"] == "server closed the stream"

    assert attrs(third)["streamvisor.outcome"] == "stopped"
    assert [name for name, _ in events(third)] == ["connected"]

    # The W3C traceparent of each attempt's span went out with that attempt's request.
    sent = [r.headers.get("traceparent") for r in server.requests]
    assert sent == [traceparent(first), traceparent(second), traceparent(third)]
    assert all("pa55word" not in str(attrs(s)) for s in (first, second, third))


def test_a_session_change_is_an_event_on_the_open_attempt(
    exported: tuple[AttemptTracer, InMemorySpanExporter],
) -> None:
    tracer, exporter = exported
    spec = StreamSpec(name="mcp", url="http://127.0.0.1:9/mcp")
    tracer.attempt_started(spec, 1, 0)
    assert set(tracer.trace_headers("mcp")) == {"traceparent"}
    tracer.session_changed("mcp", "session expired", http_status=404)
    tracer.session_changed("other", "ignored: no open attempt")
    tracer.shutdown()
    [span] = exporter.get_finished_spans()
    assert events(span) == [("session changed", {"reason": "session expired", "http_status": 404})]
    assert attrs(span)["streamvisor.outcome"] == "unfinished"
    assert tracer.trace_headers("mcp") == {}


def test_callable_headers_keep_working_and_gain_traceparent(
    exported: tuple[AttemptTracer, InMemorySpanExporter],
) -> None:
    tracer, _ = exported
    seen: list[Any] = []
    connect = tracer.wrap_connect(lambda spec, lid: seen.append(spec.headers) or "conn")
    spec = StreamSpec(name="s", url="http://127.0.0.1:9/", headers=lambda: {"X-Fresh": "1"})
    tracer.attempt_started(spec, 1, 0)
    assert connect(spec, None) == "conn"
    headers = seen[0]()
    assert headers["X-Fresh"] == "1" and headers["traceparent"].startswith("00-")
    plain = StreamSpec(name="p", url="http://127.0.0.1:9/", headers={"A": "b"})
    connect(plain, None)  # no open attempt for "p": headers unchanged
    assert seen[1] == {"A": "b"}


def test_the_console_exporter_writes_spans_of_a_running_daemon_to_stderr(
    tmp_path: Path,
) -> None:
    server = SSEServer(default=[Headers(), Send(b"id: 1\ndata: x\n\n"), Hold()]).start()
    config = {
        "streams": [{"name": "console-traced", "url": server.url("/e")}],
        "tracing": {"exporter": "console", "service_name": "views-test"},
    }
    try:
        with running_daemon(tmp_path, config) as daemon:
            assert wait_until(lambda: len(server.requests) >= 1, 10)
            traceparent_sent = server.requests[0].headers.get("traceparent")
            assert daemon.terminate() == 0
    finally:
        server.stop()
    err = daemon.stderr_path.read_text()
    assert '"name": "sse.attempt"' in err
    assert '"streamvisor.stream": "console-traced"' in err
    assert '"service.name": "views-test"' in err
    assert '"streamvisor.outcome": "stopped"' in err
    assert traceparent_sent is not None
    assert traceparent_sent.split("-")[1] in err  # the trace id that went upstream


class _Collector(http.server.BaseHTTPRequestHandler):
    bodies: list[tuple[str, bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.bodies.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_the_otlp_exporter_posts_protobuf_spans_to_the_configured_endpoint() -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    collector = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    collector.daemon_threads = True
    thread = threading.Thread(target=collector.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    _Collector.bodies = []
    try:
        endpoint = f"http://127.0.0.1:{collector.server_port}/v1/traces"
        tracer = build_tracer(TracingConfig("otlp", endpoint, "otlp-test"))
        tracer.attempt_started(StreamSpec(name="otlp", url="http://127.0.0.1:9/x"), 1, 0)
        tracer.attempt_connected("otlp", 1)
        tracer.attempt_ended("otlp", 1, error=None, events=2, wire_bytes=64, decision=None)
        tracer.shutdown()
    finally:
        collector.shutdown()
        collector.server_close()
        thread.join(5)
    [(path, body)] = _Collector.bodies
    assert path == "/v1/traces"
    request = ExportTraceServiceRequest.FromString(body)
    [resource_spans] = request.resource_spans
    service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert service["service.name"] == "otlp-test"
    [span] = [s for scope in resource_spans.scope_spans for s in scope.spans]
    values = {a.key: a.value for a in span.attributes}
    assert span.name == "sse.attempt"
    assert values["streamvisor.stream"].string_value == "otlp"
    assert values["streamvisor.events"].int_value == 2
    assert values["streamvisor.bytes"].int_value == 64


def test_nothing_imports_opentelemetry_unless_tracing_is_configured() -> None:
    code = (
        "import sys, streamvisor, streamvisor.api.facade, streamvisor.daemon.run, "
        "streamvisor.daemon.admin, streamvisor.actors.supervisor, streamvisor.cli.main, "
        "streamvisor.daemon.tracing, "
        "streamvisor.config.tracing\n"
        "from streamvisor.config.load import parse_config\n"
        "parse_config('streams: [{name: a, url: \"http://h/\"}]\\ntracing: {}\\n', "
        "source='c', base_dir='.', environ={})\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry.')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]"


def test_without_the_otel_extra_building_a_tracer_is_one_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)
    with pytest.raises(
        TracingError,
        match=r"pip install 'streamvisor\[otel\]' "
        r"\(from a source checkout: pip install '\.\[otel\]'\)$",
    ):
        build_tracer(TracingConfig("console"))
