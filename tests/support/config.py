"""Config text in, ``Config`` (or its error and warning lines) out, for the config tests.

Texts are dedented (and a leading newline dropped), so tests can write them as indented
triple-quoted strings; paths resolve against ``BASE_DIR`` and ``${VARS}`` only from the
``environ`` given (never ``os.environ``).
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Mapping

import pytest

from streamvisor.config.load import Config, ConfigErrors, parse_config

BASE_DIR = os.path.abspath("/cfg")
STREAM = """\
streams:
  - name: a
    url: http://127.0.0.1:8000/events
"""
"""One stream, ready for more keys (of the stream, at 4 spaces) or sections (at column 0)."""


def parse(
    text: str, environ: Mapping[str, str] | None = None, source: str = "config.yaml"
) -> Config:
    """``text`` parsed as the file ``source`` in ``BASE_DIR``."""
    text = textwrap.dedent(text).lstrip("\n")
    return parse_config(text, source=source, base_dir=BASE_DIR, environ=environ or {})


def errors(
    text: str, environ: Mapping[str, str] | None = None, source: str = "config.yaml"
) -> list[str]:
    """The formatted errors of a config that must not parse (fails the test if it does)."""
    with pytest.raises(ConfigErrors) as info:
        parse(text, environ, source)
    return [error.format() for error in info.value.errors]


def warnings(
    text: str, environ: Mapping[str, str] | None = None, source: str = "config.yaml"
) -> list[str]:
    """The formatted warnings of a config that parses."""
    return [warning.format() for warning in parse(text, environ, source).warnings]
