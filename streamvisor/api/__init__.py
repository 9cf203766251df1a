"""The Python API: ``Streamvisor`` (streams, subscribers, sinks, status, commands) and the
plain iterators ``connect()`` / ``aconnect()``."""

from streamvisor.api.aiterator import AsyncEventStream, aconnect
from streamvisor.api.facade import Streamvisor
from streamvisor.api.iterator import EventStream, StreamHandle, connect

__all__ = ["AsyncEventStream", "EventStream", "StreamHandle", "Streamvisor", "aconnect", "connect"]
