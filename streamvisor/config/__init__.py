"""The YAML config: load, interpolate ``${VAR}``, validate with file:line errors, and the frozen
values it becomes (``Config``, ``SinkConfig``, ...). Pure but for reading the one file.

Modules, in the order a file goes through them: ``load`` (``source`` reads the file: a
regular one, 10 MiB at most; ``load`` puts the sections together), ``walker`` (YAML to
located ``Node`` values, ``interpolation`` of ``${VAR}``), ``checker`` and ``readers`` (the
``Checker``: read one value, record a located problem), ``streams``, ``sinks`` with
``sink_types`` (one class per sink type: the registry) and ``buffers``, ``tracing``,
``checks`` (warnings across sections), ``model`` (the values). ``schema`` is the import path
for the section readers of feature packages.

The names below load lazily: feature packages (relay, cluster) import
``streamvisor.config.schema`` for their own sections, and ``load`` imports them back.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from streamvisor.config.load import ConfigErrors, load_config, parse_config
    from streamvisor.config.model import AdminConfig, CheckpointConfig, Config, SinkConfig

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
