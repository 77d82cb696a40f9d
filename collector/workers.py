"""Turns OTLP request bodies into Arrow batches: decode, each pipeline's row processors, Arrow.

This is the collector's CPU-heavy Python work, about 25 µs per span. Run in the request threads
it shares one interpreter lock with the listeners and the DuckDB writer, which caps ingest at
one core. With ``service.workers: N`` (default: one per core but one) it runs in
N worker processes instead: a request thread sends the body to a worker and gets back one Arrow
IPC stream per pipeline, which it reads without copying. Workers are forked from a fork server
that has already imported everything (so they start in milliseconds and share its memory pages),
never from the collector itself, whose DuckDB and gRPC threads must not be forked.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import multiprocessing
import os
import select
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from importlib import import_module
from typing import Any

import pyarrow as pa

from collector.receivers import decode
from collector.rows import rows_to_table

log = logging.getLogger("otel_tokens.collector")

PROTOBUF = "protobuf"
JSON = "json"


class WorkersUnavailable(Exception):
    """A worker process died or did not answer in time; the request may be retried."""


class Stage:
    """One pipeline's row processors (``gen_ai_normalize``, ``gen_ai_cost``) and rows → Arrow."""

    def __init__(self, pipeline: str, processors: Sequence[tuple[str, Any]]) -> None:
        self.pipeline = pipeline
        self.processors = list(processors)
        self.errors = 0
        self._lock = threading.Lock()

    def run(self, rows: list[dict[str, Any]]) -> pa.Table:
        for pid, proc in self.processors:
            try:
                rows = proc.process(rows)
            except Exception:
                # A processor bug must not lose data: store the rows as they are and count it.
                with self._lock:
                    self.errors += 1
                log.exception("processor %s failed; storing its input unchanged", pid)
        return rows_to_table(rows)

    def counters(self) -> dict[str, dict[str, int]]:
        """Counters by processor id; ``pipeline`` holds this stage's own."""
        out = {pid: dict(proc.counters()) for pid, proc in self.processors}
        out["pipeline"] = {"processor_errors": self.errors}
        return out


@dataclass(frozen=True)
class StageSpec:
    """What a worker process needs to build a ``Stage``: picklable, unlike the components."""

    pipeline: str
    processors: tuple[tuple[str, str, Any], ...]  # (processor id, module name, its Config)

    def build(self) -> Stage:
        return Stage(
            self.pipeline,
            [(pid, import_module(mod).create(conf)) for pid, mod, conf in self.processors],
        )


@dataclass
class Prepared:
    """A request ready for the pipelines: one Arrow batch per pipeline, plus what was rejected."""

    tables: list[pa.Table]
    spans: int  # spans accepted by the decoder (each table has this many rows)
    rejected: int = 0
    message: str = ""  # why spans were rejected, for partial_success


def prepare(stages: Sequence[Stage], body: bytes, fmt: str, received_at: int) -> Prepared:
    """Decode the body and run every pipeline's stage over it (raises ``decode.DecodeError``)."""
    if fmt == JSON:
        decoded = decode.decode_json(body, received_at)
    else:
        decoded = decode.decode_protobuf(body, received_at)
    rows = decoded.rows
    tables = []
    for i, stage in enumerate(stages):
        # Processors change rows in place; every pipeline but the last gets its own copies.
        own = rows if i == len(stages) - 1 else [dict(r) for r in rows]
        tables.append(stage.run(own) if rows else rows_to_table([]))
    return Prepared(tables, len(rows), decoded.rejected, decoded.error_message)


# --- the worker processes ----------------------------------------------------------------------

_stages: dict[str, Stage] = {}


def _init_worker(specs: Sequence[StageSpec], collector_pid: int) -> None:
    _stages.clear()
    for spec in specs:
        _stages[spec.pipeline] = spec.build()
    tune_gc()
    tune_allocator()
    threading.Thread(target=_exit_with, args=(collector_pid,), daemon=True).start()


