"""Test doubles for the cluster package: a ``Fence`` backed by a dict."""

from __future__ import annotations

from streamvisor.cluster.lease import WriteVerdict


class DictFence:
    """A ``Fence`` whose tokens a test sets; records the streams reported as fenced."""

    def __init__(self, member: str = "test#1-aa") -> None:
        self.member = member
        self.tokens: dict[str, int] = {}
        self.fenced_streams: list[str] = []

    def token(self, stream: str) -> int | None:
        return self.tokens.get(stream)

    def fenced(self, stream: str) -> None:
        self.fenced_streams.append(stream)
        self.tokens.pop(stream, None)

    def wait_writable(self, stream: str, timeout: float) -> WriteVerdict:
        return WriteVerdict.WRITE if stream in self.tokens else WriteVerdict.DROP
