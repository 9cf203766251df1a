"""``${VAR}`` interpolation of config strings: ``${VAR}``, ``${VAR:-default}``,
``${VAR:?message}``, and ``$${`` for a literal ``${`` (the forms of POSIX shell parameter
expansion and Docker Compose that configs already use).

Pure: the environment is a parameter; nothing is read from ``os.environ`` here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from streamvisor.config.node import quote
from streamvisor.policy.redact import is_secret_name

__all__ = ["Expansion", "expand"]

_VAR = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:-|:\?)(.*))?", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Expansion:
    """What one string became.

    Attributes:
        text: the expanded text (the original text when a reference is malformed).
        secret: a secret-named variable's value went into ``text``.
        broken: a problem was found; ``text`` must not be used.
        errors: the problems, as messages (no location).
        secrets: values of secret-named variables met, to be masked wherever they appear.
    """

    text: str
    secret: bool = False
    broken: bool = False
    errors: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()


def expand(text: str, environ: Mapping[str, str]) -> Expansion:
    """Expand the variable references in ``text``.

    ``${VAR:-default}`` uses the default when VAR is unset or empty; ``${VAR:?message}``
    is an error with that message when VAR is unset or empty; a plain ``${VAR}`` must be set
    (it may be empty). A ``$`` not followed by ``{`` stays as it is.
    """
    if "$" not in text:
        return Expansion(text)
    out: list[str] = []
    errors: list[str] = []
    secrets: list[str] = []
    secret = broken = False
    i = 0
    while True:
        j = text.find("$", i)
        if j < 0:
            out.append(text[i:])
            break
        out.append(text[i:j])
        if text.startswith("$${", j):
            out.append("${")
            i = j + 3
            continue
        if not text.startswith("${", j):
            out.append("$")
            i = j + 1
            continue
        end = text.find("}", j + 2)
        match = _VAR.fullmatch(text, j + 2, end) if end >= 0 else None
        if match is None:
            shown = text[j : end + 1] if end >= 0 else text[j:]
            errors.append(
                f"bad variable reference {quote(shown)}: use ${{VAR}}, ${{VAR:-default}} "
                "or ${VAR:?message}, and $${ for a literal ${"
            )
            return Expansion(text, broken=True, errors=tuple(errors), secrets=tuple(secrets))
        name, op, arg = match.groups()
        value = environ.get(name)
        if op == ":-" and not value:
            value = arg
        elif op == ":?" and not value:
            errors.append(f"{name}: {arg}" if arg else f"{name} is not set")
            value, broken = "", True
        elif value is None:
            errors.append(f"environment variable {name} is not set")
            value, broken = "", True
        if is_secret_name(name) and value:
            secrets.append(value)
            secret = True
        out.append(value)
        i = end + 1
    return Expansion("".join(out), secret, broken, tuple(errors), tuple(secrets))
