"""The upstream layer: what one HTTP SSE request needs beyond ``requests``.

Pure helpers here (MIME types, header values); the request itself is
``streamvisor.connection`` for now.
"""
