"""The daemon: ``streamvisor run CONFIG`` and ``streamvisor check CONFIG``.

Wiring and lifecycle only: load the config, resume from checkpoints, start streamvisor and
the admin endpoint, write checkpoints on an interval, reload on SIGHUP, and stop in order
on SIGTERM/SIGINT (streams, hub drain, sinks flushed, final checkpoint) within the grace
period. Signal handlers only set flags; the main thread does the work.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping
from types import FrameType
from typing import TYPE_CHECKING, Any

from streamvisor.api.facade import Streamvisor
from streamvisor.checkpoint import Checkpoint, CheckpointStore, SQLiteCheckpointStore
from streamvisor.config.load import Config, ConfigErrors, load_config
from streamvisor.errors import StreamvisorError
from streamvisor.policy.redact import Redactor, redact_fields
from streamvisor.relay import start_relay
from streamvisor.states import StreamState

if TYPE_CHECKING:
    from streamvisor.cluster.node import ClusterNode

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILURE, EXIT_CONFIG, EXIT_INTERRUPTED = 0, 1, 2, 130
REPEAT_WINDOW = 0.5
"""Seconds within which a repeated stop signal is the same stop, not a second one."""


def run_check(path: str) -> int:
    """``streamvisor check``: print every problem (exit 2) or warnings and ok (exit 0)."""
    try:
        config = load_config(path)
    except ConfigErrors as exc:
        print(exc.format(), file=sys.stderr)
        return EXIT_CONFIG
    for warning in config.warnings:
        print(f"warning: {warning.format()}", file=sys.stderr)
    print(f"{path}: ok ({len(config.streams)} streams, {len(config.sinks)} sinks)")
    return EXIT_OK


def run_daemon(path: str, log_level: str = "info", log_format: str = "text") -> int:
    """``streamvisor run``: run until SIGTERM/SIGINT; return the exit code."""
    from streamvisor.daemon.logsetup import configure_logging

    try:
        config = load_config(path)
    except ConfigErrors as exc:
        print(exc.format(), file=sys.stderr)
        return EXIT_CONFIG
    redactor = Redactor(config.secrets)
    configure_logging(log_level, log_format, redactor=redactor)
    for warning in config.warnings:
        log.warning("config: %s", warning.format())
    daemon = Daemon(config, path, redactor=redactor)
    return daemon.run()


class Daemon:
    """One running configuration, its checkpoints, admin endpoint and signals."""

    def __init__(
        self,
        config: Config,
        path: str,
        *,
        redactor: Redactor | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.config = config
        self.path = path
        self._redactor = redactor or Redactor(config.secrets)
        self._environ = environ
        self._wake = threading.Event()
        self._stop_requested = False
        self._reload_requested = False
        self._stop_event = threading.Event()  # tells waiting sinks to give up
        self._seen: set[str] = set()  # streams that connected once or ended for good
        self._stopping = False
        self._store: CheckpointStore | None = None
        self._saved: dict[str, Checkpoint] = {}
        self._reloads = {"ok": 0, "failed": 0}
        self._sv: Streamvisor | None = None
        self._admin: Any = None
        self._relay: Any = None
        self._tracer: Any = None  # streamvisor.daemon.tracing.AttemptTracer when tracing is on
        self._started_at = time.time()
        self._cluster: ClusterNode | None = None  # cluster mode: leases decide the streams

    # -- control (thread-safe, signal-safe) ---------------------------------------------
    def request_stop(self) -> None:
        """Begin a graceful stop (what SIGTERM/SIGINT do)."""
        self._stop_requested = True
        self._wake.set()

    def request_reload(self) -> None:
        """Re-read the config (what SIGHUP does)."""
        self._reload_requested = True
        self._wake.set()

    # -- main loop ---------------------------------------------------------------------
    def run(self, install_signals: bool = True) -> int:
        """Start, serve until asked to stop, stop in order. Returns the exit code."""
        config = self.config
        # Signals first: a SIGHUP (default action: terminate) or SIGTERM while the checkpoints
        # load, disk buffers and files are read back, or the admin endpoint binds, is handled
        # as once running (a reload, a graceful stop), not an abrupt death.
        previous = self._install_signals() if install_signals else {}
        try:
            if config.cluster is not None:
                from streamvisor.cluster.node import ClusterNode

                self._cluster = ClusterNode(config)
                self._store = self._cluster.store
            elif config.checkpoint is not None:
                self._store = SQLiteCheckpointStore(config.checkpoint.path)
                self._saved = self._store.load()
            if config.tracing is not None:
                from streamvisor.daemon.tracing import build_tracer

                self._tracer = build_tracer(config.tracing)
            self._sv = self._build(config, self._saved)
            if config.admin is not None:
                self._admin = self._start_admin(config.admin.host, config.admin.port)
            self._relay = start_relay(config.relay, self._sv)
        except StreamvisorError as exc:
            print(f"streamvisor: {self._redactor.scrub(str(exc))}", file=sys.stderr)
            self._close_store()
            self._restore_signals(previous)
            return EXIT_FAILURE
        except BaseException:
            self._restore_signals(previous)
            raise
        try:
            self._sv.start()
            if self._cluster is not None:
                self._cluster.start(self._sv)
            log.info(
                "streamvisor running: %d streams, %d sinks (config %s)",
                len(config.streams),
                len(config.sinks),
                self.path,
            )
            interval = config.checkpoint.interval if config.checkpoint is not None else 1.0
            while True:
                self._wake.wait(interval)
                self._wake.clear()
                if self._stop_requested:
                    break
                if self._reload_requested:
                    self._reload_requested = False
                    self._reload()
                self._write_checkpoints()
        finally:
            code = self._shutdown()
            self._restore_signals(previous)
        return code

    @staticmethod
    def _restore_signals(previous: Mapping[int, Any]) -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    def _build(self, config: Config, saved: Mapping[str, Checkpoint]) -> Streamvisor:
        if self._cluster is not None:  # no streams yet: the coordinator adds what it claims
            return self._cluster.build(
                config,
                stop_event=self._stop_event,
                on_state=self._on_state,
                observer=self._tracer,
                on_sink_closed=self._on_sink_closed,
            )
        return Streamvisor.from_loaded(
            config,
            stop_event=self._stop_event,
            checkpoints=dict(saved),
            on_state=self._on_state,
            observer=self._tracer,
            on_sink_closed=self._on_sink_closed,
        )

    def _on_sink_closed(self, sink: str) -> None:
        # As a Unix filter whose reader left (``streamvisor run c.yaml | head``): stop, with
        # checkpoints covering only what every sink wrote, and exit 0.
        log.warning("sink %s: its destination is gone (reader left); stopping", sink)
        self.request_stop()

    def _on_state(self, stream: str, state: StreamState) -> None:
        if state in (StreamState.CONNECTED, StreamState.FAILED, StreamState.CLOSED):
            self._seen.add(stream)

    def _install_signals(self) -> dict[int, Any]:
        previous: dict[int, Any] = {}

        first: list[float] = []

        def on_stop(signum: int, frame: FrameType | None) -> None:
            if self._stop_requested:
                # A second signal means "stop waiting, now", unless it is the same stop
                # delivered twice at once (GNU timeout signals the child, then its group).
                if time.monotonic() - first[0] >= REPEAT_WINDOW:
                    os._exit(EXIT_INTERRUPTED)
                return
            first.append(time.monotonic())
            self.request_stop()

        def on_hup(signum: int, frame: FrameType | None) -> None:
            self.request_reload()

        for sig, handler in (
            (signal.SIGTERM, on_stop),
            (signal.SIGINT, on_stop),
            (signal.SIGHUP, on_hup),
        ):
            previous[sig] = signal.signal(sig, handler)
        return previous

    def _shutdown(self) -> int:
        self._stopping = True
        started = time.monotonic()
        log.info("stopping: streams, then hub, sinks and checkpoints")
        if self._admin is not None:
            self._admin.set_stopping()
        self._stop_event.set()
        if self._cluster is not None:
            self._cluster.freeze()  # no more claims; leases stay ours until the final save
        if self._sv is not None:
            self._sv.stop(timeout=self.config.shutdown_timeout)
            self._write_checkpoints(self._sv.final_positions)
        if self._relay is not None:
            self._relay.stop()
        if self._cluster is not None:
            self._cluster.close()  # release the leases: the others take over at once
        if self._tracer is not None:
            self._tracer.shutdown()
        self._close_store()
        if self._admin is not None:
            self._admin.stop()
        log.info("stopped in %.2fs", time.monotonic() - started)
        return EXIT_OK

    def _close_store(self) -> None:
        if self._store is not None:
            try:
                self._store.close()
            except StreamvisorError as exc:
                log.error("closing the checkpoint store failed: %s", exc)
            self._store = None

    # -- checkpoints -------------------------------------------------------------------
    def _write_checkpoints(
        self, positions: Mapping[str, tuple[str | None, tuple[tuple[str, str], ...]]] | None = None
    ) -> None:
        if self._store is None or self._sv is None:
            return
        try:
            if positions is None:
                positions = self._sv.positions()
        except Exception as exc:  # the hub is busy or gone: try again next tick
            log.debug("no checkpoint positions this time: %s", exc)
            return
        now = time.time()
        changed = {
            stream: Checkpoint(lid, recent, now)
            for stream, (lid, recent) in positions.items()
            if (old := self._saved.get(stream)) is None
            or old.last_event_id != lid
            or old.recent != recent
        }
        if not changed:
            return
        try:
            self._store.save(changed)
        except StreamvisorError as exc:
            log.error("writing checkpoints failed: %s", exc)
            return
        self._saved.update(changed)

    # -- reload ------------------------------------------------------------------------
    def _reload(self) -> None:
        try:
            new = load_config(self.path, self._environ)
        except ConfigErrors as exc:
            self._reloads["failed"] += 1
            log.error(
                "reload: config has errors; still running the previous one:\n%s", exc.format()
            )
            return
        assert self._sv is not None
        old_specs = {s.name: s for s in self.config.streams}
        new_specs = {s.name: s for s in new.streams}
        if self._cluster is not None:  # the coordinator moves streams; nothing to do below
            self._cluster.reload(old_specs, new_specs)
            old_specs = new_specs = {}
        status = self._sv.status()["streams"]
        for name in old_specs.keys() - new_specs.keys():
            log.info("reload: stream %s removed", name)
            self._sv.remove_stream(name)
            self._seen.discard(name)
        for name, spec in new_specs.items():
            old = old_specs.get(name)
            if old is not None and old.settings_key() == spec.settings_key():
                continue
            last_id = status.get(name, {}).get("last_event_id")
            if old is not None:
                log.info("reload: stream %s changed; restarting it from id %s", name, last_id)
                self._sv.remove_stream(name)
                self._seen.discard(name)
            else:
                log.info("reload: stream %s added", name)
                saved = self._saved.get(name)
                last_id = saved.last_event_id if saved is not None else None
            self._sv.add_stream(spec, last_event_id=last_id)
        if [s for s in new.sinks] != [s for s in self.config.sinks]:
            log.warning("reload: sink changes take effect at the next restart")
        kept = [key for key in _RESTART_ONLY if getattr(new, key) != getattr(self.config, key)]
        if kept:
            log.warning("reload: %s changes take effect at the next restart", ", ".join(kept))
        for secret in new.secrets:
            self._redactor.add(secret)
        self.config = _merge_streams(self.config, new)
        self._reloads["ok"] += 1
        log.info("reload: done (%d streams)", len(new.streams))

    # -- admin -------------------------------------------------------------------------
    def _start_admin(self, host: str, port: int) -> Any:
        from streamvisor.daemon.admin import AdminServer
        from streamvisor.daemon.metrics import build_registry
        from streamvisor.views.ringlog import RingLogHandler

        registry = build_registry(self.snapshot)
        if self._cluster is not None:
            from streamvisor.cluster.metrics import ClusterCollector

            registry.register(ClusterCollector(self._cluster.status))
        admin = AdminServer(
            host,
            port,
            snapshot=self.snapshot,
            ready=self.ready,
            registry=registry,
            commands=self._sv,
            token=self.config.admin.token if self.config.admin is not None else None,
            log_ring=RingLogHandler(redactor=self._redactor),
        )
        bound = admin.start()
        log.info("admin endpoint on http://%s:%d (/health /ready /streams /metrics)", *bound)
        return admin

    @property
    def admin_address(self) -> tuple[str, int] | None:
        """The admin endpoint's bound ``(host, port)`` once it is serving, else None."""
        return self._admin.address if self._admin is not None else None

    def ready(self) -> bool:
        """True once every enabled stream has connected once or ended for good."""
        if self._stopping or self._sv is None:
            return False
        if self._cluster is not None:
            return self._cluster.ready(self._seen)
        return all(s.name in self._seen for s in self.config.streams if s.enabled)

    def snapshot(self) -> dict[str, Any]:
        """Status for /streams and /metrics, with checkpoint positions."""
        if self._sv is None:
            return {"streams": {}, "subscribers": {}}
        snap = self._sv.status().to_dict()
        for name, info in snap["streams"].items():
            saved = self._saved.get(name)
            info["checkpoint_id"] = saved.last_event_id if saved is not None else None
            info["checkpoint_at"] = saved.updated_at if saved is not None else None
        snap["reloads"] = dict(self._reloads)
        snap["started_at"] = self._started_at
        if self._cluster is not None:
            self._cluster.annotate(snap)
        # The last line of defence for /streams and /metrics: config secrets in any field.
        result: dict[str, Any] = redact_fields(snap, self._redactor.scrub)
        return result


# Sections a reload does not apply (sinks are reported on their own line).
_RESTART_ONLY = ("admin", "checkpoint", "cluster", "relay", "tracing", "shutdown_timeout")


def _merge_streams(old: Config, new: Config) -> Config:
    """The running config after a reload: new streams; sinks, admin, checkpoint kept."""
    import dataclasses

    return dataclasses.replace(old, streams=new.streams, secrets=old.secrets | new.secrets)
