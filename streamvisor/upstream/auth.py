"""``GuardedAuth``: a stream's auth hook, with its failures told apart from ours.

requests calls an auth hook while it prepares the request, so a hook's exception looks like
a failure to build the request. It is not: a hook that fetches a token can fail for a
moment (the token server answered an error page), and that is worth a retry, while a bug in
the hook is a crash. The guard wraps whatever the hook raises in ``AuthHookError`` (with the
original as ``__cause__``) so the connection can decide.
"""

from __future__ import annotations

from typing import Any

import requests
import requests.auth

__all__ = ["AuthHookError", "GuardedAuth"]


class AuthHookError(Exception):
    """The auth hook raised; ``__cause__`` is what it raised."""


class GuardedAuth(requests.auth.AuthBase):
    """Calls ``auth(request)``; anything it raises comes out as ``AuthHookError``.

    Args:
        auth: a ``requests.auth.AuthBase`` or a callable taking and returning the
            ``PreparedRequest``.
    """

    def __init__(self, auth: Any) -> None:
        self._auth = auth

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        try:
            signed: requests.PreparedRequest = self._auth(request)
        except Exception as exc:
            raise AuthHookError() from exc
        return signed
