"""The collector process: start components in dependency order, run until SIGTERM/SIGINT, drain.

Start order is extensions → exporters → pipelines (writer threads) → receivers → admin, so
nothing is accepted before it can be stored. Stop order is the reverse: listeners close, the
requests in flight finish, every queued batch is committed, DuckDB checkpoints and closes.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from typing import Any

from collector import config as config_module
from collector import pipeline as pipeline_module
from collector.admin import AdminListener
from collector.config import CollectorConfig, ConfigError
from collector.pipeline import Consumer, Pipeline, Stats, stage_specs
from collector.workers import WorkerPool, default_workers, sum_counters, tune_allocator

log = logging.getLogger("otel_tokens.collector")

DRAIN_TIMEOUT = 60.0


class _Host:
    """What one receiver sees of the collector."""

    def __init__(self, consumer: Consumer, stats: Stats, extensions: dict[str, Any]) -> None:
        self.consumer = consumer
        self.stats = stats
        self._extensions = extensions

    def extension(self, component_id: str) -> Any:
        return self._extensions[component_id]


class Collector:
    """A running collector built from a validated config (used by ``main`` and by tests)."""

    def __init__(self, cfg: CollectorConfig) -> None:
        self.config = cfg
        self.stats = Stats()
        self.extensions: dict[str, Any] = {}
        self.exporters: dict[str, Any] = {}
        self.pipelines: list[Pipeline] = []
        self.receivers: dict[str, Any] = {}
        self.admin: AdminListener | None = None
        self.pool: WorkerPool | None = None
        self._started: list[Any] = []

    def start(self) -> Collector:
        cfg = self.config
        try:
            workers = default_workers() if cfg.workers is None else cfg.workers
            if workers:
                self.pool = WorkerPool(stage_specs(cfg), workers)
                self.pool.start()
            for eid in cfg.service_extensions:
                spec = cfg.extensions[eid]
                ext = spec.module.create(spec.config)
                ext.start()
                self.extensions[eid] = ext
            self.exporters, self.pipelines = pipeline_module.build(cfg, self.extensions)
            for exp in self.exporters.values():
                exp.start()
                self._started.append(exp)
            for p in self.pipelines:
                p.start()
            for rid, spec in cfg.receivers.items():
                mine = [p for p in self.pipelines if rid in cfg.pipelines[p.name].receivers]
                receiver = spec.module.create(spec.config)
                consumer = Consumer(mine, self.stats, self.pool)
                receiver.start(_Host(consumer, self.stats, self.extensions))
                self.receivers[rid] = receiver
            if cfg.admin.endpoint:
                auth = self.extensions[cfg.admin.auth.authenticator] if cfg.admin.auth else None
                self.admin = AdminListener(cfg.admin, self, auth)
                self.admin.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = DRAIN_TIMEOUT) -> None:
        """Drain and shut down; every request acknowledged before this is committed."""
        for receiver in self.receivers.values():
            try:
                receiver.stop_accepting()
            except Exception:
                log.exception("stopping a receiver failed")
        for receiver in self.receivers.values():
            receiver.wait_idle(timeout)
        for p in self.pipelines:
            p.close(timeout)
        if self.pool is not None:
            self.pool.shutdown()
            self.pool = None
        if self.admin is not None:
            self.admin.shutdown()
            self.admin = None
        for exp in self._started:
            try:
                exp.shutdown()
            except Exception:
                log.exception("shutting down an exporter failed")
        self._started.clear()
        for ext in self.extensions.values():
            ext.shutdown()
        self.receivers.clear()

    # Addresses actually bound (port 0 in a config picks a free one).
    def _receiver_attr(self, name: str) -> tuple[str, int] | None:
        for r in self.receivers.values():
            addr = getattr(r, name, None)
            if addr is not None:
                return addr  # type: ignore[no-any-return]
        return None

    @property
    def http_address(self) -> tuple[str, int] | None:
        return self._receiver_attr("http_address")

    @property
    def grpc_address(self) -> tuple[str, int] | None:
        return self._receiver_attr("grpc_address")

    @property
    def admin_address(self) -> tuple[str, int] | None:
        return self.admin.address if self.admin is not None else None

    def processor_counters(self, pipeline: Pipeline) -> dict[str, dict[str, int]]:
        """Counters by processor id, those of the worker processes included."""
        here = {pipeline.name: pipeline.stage.counters()}
        workers = self.pool.counters() if self.pool is not None else {}
        return sum_counters([here, workers]).get(pipeline.name, {})


def _setup_logging(level: str) -> None:
    levels = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING}
    levels.update({"warning": logging.WARNING, "error": logging.ERROR})
    root = logging.getLogger("otel_tokens")
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    root.setLevel(levels.get(level, logging.INFO))


def main(config_path: str | None = None) -> int:
    """Run the collector until SIGTERM/SIGINT; returns the process exit code (team interface 5)."""
    try:
        cfg = config_module.load(config_path)
    except ConfigError as exc:
        print(f"otel-tokens collector: config error: {exc}", file=sys.stderr)
        return 2
    _setup_logging(cfg.log_level)
    tune_allocator()
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    collector = Collector(cfg)
    try:
        collector.start()
    except OSError as exc:
        print(f"otel-tokens collector: cannot start: {exc}", file=sys.stderr)
        return 1
    log.info("collector running (%s); stop with SIGTERM or Ctrl-C", cfg.source)
    addrs = {
        "http": collector.http_address,
        "grpc": collector.grpc_address,
        "admin": collector.admin_address,
    }
    # One machine-readable line so scripts (bench, tests) can find ports chosen with :0.
    print(
        "otel-tokens collector ready "
        + " ".join(
            f"{k}={h}:{p}" for k, (h, p) in ((k, v) for k, v in addrs.items() if v is not None)
        ),
        file=sys.stderr,
        flush=True,
    )
    while not stop.wait(0.5):
        pass
    log.info("draining: no new requests; committing what is queued")
    collector.stop()
    log.info("stopped cleanly")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else None))
