"""Sink buffers: bounded queues between the streams that feed a sink and the sink's writer.

``MemoryBuffer`` (the default) and ``DiskBuffer`` (SQLite, survives ``kill -9``) share the
``SinkBuffer`` interface. Streams ``put`` one chunk per read; the sink actor ``take``s whole
chunks, writes them and ``ack``s them. A chunk is acknowledged only after its events were
written, so a checkpoint never passes an unwritten event.
"""

from streamvisor.buffers.base import Chunk, SinkBuffer, event_bytes
from streamvisor.buffers.disk import DiskBuffer
from streamvisor.buffers.memory import MemoryBuffer

__all__ = ["Chunk", "DiskBuffer", "MemoryBuffer", "SinkBuffer", "event_bytes"]
