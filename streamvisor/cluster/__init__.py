"""Cluster mode: several daemons share their streams through Redis.

Pure parts: ``balance`` (who claims what), ``lease`` (lease arithmetic), ``settings`` (the
``cluster:`` config values and readers). I/O: ``scripts`` (the Lua scripts and keys),
``coordinator`` (the lease thread), ``checkpoint_store`` (fenced checkpoints), ``node``
(wiring into the daemon), ``status`` (``streamvisor cluster status``). Importing this package
does not import ``redis``.
"""
