"""``expand``: what a string becomes, and what it tells the checker (secrets, problems)."""

from __future__ import annotations

import pytest

from streamvisor.config.interpolation import Expansion, expand

ENV = {"HOST": "h", "EMPTY": "", "API_TOKEN": "t0k", "PASSWORD": "pw"}
BAD = "use ${VAR}, ${VAR:-default} or ${VAR:?message}, and $${ for a literal ${"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain $5 text", Expansion("plain $5 text")),
        ("${HOST}:${EMPTY}", Expansion("h:")),
        ("${NOPE:-d}/${EMPTY:-e}/$${HOST}", Expansion("d/e/${HOST}")),
        (
            "Bearer ${API_TOKEN}",
            Expansion("Bearer t0k", secret=True, secrets=("t0k",)),
        ),
        (
            "${NOPE}",
            Expansion("", broken=True, errors=("environment variable NOPE is not set",)),
        ),
        (
            "${EMPTY:?say why}-${HOST:?}-${NOPE:?}",
            Expansion("-h-", broken=True, errors=("EMPTY: say why", "NOPE is not set")),
        ),
        (
            "${PASSWORD} ${1BAD}",
            Expansion(
                "${PASSWORD} ${1BAD}",
                broken=True,
                errors=(f"bad variable reference '${{1BAD}}': {BAD}",),
                secrets=("pw",),
            ),
        ),
        (
            "ab${OPEN",
            Expansion(
                "ab${OPEN", broken=True, errors=(f"bad variable reference '${{OPEN': {BAD}",)
            ),
        ),
    ],
)
def test_expand_gives_the_text_its_secrets_and_its_problems(text: str, expected: Expansion) -> None:
    assert expand(text, ENV) == expected
