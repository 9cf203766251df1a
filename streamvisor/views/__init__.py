"""Operators' views: the status page and its live feed, stream commands, ``streamvisor top``.

Import-light on purpose: the admin endpoint imports ``views.routes`` (stdlib only); the
terminal view (``views.top``, needs the ``top`` extra: rich) is imported only by its command.
"""
