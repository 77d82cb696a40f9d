"""Wires receivers → processors → exporters from a validated config and runs the writer threads.

A request moves through one pipeline like this: it is decoded and the row processors run over it
(``collector.workers``: in a worker process, or in the request thread), giving one Arrow batch;
``memory_limiter`` admits it or refuses (503); ``batch`` queues it; the pipeline's single writer
thread takes everything queued, exports it to every exporter in one transaction each (group
commit), and only then wakes the request, which answers 200. A batch that fails as a whole is
retried request by request so one bad request cannot fail its neighbours.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from collector.config import CollectorConfig, PipelineSpec
from collector.processors import batch as batch_processor
from collector.processors import memory_limiter
from collector.processors.memory_limiter import MemoryLimiter
from collector.workers import Prepared, Stage, StageSpec, WorkerPool, WorkersUnavailable, prepare

log = logging.getLogger("otel_tokens.collector")

_IDLE_POLL = 0.5  # seconds the writer waits for work before giving exporters an idle tick


class Overloaded(Exception):
    """The pipeline refused the request; the client should retry after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ExportFailed(Exception):
    """The exporters could not store the request (retryable server error)."""


class Stats:
    """Counters shown on /metrics: what arrived, what was acknowledged, what was turned away."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {
            "requests": 0,
            "spans_received": 0,
            "spans_accepted": 0,
            "spans_rejected": 0,
            "spans_refused": 0,
            "spans_failed": 0,
        }
        self.responses: dict[tuple[str, int], int] = {}

    def add(self, **deltas: int) -> None:
        with self._lock:
            for k, v in deltas.items():
                self.counts[k] = self.counts.get(k, 0) + v

    def response(self, transport: str, status: int) -> None:
        with self._lock:
            key = (transport, status)
            self.responses[key] = self.responses.get(key, 0) + 1


@dataclass(eq=False)
class Ticket:
    """One admitted request on its way to the exporters; ``done`` is set after the commit.

    It carries the processed spans as one Arrow batch (``queries.store.SPANS_SCHEMA``) only: a
    row of Python dicts costs several times the memory of its Arrow form while it waits.
    """

    table: pa.Table
    nbytes: int
    done: threading.Event = field(default_factory=threading.Event)
    admitted: int = 0  # spans counted by the memory limiter (processors may change the count)
    error: BaseException | None = None
    inserted: int = 0

    @property
    def spans(self) -> int:
        return int(self.table.num_rows)


class Pipeline:
    """One ``service.pipelines.traces[/name]``: processors, a batch queue and a writer thread."""

    def __init__(
        self,
        spec: PipelineSpec,
        processors: list[tuple[str, Any]],
        exporters: list[tuple[str, Any]],
        wait_timeout: float = 60.0,
    ) -> None:
        self.name = spec.name
        self.limiter: MemoryLimiter | None = None
        self.batcher: batch_processor.Batcher | None = None
        self.row_processors: list[tuple[str, Any]] = []
        for pid, proc in processors:
            if isinstance(proc, MemoryLimiter):
                self.limiter = proc
            elif isinstance(proc, batch_processor.Batcher):
                self.batcher = proc
            else:
                self.row_processors.append((pid, proc))
        if self.batcher is None:
            # Without a configured batch processor the writer still needs a queue: group commit.
            self.batcher = batch_processor.Batcher(batch_processor.Config())
        self.processors = processors
        self.stage = Stage(self.name, self.row_processors)
        self.exporters = exporters
        self.wait_timeout = wait_timeout
        self.export_errors = 0
        self._writer = threading.Thread(target=self._run, name=f"writer-{self.name}", daemon=True)

    # --- request side ---------------------------------------------------------------------

    def over_limit(self) -> bool:
        return self.limiter is not None and self.limiter.over_limit()

    def retry_after(self) -> float:
        return self.limiter.retry_after if self.limiter is not None else 1.0

    def submit(self, table: pa.Table, nbytes: int) -> Ticket:
        """Admit and queue a processed batch; raises ``Overloaded`` when there is no room."""
        n = table.num_rows
        limiter = self.limiter
        if limiter is not None and not limiter.try_acquire(n, nbytes):
            raise Overloaded("memory_limiter: too much data in flight", limiter.retry_after)
        ticket = Ticket(table, nbytes, admitted=n)
        try:
            assert self.batcher is not None
            self.batcher.put(ticket)
        except batch_processor.Closed as exc:
            if limiter is not None:
                limiter.release(n, nbytes)
            raise Overloaded(str(exc), self.retry_after()) from None
        except BaseException:
            if limiter is not None:
                limiter.release(n, nbytes)
            raise
        return ticket

    def wait(self, ticket: Ticket) -> int:
        """Block until the ticket's rows are committed; returns how many were new."""
        if not ticket.done.wait(self.wait_timeout):
            raise Overloaded("timed out waiting for the database commit", self.retry_after())
        if ticket.error is not None:
            raise ExportFailed(str(ticket.error))
        return ticket.inserted

    # --- writer side ----------------------------------------------------------------------

    def start(self) -> None:
        self._writer.start()

    def close(self, timeout: float | None = None) -> None:
        """Stop taking requests, let the writer commit everything queued, then return."""
        assert self.batcher is not None
        self.batcher.close()
        self._writer.join(timeout)

    def _run(self) -> None:
        assert self.batcher is not None
        while True:
            batch = self.batcher.next_batch(_IDLE_POLL)
            if batch is None:
                return
            if not batch:
                for eid, exp in self.exporters:
                    try:
                        exp.on_idle()
                    except Exception:
                        log.exception("exporter %s idle work failed", eid)
                continue
            self._export(batch)

    def _export(self, batch: list[Any]) -> None:
        try:
            if len(batch) == 1:
                table = batch[0].table
            else:
                table = pa.concat_tables([t.table for t in batch])
            try:
                inserted = self._export_table(table)
                if len(batch) == 1:
                    batch[0].inserted = inserted
                else:
                    # Per-request counts are not known inside one transaction; the total is.
                    for t in batch:
                        t.inserted = t.spans
            except Exception as exc:
                if len(batch) == 1:
                    batch[0].error = exc
                    self.export_errors += 1
                    log.error("export failed: %s", exc)
                else:
                    log.warning(
                        "group commit of %d requests failed (%s); one by one", len(batch), exc
                    )
                    for t in batch:
                        try:
                            t.inserted = self._export_table(t.table)
                        except Exception as one:
                            t.error = one
                            self.export_errors += 1
                            log.error("export failed: %s", one)
        finally:
            for t in batch:
                if self.limiter is not None:
                    self.limiter.release(t.admitted, t.nbytes)
                t.done.set()

    def _export_table(self, table: pa.Table) -> int:
        inserted = 0
        for i, (_eid, exp) in enumerate(self.exporters):
            n = exp.export(table)
            if i == 0:
                inserted = n
        return inserted

    def queued_spans(self) -> int:
        assert self.batcher is not None
        return self.batcher.queued_spans