#: Imported once by the fork server, so that every worker shares their pages instead of loading
#: its own copy: the processors, and genai-prices with its price data (~25 MB per process).
FORKSERVER_PRELOAD = (
    "collector.workers",
    "collector.processors.normalize",
    "collector.processors.cost",
    "genai_prices.data",
)

#: The young generation's collection threshold in a worker (Python's default is 700).
GC_YOUNG_THRESHOLD = 10_000


def tune_gc() -> None:
    """Make the cyclic garbage collector cheap for a worker's request loop.

    A request allocates thousands of dicts (a row and its attributes per span) that all live
    until the Arrow batch is built and contain no cycles. With the default threshold they pass
    through every generation, each pass traversing them again, and every full collection also
    traverses all that the imports left behind. Freezing what exists after start-up takes the
    latter out of every collection; a higher young threshold means fewer passes (callgrind over
    bench/prepare.py's path: -2% instructions per request). Cycles are still collected.
    """
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


#: glibc ``mallopt`` parameters (malloc.h).
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


def tune_allocator() -> None:
    """Give freed memory back to the system promptly, in this process.

    The collector frees large buffers all the time (a bulk load's 122,880 spans, each request's
    Arrow batch and body), and the allocators kept their memory for reuse, so resident memory
    stayed near the high-water mark of every size ever held:

    - Arrow buffers are allocated with the C library's malloc instead of pyarrow's default,
      mimalloc: ``bench/ingest.py``'s process tree at 347-353 MB PSS instead of 388-391 (runs
      interleaved, no slower: 56.8k and 61.0k spans/s against 50.8k and 56.4k), under
      ``--overload`` ~385 MB instead of 446.
    - glibc's malloc then serves blocks of 1 MiB and more straight from mmap, returned on free
      (its default threshold rises with every large block freed, up to 32 MiB, after which such
      blocks stay in its heaps), and keeps two arenas instead of eight per core (each thread
      otherwise fills and keeps its own): under ``--overload`` 378-382 MB PSS instead of
      399-419 (3 runs each, interleaved), no slower.
    """
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc: its defaults
        return
    mallopt(_M_MMAP_THRESHOLD, 1 << 20)
    mallopt(_M_ARENA_MAX, 2)


def _exit_with(pid: int) -> None:
    """End this worker when the collector ends, however it ends (a SIGKILL included): the
    worker's parent is the fork server, and its task pipe never reports the collector gone."""
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        fd = -1
    if fd >= 0:
        select.select([fd], [], [])  # readable once the process has exited
    else:
        while True:
            time.sleep(1.0)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            except PermissionError:
                pass
    os._exit(0)


def _ready() -> int:
    return os.getpid()


