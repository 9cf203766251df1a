"""The import path for section readers outside this package (``relay/settings.py``,
``cluster/settings.py``): the located ``Node``, the ``Checker`` that reads and reports, the
``INVALID`` marker, and the walker's entry points. Nothing is defined here.

Pure: no I/O.
"""

from __future__ import annotations

from streamvisor.config.checker import Checker, Field
from streamvisor.config.node import INVALID, Invalid, Node, describe
from streamvisor.config.walker import merge_nodes, read_document

__all__ = [
    "INVALID",
    "Checker",
    "Field",
    "Invalid",
    "Node",
    "describe",
    "merge_nodes",
    "read_document",
]
