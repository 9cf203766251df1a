"""The import rules of ARCHITECTURE.md's layer table, enforced on every module.

The table is read from ARCHITECTURE.md (written once, there); every ``import`` in
``streamvisor/`` is checked against it. ``test_a_crossing_import_is_caught`` shows that the
check fails on a crossing import.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "streamvisor"
IO_MODULES = frozenset(
    {
        "threading",
        "socket",
        "sqlite3",
        "asyncio",
        "subprocess",
        "http",
        "ssl",
        "select",
        "selectors",
        "signal",
        "requests",
        "urllib3",
        "pykka",
        "redis",
        "h11",
        "prometheus_client",
        "rich",
        "opentelemetry",
    }
)
PYKKA_USERS = ("actors", "demo")
REQUESTS_USERS = ("streamvisor.upstream", "streamvisor.sinks.webhook", "streamvisor.views.client")


@dataclass(frozen=True)
class Layer:
    name: str
    patterns: tuple[str, ...]
    pure: bool
    may_import: frozenset[str]
    never: tuple[str, ...]


def read_layers(text: str) -> list[Layer]:
    """The rows between the ``layers:begin`` and ``layers:end`` markers."""
    block = text.split("<!-- layers:begin -->", 1)[1].split("<!-- layers:end -->", 1)[0]
    layers = []
    for line in block.strip().splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        name, modules, pure, may, never = cells
        layers.append(
            Layer(
                name,
                tuple(re.findall(r"`([^`]+)`", modules)),
                pure == "yes",
                frozenset(x.strip() for x in may.split(",") if x.strip()),
                tuple(re.findall(r"`([^`]+)`", never)),
            )
        )
    return layers


LAYERS = read_layers((ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8"))


def layer_of(module: str, layers: list[Layer] = LAYERS) -> Layer:
    """The most specific row naming ``module`` (exact beats the longest ``folder.*``)."""
    best: tuple[int, Layer] | None = None
    for layer in layers:
        for pattern in layer.patterns:
            if pattern.endswith(".*"):
                prefix = pattern[:-2]
                if module == prefix or module.startswith(prefix + "."):
                    score = len(prefix)
                else:
                    continue
            elif module == pattern:
                score = 10_000
            else:
                continue
            if best is None or score > best[0]:
                best = (score, layer)
    if best is None:
        raise AssertionError(f"{module} is in no layer of ARCHITECTURE.md")
    return best[1]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(source: str) -> list[tuple[int, str]]:
    """(line, module) of every runtime import (``if TYPE_CHECKING:`` blocks skipped)."""
    tree = ast.parse(source)
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for n in ast.walk(node))
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def violations(module: str, source: str, layers: list[Layer] = LAYERS) -> list[str]:
    """Every import of ``module`` that the table forbids, as readable lines."""
    own = layer_of(module, layers)
    problems = []
    for line, target in imports_of(source):
        top = target.split(".")[0]
        where = f"{module}:{line} imports {target}"
        if top != "streamvisor":
            if own.pure and top in IO_MODULES:
                problems.append(f"{where}: a pure module imports no I/O or threads")
            if top == "pykka" and not any(f"streamvisor.{u}" in module for u in PYKKA_USERS):
                problems.append(f"{where}: only actors/ import pykka")
            if top in ("requests", "urllib3") and not module.startswith(REQUESTS_USERS):
                problems.append(f"{where}: requests is for upstream, the webhook and the views")
            continue
        theirs = layer_of(target, layers)
        if any(target == n or target.startswith(n + ".") for n in own.never):
            problems.append(f"{where}: layer {own.name} never imports it")
        elif own.pure and not theirs.pure:
            problems.append(f"{where}: a pure module imports only pure modules")
        elif not (theirs.pure or theirs.name == own.name or theirs.name in own.may_import):
            problems.append(f"{where}: layer {own.name} may not import layer {theirs.name}")
    return problems


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_module_is_in_a_layer_and_imports_only_what_its_layer_allows() -> None:
    problems = []
    for path in _modules():
        problems += violations(module_name(path), path.read_text(encoding="utf-8"))
    assert not problems, "imports crossing ARCHITECTURE.md's layer table:\n" + "\n".join(problems)


def test_every_layer_named_in_may_import_exists() -> None:
    names = {layer.name for layer in LAYERS}
    for layer in LAYERS:
        assert layer.may_import <= names, f"{layer.name}: unknown {layer.may_import - names}"


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        (
            "streamvisor.sse.decoder",
            "import threading\n",
            "a pure module imports no I/O or threads",
        ),
        (
            "streamvisor.policy.dedup",
            "from streamvisor.actors.hub import Hub\n",
            "a pure module imports only pure modules",
        ),
        (
            "streamvisor.actors.stream",
            "from streamvisor.cli.main import main\n",
            "layer actors may not import layer cli",
        ),
        (
            "streamvisor.upstream.connection",
            "from streamvisor.policy.supervision import RestartPolicy\n",
            "layer upstream never imports it",
        ),
        (
            "streamvisor.sinks.file",
            "import pykka\n",
            "only actors/ import pykka",
        ),
        (
            "streamvisor.daemon.run",
            "import requests\n",
            "requests is for upstream",
        ),
    ],
)
def test_a_crossing_import_is_caught(module: str, source: str, expected: str) -> None:
    found = violations(module, source)
    assert any(expected in line for line in found), found


def test_an_allowed_import_and_a_type_checking_import_pass() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "from streamvisor.buffers import MemoryBuffer\n"
        "if TYPE_CHECKING:\n    from streamvisor.cli.main import main\n"
    )
    assert violations("streamvisor.actors.sink", source) == []


def test_importing_the_decoder_imports_neither_pykka_nor_requests() -> None:
    code = (
        "import sys, streamvisor.sse, streamvisor.errors\n"
        "d = streamvisor.sse.Decoder()\n"
        "print(sorted(m for m in ('pykka', 'requests', 'urllib3') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_no_module_is_over_400_lines() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in _modules()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400
    }
    assert not long, f"modules over 400 lines: {long}"
