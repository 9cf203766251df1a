"""streamvisor's tests, laid out like the code.

* ``tests/<layer>/test_<module>*.py``: the tests of ``streamvisor/<layer>/<module>.py`` (unit
  tests, actor-level tests with real pykka actors and fakes, and a module driven alone against
  a real local server or redis-server); ``tests/test_<module>.py`` for the modules at the root.
* ``tests/integration/``: several layers together, end to end against real servers (the
  daemon and the CLI as subprocesses, the Python API on loopback sources).
* ``tests/support/``: what tests share (servers, receivers, builders, fakes); no tests.
  Import helpers from there, fixtures come from ``tests/conftest.py``.
"""
