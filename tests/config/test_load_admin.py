"""The ``admin:`` section: its token (read, interpolated, kept secret, required off
loopback) and the warning for a listener off loopback."""

from __future__ import annotations

import pytest

from streamvisor.config.load import AdminConfig
from tests.support import config as cfg
from tests.support.config import STREAM


def test_admin_token_is_read_kept_secret_and_hidden_from_repr() -> None:
    config = cfg.parse(STREAM + "admin: {listen: '127.0.0.1:0', token: s3cr3t-t0ken}\n")
    assert config.admin == AdminConfig(host="127.0.0.1", port=0, token="s3cr3t-t0ken")
    assert "s3cr3t-t0ken" in config.secrets
    assert "s3cr3t-t0ken" not in repr(config.admin)


def test_admin_token_from_the_environment_is_interpolated() -> None:
    config = cfg.parse(
        STREAM + "admin: {listen: '127.0.0.1:0', token: '${ADMIN_TOKEN}'}\n",
        {"ADMIN_TOKEN": "from-env-123"},
    )
    assert config.admin is not None and config.admin.token == "from-env-123"
    assert "from-env-123" in config.secrets


@pytest.mark.parametrize(
    ("admin", "warned"),
    [
        ("{listen: '0.0.0.0:9108'}", True),
        ("{listen: '0.0.0.0:9108', token: abcdefgh}", False),
        ("{listen: '127.0.0.1:9108'}", False),
        ("{listen: 'myhost:9108', token: abcdefgh}", False),
    ],
)
def test_a_non_loopback_listener_without_a_token_is_a_warning(admin: str, warned: bool) -> None:
    warnings = cfg.warnings(STREAM + f"admin: {admin}\n")
    assert len(warnings) == int(warned)
    if warned:
        assert "admin.token is not set" in warnings[0]


def test_an_empty_admin_token_is_an_error() -> None:
    assert cfg.errors(STREAM + "admin: {listen: '127.0.0.1:0', token: ''}\n") == [
        "config.yaml:4: admin.token: must not be empty"
    ]


@pytest.mark.parametrize(
    ("listen", "warned"),
    [
        ("127.0.0.1:9108", False),
        ("localhost:9108", False),
        ("'[::1]:9108'", False),
        ("0.0.0.0:9108", True),
        ("'[::]:9108'", True),
        ("192.168.1.5:9108", True),
        ("myhost:9108", True),
    ],
)
def test_an_admin_listener_off_loopback_is_a_warning(listen: str, warned: bool) -> None:
    warnings = cfg.warnings(STREAM + f"admin: {{listen: {listen}}}\n")
    assert len(warnings) == int(warned)
    if warned:
        assert warnings[0].startswith("config.yaml:4: admin.listen: ")
        assert "is not a loopback address" in warnings[0]
