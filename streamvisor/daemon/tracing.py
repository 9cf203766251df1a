"""OpenTelemetry traces of connection attempts (the ``otel`` extra; off unless configured).

One span per connection attempt of a stream, from the supervisor starting it to the
supervisor deciding what comes next: the stream, the redacted URL, the status code, the
outcome (``restart``, ``fail``, ``done``, ``stopped``), the events and bytes it carried and
the failure class; span events for the connection being accepted, the reconnect decision
(delay, reason) and session changes (``session_changed``, for upstreams with sessions such
as MCP). Each attempt's request carries the W3C ``traceparent`` of its span (W3C Trace
Context, section 3.2), injected by OpenTelemetry's own propagator.

Zero cost when off: nothing imports this module unless ``tracing:`` is configured, the
supervisor's hook is one ``is not None`` test per attempt (never per event), and
opentelemetry is imported only by ``build_tracer`` and ``AttemptTracer``.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from streamvisor.errors import HTTPStatusError, StreamvisorError
from streamvisor.extras import install_hint
from streamvisor.policy.redact import redact_url

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

    from streamvisor.config.tracing import TracingConfig
    from streamvisor.policy.supervision import Decision
    from streamvisor.spec import StreamSpec

__all__ = ["AttemptObserver", "AttemptTracer", "TracingError", "build_tracer"]

SPAN_NAME = "sse.attempt"
Connect = Callable[["StreamSpec", "str | None"], Any]


class TracingError(StreamvisorError):
    """Tracing is configured but cannot start (the ``otel`` extra is not installed)."""


class AttemptObserver(Protocol):
    """What the supervisor tells about connection attempts (all calls in its thread)."""

    def attempt_started(self, spec: StreamSpec, gen: int, wire_bytes: int) -> None:
        """Generation ``gen`` of ``spec.name`` starts; ``wire_bytes`` read by earlier ones."""
        ...

    def attempt_connected(self, stream: str, gen: int) -> None:
        """The attempt's response was accepted (200, ``text/event-stream``)."""
        ...

    def attempt_ended(
        self,
        stream: str,
        gen: int,
        *,
        error: BaseException | None,
        events: int,
        wire_bytes: int,
        decision: Decision | None,
    ) -> None:
        """The attempt ended; ``decision`` is what comes next (None: closed or stopping)."""
        ...

    def wrap_connect(self, connect: Connect) -> Connect:
        """Return a connection factory that adds this attempt's trace headers."""
        ...


@dataclasses.dataclass(slots=True)
class _Attempt:
    gen: int
    span: Span
    bytes_before: int


