"""The cluster node without redis-py installed: the daemon says how to install it (from an
index or a source checkout) in one line and exits 1, no traceback."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from streamvisor.config.load import load_config
from streamvisor.daemon.run import Daemon
from tests.support.config import CLUSTER


def test_the_daemon_in_cluster_mode_without_redis_py_says_how_to_install_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(CLUSTER, encoding="utf-8")
    monkeypatch.setitem(sys.modules, "redis", None)  # `import redis` raises ImportError
    daemon = Daemon(load_config(path, environ={}), str(path))
    assert daemon.run(install_signals=False) == 1
    assert capsys.readouterr().err.splitlines() == [
        "streamvisor: cluster mode needs redis-py: pip install 'streamvisor[cluster]' "
        "(from a source checkout: pip install '.[cluster]')"
    ]
