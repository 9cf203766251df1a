"""``StreamSpec``: everything needed to run one upstream stream, as a frozen value.

Pure: no I/O. The config loader builds these from YAML; Python users build them directly.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from streamvisor.policy.backoff import BackoffPolicy, RestartLimit

if TYPE_CHECKING:
    from streamvisor.hooks import ProtocolHandler

HeadersArg = Mapping[str, str] | Callable[[], Mapping[str, str]]

DEFAULT_MAX_EVENT_SIZE = 8 << 20
"""8 MiB: LaunchDarkly's SSE contract tests send 5 MiB events; an event past the limit
fails its connection with a WARNING naming the limit, never silently skipped."""


# Longest connect or read timeout, seconds (about 31 years): a socket cannot wait much longer
# (its deadline would overflow time_t), so a bigger value would crash every attempt.
MAX_TIMEOUT = 1e9


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """Per-stream circuit breaker.

    After ``failures`` consecutive failed attempts the breaker opens: no attempt for
    ``cooldown`` seconds, then one half-open probe; a probe that fails opens it again.
    ``failures`` of 0 disables the breaker.
    """

    failures: int = 10
    cooldown: float = 120.0

    def __post_init__(self) -> None:
        if not isinstance(self.failures, int) or self.failures < 0:
            raise ValueError(f"breaker.failures must be an integer >= 0, got {self.failures!r}")
        if not isinstance(self.cooldown, int | float) or self.cooldown < 0:
            raise ValueError(f"breaker.cooldown must be a number >= 0, got {self.cooldown!r}")


def _policy(name: str, key: str, kind: type[Any], value: Any) -> Any:
    """``value`` as a ``kind``: a mapping of the config's keys is accepted, as in YAML.

    Raises:
        ValueError: neither a ``kind`` nor a mapping of its keys.
    """
    if isinstance(value, kind):
        return value
    if isinstance(value, Mapping):
        try:
            return kind(**value)
        except TypeError:
            known = ", ".join(f.name for f in fields(kind))
            unknown = ", ".join(sorted(str(k) for k in value if k not in kind.__dataclass_fields__))
            raise ValueError(
                f"stream {name!r}: unknown {key} key(s) {unknown} (known: {known})"
            ) from None
        except ValueError as exc:
            raise ValueError(f"stream {name!r}: {exc}") from None
    raise ValueError(
        f"stream {name!r}: {key} must be a {kind.__name__} or a mapping, got {type(value).__name__}"
    )


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """One upstream SSE stream and how to keep it alive.

    Only ``name`` and ``url`` are required.

    Attributes:
        name: unique stream name (used in events, status, metrics and checkpoints).
        url: the SSE endpoint (http or https).
        method: ``GET`` or ``POST``.
        headers: extra request headers, or a callable returning them, called on every
            connection attempt (fresh tokens).
        body: POST body: ``str``/``bytes`` sent as is, anything else sent as JSON.
        auth: a ``requests.auth.AuthBase`` or callable that signs each attempt's request.
        connect_timeout: seconds to establish the connection.
        read_timeout: seconds without any byte (comments count) after which the
            connection is considered dead and replaced.
        backoff: reconnect delay policy (a ``BackoffPolicy`` or a mapping of its keys).
        max_restarts: restart intensity; beyond it the stream fails (a ``RestartLimit`` or
            a mapping).
        max_attempts: optional retry budget: consecutive failed attempts before failing.
        breaker: circuit breaker policy (a ``BreakerPolicy`` or a mapping).
        dedup_window: how many recent event ids to remember for duplicate suppression.
        last_event_id: Last-Event-ID for the very first request (e.g. from a checkpoint).
        max_event_size: cap, in bytes, on one line or one event (8 MiB by default);
            larger input fails the connection (``LineTooLongError``) and is never skipped.
        max_redirects: redirects followed per attempt.
        verify: TLS verification (bool or a CA bundle path).
        handler: optional protocol hooks (see ``streamvisor.hooks.ProtocolHandler``).
        enabled: a disabled stream is configured but not started.
        kind: ``sse`` (a plain SSE endpoint) or ``mcp`` (an MCP server: sessions, the
            listening stream, resumable calls; see ``streamvisor.upstream.mcp``).
        mcp: the ``mcp:`` options of a ``kind: mcp`` stream (a mapping or ``McpOptions``;
            validated and frozen into ``McpOptions``).
    """

    name: str
    url: str
    method: str = "GET"
    headers: HeadersArg = field(default_factory=dict)
    body: Any = None
    auth: Any = None
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)
    max_restarts: RestartLimit = field(default_factory=RestartLimit)
    max_attempts: int | None = None
    breaker: BreakerPolicy = field(default_factory=BreakerPolicy)
    dedup_window: int = 4096
    last_event_id: str | None = None
    max_event_size: int = DEFAULT_MAX_EVENT_SIZE
    max_redirects: int = 10
    verify: bool | str = True
    handler: ProtocolHandler | None = None
    enabled: bool = True
    kind: str = "sse"
    mcp: Any = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError("stream name must be a non-empty string")
        if not isinstance(self.url, str) or not self.url.lower().startswith(
            ("http://", "https://")
        ):
            raise ValueError(f"stream {self.name!r}: url must start with http:// or https://")
        method = str(self.method).upper()
        if method not in ("GET", "POST"):
            raise ValueError(f"stream {self.name!r}: method must be GET or POST, got {method!r}")
        object.__setattr__(self, "method", method)
        for key, kind in (
            ("backoff", BackoffPolicy),
            ("max_restarts", RestartLimit),
            ("breaker", BreakerPolicy),
        ):
            object.__setattr__(self, key, _policy(self.name, key, kind, getattr(self, key)))
        for key in ("connect_timeout", "read_timeout"):
            value = getattr(self, key)
            if not isinstance(value, int | float) or not 0 < value <= MAX_TIMEOUT:
                raise ValueError(
                    f"stream {self.name!r}: {key} must be a number > 0 and at most "
                    f"{MAX_TIMEOUT:g} seconds"
                )
        if self.max_attempts is not None and (
            not isinstance(self.max_attempts, int) or self.max_attempts < 1
        ):
            raise ValueError(f"stream {self.name!r}: max_attempts must be an integer >= 1")
        if not isinstance(self.dedup_window, int) or self.dedup_window < 0:
            raise ValueError(f"stream {self.name!r}: dedup_window must be an integer >= 0")
        if not isinstance(self.max_event_size, int) or self.max_event_size < 64:
            raise ValueError(f"stream {self.name!r}: max_event_size must be an integer >= 64")
        if self.kind not in ("sse", "mcp"):
            raise ValueError(f"stream {self.name!r}: kind must be sse or mcp, got {self.kind!r}")
        if self.mcp is not None and self.kind != "mcp":
            raise ValueError(f"stream {self.name!r}: mcp options need kind: mcp")
        if self.kind == "mcp":
            from streamvisor.upstream.mcp.options import parse_options

            try:
                object.__setattr__(self, "mcp", parse_options(self.mcp))
            except ValueError as exc:
                raise ValueError(f"stream {self.name!r}: {exc}") from None

    def __repr__(self) -> str:
        from streamvisor.policy.redact import redact_url

        return (
            f"StreamSpec(name={self.name!r}, url={redact_url(self.url)!r}, method={self.method!r})"
        )

    def body_bytes(self) -> tuple[bytes | None, str | None]:
        """The request body and its content type (None when there is no body)."""
        if self.body is None:
            return None, None
        if isinstance(self.body, bytes):
            return self.body, None
        if isinstance(self.body, str):
            return self.body.encode("utf-8"), None
        return json.dumps(self.body, separators=(",", ":")).encode("utf-8"), "application/json"

    def settings_key(self) -> tuple[Any, ...]:
        """A value that changes when a setting that needs a reconnect changes (for reload)."""
        headers = self.headers if isinstance(self.headers, Mapping) else id(self.headers)
        return (
            self.url,
            self.method,
            tuple(sorted(headers.items())) if isinstance(headers, Mapping) else headers,
            json.dumps(self.body, sort_keys=True, default=repr),
            id(self.auth) if self.auth is not None else None,
            self.connect_timeout,
            self.read_timeout,
            self.backoff,
            self.max_restarts,
            self.max_attempts,
            self.breaker,
            self.dedup_window,
            self.max_event_size,
            self.max_redirects,
            self.verify,
            self.enabled,
            self.kind,
            self.mcp,
        )
