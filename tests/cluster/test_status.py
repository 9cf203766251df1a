"""``streamvisor cluster status`` without redis-py installed: one line saying how to install
it (from an index or a source checkout), exit 1, no traceback."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from streamvisor.cli.main import main
from tests.support.config import CLUSTER


def test_cluster_status_without_redis_py_says_how_to_install_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(CLUSTER, encoding="utf-8")
    monkeypatch.setitem(sys.modules, "redis", None)  # `import redis` raises ImportError
    assert main(["cluster", "status", str(path)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "streamvisor cluster status needs redis-py: pip install 'streamvisor[cluster]' "
        "(from a source checkout: pip install '.[cluster]')"
    ]