def ipc_bytes(table: pa.Table) -> bytes:
    """A worker's table as the Arrow IPC stream it sends back (read without copying)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _prepare_in_worker(
    pipelines: Sequence[str], body: bytes, fmt: str, received_at: int
) -> tuple[list[bytes], int, int, str, int, dict[str, dict[str, dict[str, int]]]]:
    prepared = prepare([_stages[name] for name in pipelines], body, fmt, received_at)
    streams = [ipc_bytes(table) for table in prepared.tables]
    counters = {name: stage.counters() for name, stage in _stages.items()}
    return streams, prepared.spans, prepared.rejected, prepared.message, os.getpid(), counters


#: Requests each worker may have queued or in hand. Past that a request waits up to
#: ``QUEUE_WAIT`` seconds for room, then is refused with 503: under overload, bodies must not pile
#: up in front of the workers, where the memory limiter (which counts decoded spans) cannot see
#: them.
REQUESTS_PER_WORKER = 4
QUEUE_WAIT = 1.0
RETRY_START = 5.0  # seconds between attempts to start workers after a failed restart


class WorkerPool:
    """``workers`` processes that run ``prepare``; restarted when one of them dies."""

    def __init__(self, specs: Sequence[StageSpec], workers: int, timeout: float = 60.0) -> None:
        self.specs = list(specs)
        self.workers = workers
        self.timeout = timeout
        self._room = threading.BoundedSemaphore(workers * REQUESTS_PER_WORKER)
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None
        # The latest counters each worker reported: {worker pid: {pipeline: {processor: ...}}};
        # those of workers that were replaced are kept in ``_retired`` so totals never drop.
        self._counters: dict[int, dict[str, dict[str, dict[str, int]]]] = {}
        self._retired: dict[str, dict[str, dict[str, int]]] = {}
        self.restarts = 0
        self._closed = False
        self._failed_at = 0.0

    def start(self) -> None:
        self._executor = self._new_executor()

    def _new_executor(self) -> ProcessPoolExecutor:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(list(FORKSERVER_PRELOAD))
        executor = ProcessPoolExecutor(
            self.workers,
            mp_context=ctx,
            initializer=_init_worker,
            initargs=(self.specs, os.getpid()),
        )
        # Start every worker now, before the listeners take requests, and fail here if they
        # cannot start rather than on the first export.
        for future in [executor.submit(_ready) for _ in range(self.workers)]:
            future.result(timeout=self.timeout)
        return executor

    def prepare(
        self, pipelines: Sequence[str], body: bytes, fmt: str, received_at: int
    ) -> Prepared:
        executor = self._executor
        if executor is None:
            # A restart failed (say, out of memory): try again, at most every RETRY_START s.
            if self._closed or time.monotonic() - self._failed_at < RETRY_START:
                raise WorkersUnavailable("no worker processes are running")
            self._restart(None)
            executor = self._executor
            if executor is None:
                raise WorkersUnavailable("no worker processes are running")
        if not self._room.acquire(timeout=QUEUE_WAIT):
            raise WorkersUnavailable("all worker processes are busy")
        try:
            future = executor.submit(_prepare_in_worker, tuple(pipelines), body, fmt, received_at)
            streams, spans, rejected, message, pid, counters = future.result(self.timeout)
        except (BrokenProcessPool, TimeoutError) as exc:
            self._restart(executor)
            raise WorkersUnavailable(f"a worker process failed ({type(exc).__name__})") from None
        except RuntimeError as exc:  # submit after shutdown
            raise WorkersUnavailable(str(exc)) from None
        finally:
            self._room.release()
        self._counters[pid] = counters
        tables = [pa.ipc.open_stream(s).read_all() for s in streams]
        return Prepared(tables, spans, rejected, message)

    def _restart(self, broken: ProcessPoolExecutor | None) -> None:
        with self._lock:
            if self._executor is not broken or self._closed:
                return  # another request thread restarted it already
            log.error("worker processes are gone; starting new ones")
            if broken is not None:
                broken.shutdown(wait=False, cancel_futures=True)
            self._retired = sum_counters([self._retired, *self._counters.values()])
            self._counters.clear()
            self.restarts += 1
            try:
                self._executor = self._new_executor()
            except Exception:
                log.exception("could not restart the worker processes")
                self._executor = None
                self._failed_at = time.monotonic()

    def counters(self) -> dict[str, dict[str, dict[str, int]]]:
        """Processor counters summed over the workers: {pipeline: {processor id: {name: n}}}."""
        return sum_counters([self._retired, *list(self._counters.values())])

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)


def sum_counters(
    reports: Sequence[dict[str, dict[str, dict[str, int]]]],
) -> dict[str, dict[str, dict[str, int]]]:
    out: dict[str, dict[str, dict[str, int]]] = {}
    for report in reports:
        for pipeline, by_processor in report.items():
            for pid, values in by_processor.items():
                into = out.setdefault(pipeline, {}).setdefault(pid, {})
                for name, value in values.items():
                    into[name] = into.get(name, 0) + value
    return out


def default_workers() -> int:
    """One worker per core but one: the collector process itself keeps about a core busy (DuckDB
    and the listeners). None on a single core, where the request threads do the work."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(0, (cores or 1) - 1)
