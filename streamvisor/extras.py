"""The optional extras (``setup.cfg`` ``extras_require``) and how to install one, for the
messages that need one. Pure: no I/O.

A hint names both ways, because a newcomer often has a source checkout rather than a
package index that carries streamvisor: ``pip install 'streamvisor[top]'`` (from an index)
and ``pip install '.[top]'`` (from the checkout's folder).
"""

from __future__ import annotations

__all__ = ["EXTRAS", "install_hint"]

EXTRAS = {
    "top": "rich (streamvisor top)",
    "otel": "OpenTelemetry (tracing:)",
    "cluster": "redis-py (cluster mode, the redis_streams sink, the redis checkpoint store)",
}
"""Each extra a message may name, and what it brings."""


def install_hint(extra: str) -> str:
    """How to install ``extra``, from a package index and from a source checkout.

    ``install_hint("top")`` is
    ``pip install 'streamvisor[top]' (from a source checkout: pip install '.[top]')``.

    Raises:
        ValueError: ``extra`` is not one of ``EXTRAS``.
    """
    if extra not in EXTRAS:
        raise ValueError(f"unknown extra {extra!r}; expected one of {sorted(EXTRAS)}")
    return f"pip install 'streamvisor[{extra}]' (from a source checkout: pip install '.[{extra}]')"
