"""Broken configs through the real command line: ``streamvisor check`` and ``streamvisor run``
both exit 2 with the exact ``FILE:LINE: path.to.key: message`` line and no traceback.

The full table of config problems is a unit test (tests/config/test_load.py); these cases
prove the CLI reports what the loader finds, as a subprocess would see it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TIMEOUT = 20.0
UNSET = "STREAMVISOR_TEST_UNSET_TOKEN"

GOOD_STREAM = "streams:\n  - name: ticker\n    url: http://127.0.0.1:9/events\n"

# (case id, config text or None for a missing file, the expected line with {path})
CASES = [
    ("missing file", None, "{path}: file not found"),
    (
        "yaml syntax error",
        GOOD_STREAM + "  headers: x\n",
        "{path}:4: YAML syntax error: while parsing a block collection, expected <block end>, "
        "but found '?' (column 3)",
    ),
    (
        "unknown key with a suggestion",
        GOOD_STREAM + "    read_timout: 5\n",
        "{path}:4: streams[0].read_timout: unknown key 'read_timout' "
        "(did you mean 'read_timeout'?)",
    ),
    (
        "wrong type",
        GOOD_STREAM + "    connect_timeout: soon\n",
        "{path}:4: streams[0].connect_timeout: expected a number, got 'soon'",
    ),
    (
        "duplicate stream name",
        GOOD_STREAM + "  - name: ticker\n    url: http://127.0.0.1:9/other\n",
        "{path}:4: streams[1].name: duplicate stream name 'ticker' (first at line 2)",
    ),
    (
        "missing environment variable",
        GOOD_STREAM + f'    headers: {{Authorization: "Bearer ${{{UNSET}}}"}}\n',
        f"{{path}}:4: streams[0].headers.Authorization: environment variable {UNSET} is not set",
    ),
    (
        "header value run cannot send",
        GOOD_STREAM + '    headers: {Authorization: "Bearer x\\u0007"}\n',
        "{path}:4: streams[0].headers.Authorization: header value holds control characters",
    ),
]


@pytest.mark.parametrize("command", ["check", "run"])
@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_broken_config_exits_2_with_the_exact_error_line_and_no_traceback(
    tmp_path: Path, command: str, text: str | None, expected: str
) -> None:
    path = tmp_path / "streamvisor.yaml"
    if text is not None:
        path.write_text(text, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != UNSET}
    result = subprocess.run(
        [sys.executable, "-m", "streamvisor", command, str(path)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [expected.format(path=path)]
    assert result.stdout == ""
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize("command", ["check", "run"])
def test_dev_zero_as_the_config_exits_2_at_once_with_one_line(command: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "streamvisor", command, "/dev/zero"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        "/dev/zero: is a character device, not a regular file: give the path of a YAML file"
    ]
