"""The YAML config: load, interpolate ``${VAR}``, validate with file:line errors, and the frozen
values it becomes (``Config``, ``SinkConfig``, ...). Pure but for reading the one file.

The names below load lazily: feature packages (relay, cluster, MCP) import
``streamvisor.config.schema`` for their own sections, and ``load`` imports them back.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from streamvisor.config.load import (
        AdminConfig,
        CheckpointConfig,
        Config,
        ConfigErrors,
        SinkConfig,
        load_config,
        parse_config,
    )

__all__ = [
    "AdminConfig",
    "CheckpointConfig",
    "Config",
    "ConfigErrors",
    "SinkConfig",
    "load_config",
    "parse_config",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("streamvisor.config.load"), name)
    raise AttributeError(f"module 'streamvisor.config' has no attribute {name!r}")
