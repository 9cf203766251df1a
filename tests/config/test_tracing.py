"""The ``tracing:`` config section: defaults, errors with their line, secrets, the extra."""

from __future__ import annotations

import pytest

from streamvisor.config.tracing import TracingConfig
from tests.support import config as cfg
from tests.support.config import STREAM


def test_tracing_is_off_without_the_section_and_defaults_to_otlp_with_it() -> None:
    assert cfg.parse(STREAM).tracing is None
    assert cfg.parse(STREAM + "tracing: {}\n").tracing == TracingConfig()
    config = cfg.parse(
        STREAM + "tracing: {exporter: otlp, endpoint: 'http://127.0.0.1:4318/v1/traces', "
        "service_name: ingest}\n"
    )
    assert config.tracing == TracingConfig("otlp", "http://127.0.0.1:4318/v1/traces", "ingest")


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("{exporter: jaeger}", "tracing.exporter: expected 'otlp' or 'console', got 'jaeger'"),
        ("{exporter: console, endpoint: 'http://h/'}", "tracing.endpoint: 'endpoint' does not"),
        ("{endpoint: 'ftp://h/'}", "tracing.endpoint: expected an http:// or https:// URL"),
        ("{service_name: ''}", "tracing.service_name: must not be empty"),
        ("{sampler: always}", "tracing.sampler: unknown key 'sampler'"),
        ("[otlp]", "tracing: expected a mapping"),
    ],
)
def test_bad_tracing_settings_are_errors_with_their_line(section: str, message: str) -> None:
    errors = cfg.errors(STREAM + f"tracing: {section}\n")
    assert len(errors) == 1
    assert errors[0].startswith("config.yaml:4: " + message)


def test_the_tracing_endpoint_password_is_a_secret_and_hidden_from_repr() -> None:
    config = cfg.parse(STREAM + "tracing: {endpoint: 'https://u:pw-9x7@collector/v1/traces'}\n")
    assert "pw-9x7" in config.secrets
    assert "pw-9x7" not in repr(config.tracing)


def test_tracing_without_the_otel_extra_is_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("streamvisor.config.tracing.otel_installed", lambda: False)
    warnings = cfg.warnings(STREAM + "tracing: {exporter: console}\n")
    assert len(warnings) == 1
    assert "pip install 'streamvisor[otel]'" in warnings[0]
    assert "from a source checkout: pip install '.[otel]'" in warnings[0]
