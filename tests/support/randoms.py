"""Random sources whose draws a test knows in advance."""

from __future__ import annotations

import random


class FixedRandom(random.Random):
    """A ``random.Random`` whose ``random()`` always returns ``value``: jitter becomes a known
    number (0.0 takes none off, 0.999999 nearly all)."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value
