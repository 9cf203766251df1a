"""Pure decisions, as values and functions: backoff, restart intensity and the breaker
(``supervision``), dedup, flow control, rate limits, where to resume, and redaction.

Rule: nothing here does I/O, starts a thread or reads a clock; callers pass ``now``.
"""
