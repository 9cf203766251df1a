"""The ``tracing:`` config section: which OpenTelemetry exporter, where, under which name.

Pure (reading a config node; the one look-up is whether the ``otel`` extra is installed, to
warn at ``check`` time rather than fail at ``run``). Nothing here imports opentelemetry.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from streamvisor.config.checker import Checker
from streamvisor.config.node import INVALID, Invalid, Node
from streamvisor.extras import install_hint
from streamvisor.policy.redact import redact_url

__all__ = ["EXPORTERS", "TracingConfig", "read_tracing"]

EXPORTERS = ("otlp", "console")
_KEYS = ("exporter", "endpoint", "service_name")


@dataclass(frozen=True, slots=True, repr=False)
class TracingConfig:
    """OpenTelemetry traces of connection attempts (see ``streamvisor.daemon.tracing``).

    Attributes:
        exporter: ``otlp`` (OTLP over HTTP/protobuf) or ``console`` (JSON on stdout).
        endpoint: the OTLP traces URL, e.g. ``http://127.0.0.1:4318/v1/traces``; None
            leaves it to the exporter (``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` or its default).
        service_name: the ``service.name`` resource attribute.
    """

    exporter: str = "otlp"
    endpoint: str | None = None
    service_name: str = "streamvisor"

    def __repr__(self) -> str:
        endpoint = redact_url(self.endpoint) if self.endpoint is not None else None
        return (
            f"TracingConfig(exporter={self.exporter!r}, endpoint={endpoint!r}, "
            f"service_name={self.service_name!r})"
        )


def read_tracing(c: Checker, node: Node | None) -> TracingConfig | Invalid | None:
    """Read the ``tracing:`` mapping, recording problems on ``c``.

    Returns:
        The settings, None when the section is absent or null (tracing off), or ``INVALID``
        after recording an error.
    """
    if node is None or node.value is None:
        return None
    entries = c.mapping(node, _KEYS)
    if isinstance(entries, Invalid):
        return INVALID
    exporter: str | Invalid = "otlp"
    if (child := entries.get("exporter")) is not None and child.value is not None:
        exporter = c.choice(child, EXPORTERS)
    endpoint: str | Invalid | None = None
    if (child := entries.get("endpoint")) is not None and child.value is not None:
        endpoint = c.url(child)
        if exporter == "console":
            c.error(child.key_line, child.path, "'endpoint' does not apply to the console exporter")
            endpoint = INVALID
    service: str | Invalid = "streamvisor"
    if (child := entries.get("service_name")) is not None and child.value is not None:
        service = c.string(child)
    if (
        isinstance(exporter, Invalid)
        or isinstance(endpoint, Invalid)
        or isinstance(service, Invalid)
    ):
        return INVALID
    if not otel_installed():
        c.warn(
            node.key_line,
            node.path,
            f"tracing needs the otel extra ({install_hint('otel')}); "
            "'streamvisor run' refuses to start without it",
        )
    return TracingConfig(exporter=exporter, endpoint=endpoint, service_name=service.strip())


def otel_installed() -> bool:
    """True when the OpenTelemetry SDK can be imported (it is located, not imported)."""
    try:
        return importlib.util.find_spec("opentelemetry.sdk") is not None
    except (ImportError, ValueError):
        return False
