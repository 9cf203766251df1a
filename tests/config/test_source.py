"""Reading the config file (``config/source.py``): only a regular file, and at most
``MAX_CONFIG_BYTES`` of it; everything else is one clear error, at once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from streamvisor.config.load import ConfigErrors, load_config
from streamvisor.config.source import MAX_CONFIG_BYTES, read_source
from streamvisor.errors import ConfigError

pytestmark = pytest.mark.timeout(30)  # a FIFO opened without O_NONBLOCK would wait for ever


def load_error(path: str | Path) -> str:
    with pytest.raises(ConfigErrors) as info:
        load_config(path, environ={})
    assert len(info.value.errors) == 1
    return info.value.format()


def test_the_limit_is_10_mib() -> None:
    assert MAX_CONFIG_BYTES == 10 * 1024 * 1024


def test_a_file_at_the_limit_is_read_and_one_byte_more_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(b"#" * 64)
    assert read_source(str(path), limit=64) == b"#" * 64
    with pytest.raises(ConfigError) as info:
        read_source(str(path), limit=63)
    assert info.value.format() == (
        f"{path}: larger than 63 bytes, the limit for a config file: is it the right file?"
    )


def test_a_config_over_10_mib_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as handle:
        handle.truncate(MAX_CONFIG_BYTES + 1)  # sparse: nothing written
    assert load_error(path) == (
        f"{path}: larger than 10 MiB, the limit for a config file: is it the right file?"
    )


def test_dev_zero_is_refused_before_a_byte_is_read() -> None:
    assert load_error("/dev/zero") == (
        "/dev/zero: is a character device, not a regular file: give the path of a YAML file"
    )


def test_a_named_pipe_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "config.fifo"
    os.mkfifo(fifo)
    assert load_error(fifo) == (
        f"{fifo}: is a named pipe (FIFO), not a regular file: give the path of a YAML file"
    )


def test_a_directory_is_refused(tmp_path: Path) -> None:
    assert load_error(tmp_path) == f"{tmp_path}: is a directory, not a file"


def test_a_path_that_cannot_be_opened_gives_the_systems_reason(tmp_path: Path) -> None:
    parent = tmp_path / "file.yaml"
    parent.write_text("streams: []\n", encoding="utf-8")
    assert load_error(parent / "c.yaml") == f"{parent / 'c.yaml'}: cannot read: Not a directory"