class Consumer:
    """What a receiver hands request bodies to: every pipeline the receiver belongs to."""

    def __init__(
        self, pipelines: list[Pipeline], stats: Stats, pool: WorkerPool | None = None
    ) -> None:
        self.pipelines = pipelines
        self.stats = stats
        self.pool = pool
        self._names = tuple(p.name for p in pipelines)

    def over_limit(self) -> bool:
        return any(p.over_limit() for p in self.pipelines)

    def retry_after(self) -> float:
        return max((p.retry_after() for p in self.pipelines), default=1.0)

    def prepare(self, body: bytes, fmt: str, received_at: int) -> Prepared:
        """Decode and process a body for every pipeline (raises ``decode.DecodeError``, or
        ``Overloaded`` when the worker processes cannot take it)."""
        if self.pool is None:
            return prepare([p.stage for p in self.pipelines], body, fmt, received_at)
        try:
            return self.pool.prepare(self._names, body, fmt, received_at)
        except WorkersUnavailable as exc:
            raise Overloaded(str(exc), self.retry_after()) from None

    def consume(self, prepared: Prepared, nbytes: int) -> int:
        """Store the batches in every pipeline; returns when all committed (raises otherwise)."""
        n = prepared.spans
        if not n:
            return 0
        tickets: list[tuple[Pipeline, Ticket]] = []
        try:
            for p, table in zip(self.pipelines, prepared.tables, strict=True):
                tickets.append((p, p.submit(table, nbytes)))
        except Overloaded:
            self.stats.add(spans_refused=n)
            raise
        inserted = 0
        try:
            for i, (p, t) in enumerate(tickets):
                m = p.wait(t)
                if i == 0:
                    inserted = m
        except Overloaded:
            self.stats.add(spans_refused=n)
            raise
        except ExportFailed:
            self.stats.add(spans_failed=n)
            raise
        self.stats.add(spans_accepted=n)
        return inserted


def stage_specs(cfg: CollectorConfig) -> list[StageSpec]:
    """Each pipeline's row processors as a worker process rebuilds them."""
    specs = []
    for pspec in cfg.pipelines.values():
        procs = []
        for pid in pspec.processors:
            spec = cfg.processors[pid]
            if spec.type not in (memory_limiter.TYPE, batch_processor.TYPE):  # act in the collector
                procs.append((pid, spec.module.__name__, spec.config))
        specs.append(StageSpec(pspec.name, tuple(procs)))
    return specs


def build(
    cfg: CollectorConfig, extensions: dict[str, Any]
) -> tuple[dict[str, Any], list[Pipeline]]:
    """Create every component instance and the pipelines; returns (exporters by id, pipelines)."""
    exporters = {cid: spec.module.create(spec.config) for cid, spec in cfg.exporters.items()}
    pipelines: list[Pipeline] = []
    for pspec in cfg.pipelines.values():
        # Each pipeline gets its own processor instances (a limiter or queue is per pipeline).
        procs = [
            (pid, cfg.processors[pid].module.create(cfg.processors[pid].config))
            for pid in pspec.processors
        ]
        exps = [(eid, exporters[eid]) for eid in pspec.exporters]
        pipelines.append(Pipeline(pspec, procs, exps))
    return exporters, pipelines
