"""The built-in demo: a flaky local SSE source (``source``, its faults in ``faults``), the
``streamvisor demo`` run (``run``) and its daemon variant (``daemon``). No internet needed."""
