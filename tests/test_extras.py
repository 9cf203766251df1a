"""Install hints of the optional extras (``streamvisor/extras.py``): every message and every
document that tells how to install an extra also tells how from a source checkout, where
``pip install 'streamvisor[X]'`` finds nothing to install."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

import pytest

from streamvisor.extras import EXTRAS, install_hint

ROOT = Path(__file__).resolve().parents[1]
DOCS = ["README.md", "config.example.yaml"]
INDEX_FORM = re.compile(r"""streamvisor\[(\w+)\]""")
NEAR = 250  # characters either side where the checkout form must be

PENDING_LEAD: set[str] = set()
"""Modules with an index-only hint that the lead owns now: they should say
``install_hint('top')`` / ``install_hint('otel')`` (from ``streamvisor.extras``); remove each
from this set once it does."""


def test_a_hint_names_the_index_and_the_checkout_forms() -> None:
    assert install_hint("top") == (
        "pip install 'streamvisor[top]' (from a source checkout: pip install '.[top]')"
    )


def test_an_unknown_extra_has_no_hint() -> None:
    with pytest.raises(ValueError, match="unknown extra 'tops'"):
        install_hint("tops")


def test_every_extra_named_in_hints_is_one_setup_cfg_defines() -> None:
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg", encoding="utf-8")
    assert set(EXTRAS) <= set(setup["options.extras_require"])


@pytest.mark.parametrize("doc", DOCS)
def test_every_install_hint_in_the_docs_says_how_from_a_source_checkout(doc: str) -> None:
    text = (ROOT / doc).read_text(encoding="utf-8")
    hints = list(INDEX_FORM.finditer(text))
    assert hints, f"{doc} names no extra: is this test still needed?"
    for hint in hints:
        around = text[max(0, hint.start() - NEAR) : hint.end() + NEAR]
        line = text.count("\n", 0, hint.start()) + 1
        assert f"'.[{hint.group(1)}]'" in around, f"{doc}:{line}: no checkout form near it"


def test_no_module_writes_an_install_hint_of_its_own() -> None:
    own = set()
    for path in sorted((ROOT / "streamvisor").rglob("*.py")):
        name = str(path.relative_to(ROOT))
        if name != "streamvisor/extras.py" and INDEX_FORM.search(path.read_text("utf-8")):
            own.add(name)
    assert own <= PENDING_LEAD, f"use streamvisor.extras.install_hint in {sorted(own)}"
