"""The daemon (``streamvisor run`` and ``check``): wiring, checkpoints, signals, reload, the
admin endpoint, Prometheus metrics, logging and tracing."""

from streamvisor.daemon.run import Daemon, run_check, run_daemon

__all__ = ["Daemon", "run_check", "run_daemon"]