class AttemptTracer:
    """An ``AttemptObserver`` that records OpenTelemetry spans.

    Args:
        tracer: where spans go (from a ``TracerProvider`` that is not necessarily global).
        provider: flushed and shut down by ``shutdown()`` when given.
    """

    def __init__(self, tracer: Tracer, provider: TracerProvider | None = None) -> None:
        from opentelemetry import trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self._trace = trace
        self._tracer = tracer
        self._provider = provider
        self._propagator = TraceContextTextMapPropagator()
        self._open: dict[str, _Attempt] = {}
        self._lock = threading.Lock()  # trace_headers() runs in the streams' threads

    # -- the supervisor's hooks ----------------------------------------------------------
    def attempt_started(self, spec: StreamSpec, gen: int, wire_bytes: int) -> None:
        """Open the attempt's span (ending a previous one that never reported)."""
        span = self._tracer.start_span(
            SPAN_NAME,
            kind=self._trace.SpanKind.CLIENT,
            attributes={
                "streamvisor.stream": spec.name,
                "streamvisor.attempt": gen,
                "url.full": redact_url(spec.url),
                "http.request.method": spec.method,
            },
        )
        with self._lock:
            stale = self._open.pop(spec.name, None)
            self._open[spec.name] = _Attempt(gen, span, wire_bytes)
        if stale is not None:
            stale.span.set_attribute("streamvisor.outcome", "lost")
            stale.span.end()

    def attempt_connected(self, stream: str, gen: int) -> None:
        """Record the accepted response on the attempt's span."""
        attempt = self._get(stream, gen)
        if attempt is not None:
            attempt.span.set_attribute("http.response.status_code", 200)
            attempt.span.add_event("connected")

    def attempt_ended(
        self,
        stream: str,
        gen: int,
        *,
        error: BaseException | None,
        events: int,
        wire_bytes: int,
        decision: Decision | None,
    ) -> None:
        """Record how the attempt ended and what comes next, and end its span."""
        with self._lock:
            attempt = self._open.get(stream)
            if attempt is None or attempt.gen != gen:
                return
            del self._open[stream]
        span = attempt.span
        span.set_attribute("streamvisor.events", events)
        span.set_attribute("streamvisor.bytes", max(0, wire_bytes - attempt.bytes_before))
        if isinstance(error, HTTPStatusError):
            span.set_attribute("http.response.status_code", error.status)
        if decision is None:
            span.set_attribute("streamvisor.outcome", "stopped")
        else:
            span.set_attribute("streamvisor.outcome", decision.kind.value)
            if decision.failure_class is not None:
                span.set_attribute("streamvisor.failure_class", decision.failure_class)
                if error is not None:
                    span.set_attribute("error.type", type(error).__name__)
                span.set_status(self._trace.StatusCode.ERROR, decision.reason)
            if decision.kind.value == "restart":
                span.add_event(
                    "reconnect decision",
                    {"streamvisor.delay": round(decision.delay, 6), "reason": decision.reason},
                )
            else:
                span.add_event(f"stream {decision.kind.value}", {"reason": decision.reason})
        span.end()

    def wrap_connect(self, connect: Connect) -> Connect:
        """A connection factory that sends ``traceparent`` with each attempt's request."""

        def traced(spec: StreamSpec, last_event_id: str | None) -> Any:
            carrier = self.trace_headers(spec.name)
            if carrier:
                spec = dataclasses.replace(spec, headers=_merged(spec.headers, carrier))
            return connect(spec, last_event_id)

        return traced

    # -- for other parts ---------------------------------------------------------------
    def trace_headers(self, stream: str) -> dict[str, str]:
        """``traceparent`` (and ``tracestate``) of the stream's open attempt, or {}."""
        with self._lock:
            attempt = self._open.get(stream)
        if attempt is None:
            return {}
        carrier: dict[str, str] = {}
        context = self._trace.set_span_in_context(attempt.span)
        self._propagator.inject(carrier, context=context)
        return carrier

    def session_changed(self, stream: str, reason: str, **attributes: str | int) -> None:
        """Add a ``session changed`` event to the stream's open attempt (e.g. an MCP
        session expired and was re-initialized). Pass no secrets (no session ids)."""
        with self._lock:
            attempt = self._open.get(stream)
        if attempt is not None:
            attempt.span.add_event("session changed", {"reason": reason, **attributes})

    def shutdown(self, timeout: float = 5.0) -> None:
        """End spans still open (outcome ``unfinished``), flush, and shut the provider down."""
        with self._lock:
            left, self._open = list(self._open.values()), {}
        for attempt in left:
            attempt.span.set_attribute("streamvisor.outcome", "unfinished")
            attempt.span.end()
        if self._provider is not None:
            self._provider.force_flush(int(timeout * 1000))
            self._provider.shutdown()

    def _get(self, stream: str, gen: int) -> _Attempt | None:
        with self._lock:
            attempt = self._open.get(stream)
        return attempt if attempt is not None and attempt.gen == gen else None


def _merged(headers: Any, extra: Mapping[str, str]) -> Any:
    if callable(headers):
        return lambda: {**headers(), **extra}
    return {**headers, **extra}


def build_tracer(config: TracingConfig, *, console: Any = None) -> AttemptTracer:
    """An ``AttemptTracer`` exporting as ``config`` says, on its own ``TracerProvider``
    (the process-global provider is left alone).

    Args:
        config: the ``tracing:`` settings.
        console: where the console exporter writes (default: stderr, since stdout may
            carry events).

    Raises:
        TracingError: the ``otel`` extra is not installed.
    """
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            ConsoleSpanExporter,
            SpanExporter,
        )
    except ImportError:
        raise TracingError(
            f"tracing is configured but OpenTelemetry is not installed: {install_hint('otel')}"
        ) from None
    from streamvisor import __version__

    exporter: SpanExporter
    if config.exporter == "console":
        exporter = ConsoleSpanExporter(out=console if console is not None else sys.stderr)
    else:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError:
            raise TracingError(
                f"the otlp exporter is not installed: {install_hint('otel')}"
            ) from None
        exporter = OTLPSpanExporter(endpoint=config.endpoint, timeout=5)
    provider = TracerProvider(resource=Resource.create({"service.name": config.service_name}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return AttemptTracer(provider.get_tracer("streamvisor", __version__), provider)
