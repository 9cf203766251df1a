"""Waiting with a deadline: the one way tests wait for something another thread does."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, step: float = 0.005) -> bool:
    """True as soon as ``predicate()`` holds; False once ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()  # never set: wait() is an interruptible, bounded pause
    while True:
        if predicate():
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        pause.wait(min(step, left))
