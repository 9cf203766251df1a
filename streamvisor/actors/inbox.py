"""A lighter, faster inbox for streamvisor's own actors.

pykka gives every ThreadingActor a ``queue.Queue`` (a lock and three conditions). Our
actors only need put/get/empty/qsize, which ``queue.SimpleQueue`` provides in C: about
a third of the memory per actor and several times the ``tell`` rate. This uses pykka's
``_create_actor_inbox`` hook; ``tests/actors`` pins that it still works. User actors keep
pykka's default.
"""

from __future__ import annotations

import queue
from typing import Any


class SimpleInbox:
    """Mixin (put it before ``pykka.ThreadingActor``) giving the actor a SimpleQueue inbox."""

    @staticmethod
    def _create_actor_inbox() -> Any:
        return queue.SimpleQueue()
