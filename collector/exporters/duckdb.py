"""Exporter ``duckdb``: span batches → the journal (durable, acknowledged) → bulk loads into DuckDB.

The pipeline's single writer thread calls ``export``. With the journal on (the default) the batch
is appended to the journal beside the database (``queries.journal``: Arrow IPC files, fsynced)
and ``export`` returns: that is the durable commit the receiver acknowledges. A loader thread
then moves the journal into the spans table in bulk, one idempotent ``append_spans``
transaction per ``bulk_load_spans`` spans (half a DuckDB row group: the fixed statements of a
commit and the checkpoint work are paid once per load, not once per small group commit), or
after ``bulk_load_interval`` for whatever is there. Loading runs in its own thread, so journal
appends (and acknowledgements) go on while DuckDB works. A query through ``cursor()`` (the
admin API, the CLI against a running collector) and a ``/metrics`` scrape (``counters()``) load
first, so they see every acknowledged span. A load that fails keeps its segments and is
retried; at start, leftover segments (a crash) are loaded before anything else.

With ``journal: false`` every batch is its own DuckDB transaction, committed before ``export``
returns (the DuckDB write-ahead log holds it).

Either way, automatic checkpoints, which would stall a write while the WAL is merged into the
file, are pushed out to ``checkpoint_wal_size``; the exporter checkpoints instead when ingest is
idle.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from queries import journal, store
from queries.journal import BULK_LOAD_SPANS

TYPE = "duckdb"

log = logging.getLogger("otel_tokens.collector")

_TOKEN_KINDS = ("input", "output", "cache_read", "cache_creation", "reasoning")
_LOADER_TICK = 0.25  # seconds between the loader's looks at the clock when nothing wakes it
#: Unloaded spans past which ``export`` refuses (503) while loads keep failing: the journal
#: is durable, but its size is bounded so that a stuck database cannot fill the disk unseen.
_REFUSE_AT_LOADS = 16
#: The most spans a load stores in one transaction smaller than a row group. Such a transaction
#: goes through DuckDB's WAL, whose rows DuckDB keeps in memory, not evictable, until a
#: checkpoint: at 10 M spans stored one of 61,440 spans ran out of the 64MB memory_limit, one
#: of 30,720 did not. So a load's rest is stored in parts of this size, each checkpointed.
_WAL_LOAD_SPANS = 30_720


@dataclass
class Config:
    path: str = store.DEFAULT_DB_PATH
    # DuckDB checkpoint_threshold while ingesting. Until a checkpoint, committed rows are held in
    # memory as well as in the WAL (~0.5 KB per span), so this bounds the collector's memory too.
    checkpoint_wal_size: int = 64 * 2**20
    idle_checkpoint: float = 2.0  # seconds without a batch before the writer checkpoints; 0 = never
    # DuckDB worker threads; 0 = DuckDB's default (all cores). One: a bulk load from the journal
    # (many Arrow chunks) is inserted by every thread, each writing row groups of its own, which
    # costs more CPU per span in all (bench/append.py) and, at 10 M spans, more than the 64MB
    # memory_limit (the loads failed). Admin queries run single-threaded too: the trace lookup
    # by correlation id took the same ~55 ms at 10 M spans while the collector is busy.
    threads: int = 1
    # DuckDB memory_limit: without one DuckDB keeps freed buffers up to 80% of RAM, and the
    # collector's RSS only grows. Queries through the admin API spill to disk beyond it. DuckDB
    # keeps the blocks a bulk load wrote cached up to this limit: at 128MB the collector's RSS
    # passed memory_limiter's 300 MiB in bench/ingest.py (503s); at 64MB it stayed ~270 MB.
    memory_limit: str = "64MB"  # "" = DuckDB's default
    # Acknowledge batches once they are in the journal (<path>.journal/) and load them into
    # DuckDB in bulk; false = one DuckDB transaction per batch before acknowledging.
    journal: bool = True
    bulk_load_spans: int = BULK_LOAD_SPANS  # load once this many spans are journaled
    bulk_load_interval: float = 5.0  # ... or once the oldest journaled batch is this old

    def validate(self) -> None:
        if not self.path:
            raise ValueError("path: must not be empty")
        if self.checkpoint_wal_size < 2**20:
            raise ValueError("checkpoint_wal_size: must be at least 1MiB")
        if self.idle_checkpoint < 0:
            raise ValueError("idle_checkpoint: must be >= 0")
        if self.threads < 0:
            raise ValueError("threads: must be >= 0")
        if self.bulk_load_spans < 1:
            raise ValueError("bulk_load_spans: must be at least 1")
        if not 0 < self.bulk_load_interval <= 3600:
            raise ValueError("bulk_load_interval: must be more than 0s and at most 1h")


def create_default_config() -> Config:
    return Config()


# --- the exporter -----------------------------------------------------------------------------


class DuckDBExporter:
    """Owns the collector's one DuckDB connection and its journal; all writes go through
    ``export``."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.connection: duckdb.DuckDBPyConnection | None = None
        self.journal: journal.Journal | None = None
        # _lock: the journal's open segment and the unloaded-span bookkeeping (held briefly);
        # _db_lock: the DuckDB connection's writes (a load, a checkpoint; held long).
        self._lock = threading.Lock()
        self._db_lock = threading.Lock()
        self._last_write = time.monotonic()
        self._dirty = False
        self._unloaded = 0  # spans journaled and not loaded yet
        self._skip = 0  # spans at the start of the oldest segment loaded already
        self._oldest: float | None = None  # when the oldest of them was journaled
        self._retry_at = 0.0  # after a failed load: not before this
        self._load_wanted = threading.Event()
        self._stopping = threading.Event()
        self._loader: threading.Thread | None = None
        self._stored = 0
        self._duplicates = 0
        self._batches = 0
        self._loads = 0
        self._failed_loads = 0
        self._load_seconds = 0.0
        self._checkpoints = 0
        self._checkpoint_seconds = 0.0
        self.usage: Counter[tuple[str, str, str, str]] = Counter()
        self.calls: Counter[tuple[str, str, str]] = Counter()
        self.cost: dict[tuple[str, str, str], float] = {}

    def start(self) -> None:
        path = Path(self.config.path)
        if path.parent and not path.parent.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
        # Leftover journal segments are loaded below, by this exporter, so /metrics counts them.
        con = store.connect(path, recover_journal=False)
        try:
            con.execute(f"SET checkpoint_threshold = '{int(self.config.checkpoint_wal_size)}B'")
            if self.config.threads:
                con.execute(f"SET threads = {int(self.config.threads)}")
            if self.config.memory_limit:
                con.execute("SET memory_limit = ?", [self.config.memory_limit])
            con.execute("SET preserve_insertion_order = false")
            # The admin query API runs on cursors of this connection: no file access, and no
            # way for a query to switch that back on.
            con.execute("SET enable_external_access = false")
            con.execute("SET lock_configuration = true")
            self.connection = con
            if self.config.journal:
                self.journal = journal.Journal(journal.directory_for(path))
                # Whatever a stopped collector left is loaded first (if that fails, the
                # loader retries it like any failed load).
                self._unloaded = journal.spans_in(self.journal.seal())
                self._oldest = time.monotonic() if self._unloaded else None
                try:
                    self.load()
                except Exception:
                    pass  # logged by load()
                self._loader = threading.Thread(
                    target=self._run_loader, name="duckdb-loader", daemon=True
                )
                self._loader.start()
        except BaseException:
            if self.journal is not None:
                self.journal.close()
                self.journal = None
            self.connection = None
            con.close()
            raise

    def export(self, table: pa.Table) -> int:
        """Commit the batch durably; returns how many spans were new (with the journal, how
        many were journaled: which of them are new is known at the load)."""
        if self.journal is None:
            with self._db_lock:
                if self.connection is None:
                    raise RuntimeError("duckdb exporter is not running")
                inserted = self._store(table)
                self._dirty = True
                self._last_write = time.monotonic()
            self._batches += 1
            return inserted
        table = journal.as_spans(table)
        with self._lock:
            if self.journal is None:
                raise RuntimeError("duckdb exporter is not running")
            if self._unloaded >= _REFUSE_AT_LOADS * self.config.bulk_load_spans:
                raise RuntimeError(
                    f"duckdb: {self._unloaded} journaled spans are waiting for a failing load"
                )
            self.journal.append(table)
            self._unloaded += table.num_rows
            if self._oldest is None:
                self._oldest = time.monotonic()
            due = self._unloaded >= self.config.bulk_load_spans
        self._batches += 1
        if due:
            self._load_wanted.set()
        return table.num_rows

    # --- bulk loads -------------------------------------------------------------------------

    def load(self, whole_pieces: bool = False) -> None:
        """Store every journaled span in DuckDB now (raises if that fails; the journal keeps
        them and a later load retries); with ``whole_pieces``, only pieces of exactly
        ``bulk_load_spans`` (the loader's loads: see ``journal.BULK_LOAD_SPANS``), the rest
        waits for the next load."""
        with self._db_lock:
            with self._lock:
                if self.journal is None or self.connection is None or not self._unloaded:
                    return
                sealed = self.journal.seal()
                loading = self._unloaded
            t0 = time.perf_counter()
            try:
                loaded = journal.load_segments(
                    sealed,
                    self._store_in_transactions,
                    self.config.bulk_load_spans,
                    skip=self._skip,
                    whole_pieces=whole_pieces,
                )
            except Exception as exc:
                # Which spans of the oldest segment left are stored is not known: load them
                # again (harmless, appends are idempotent).
                self._skip = 0
                self._failed_loads += 1
                self._retry_at = time.monotonic() + self.config.bulk_load_interval
                log.error(
                    "duckdb: loading %d journaled spans failed, kept for a retry: %s",
                    loading,
                    str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                )
                raise
            finally:
                self._load_seconds += time.perf_counter() - t0
            self._skip = loaded.skip
            self._loads += 1
            self._dirty = True
            self._last_write = time.monotonic()
            with self._lock:
                # Spans journaled while this load ran, and those it left, count for the next.
                self._unloaded = max(0, self._unloaded - loaded.stored)
                self._oldest = time.monotonic() if self._unloaded else None

    def _load_due(self) -> str | None:
        """Which load is due: "size" (whole pieces of ``bulk_load_spans``), "age" (everything,
        the oldest span waited ``bulk_load_interval``), or None."""
        with self._lock:
            if not self._unloaded or time.monotonic() < self._retry_at:
                return None
            if self._unloaded >= self.config.bulk_load_spans:
                return "size"
            if (
                self._oldest is not None
                and time.monotonic() - self._oldest >= self.config.bulk_load_interval
            ):
                return "age"
            return None

    def _run_loader(self) -> None:
        """The loader thread: loads when due, checkpoints when ingest is idle, until stopped."""
        while not self._stopping.is_set():
            self._load_wanted.wait(_LOADER_TICK)
            self._load_wanted.clear()
            if self._stopping.is_set():
                return
            due = self._load_due()
            if due:
                try:
                    self.load(whole_pieces=due == "size")
                except Exception:
                    pass  # logged by load(); retried at the next tick after _retry_at
                continue
            try:
                self._checkpoint_if_idle()
            except Exception:
                log.exception("duckdb: idle checkpoint failed")

    def _store_in_transactions(self, table: pa.Table) -> None:
        """Store a piece of the journal: a row group or more in one transaction (written
        straight to the file), less in checkpointed parts (see ``_WAL_LOAD_SPANS``)."""
        if table.num_rows >= journal.ROW_GROUP_SPANS:
            self._store(table)
            return
        assert self.connection is not None
        for start in range(0, table.num_rows, _WAL_LOAD_SPANS):
            self._store(table.slice(start, _WAL_LOAD_SPANS))
            self.connection.execute("CHECKPOINT")

    def _store(self, table: pa.Table) -> int:
        """One idempotent DuckDB transaction; counts what was new (caller holds _db_lock)."""
        assert self.connection is not None
        inserted = store.append_spans(self.connection, table)
        self._stored += inserted
        self._duplicates += table.num_rows - inserted
        if inserted == table.num_rows:
            self._count_usage(table)
        elif inserted:
            self._count_usage(self._new_spans(table))
        return inserted

    def _new_spans(self, table: pa.Table) -> pa.Table:
        # Rare (a partly re-sent batch): find which spans this commit stored, by received_at.
        assert self.connection is not None
        cur = self.connection.cursor()
        stamps = pc.unique(table.column("received_at")).to_pylist()
        stored: pa.Table = cur.sql(
            "SELECT trace_id || span_id AS k FROM spans WHERE received_at IN "
            "(SELECT unnest(?::TIMESTAMPTZ[]))",
            params=[stamps],
        ).to_arrow_table()
        cur.close()
        keys = pc.binary_join_element_wise(table.column("trace_id"), table.column("span_id"), "")
        new = table.filter(pc.is_in(keys, value_set=stored.column("k").combine_chunks()))
        # A span repeated inside the batch was stored once: count its first copy only.
        return store.first_of_each_key(new)

    def _count_usage(self, table: pa.Table) -> None:
        """Add the batch's LLM calls to the /metrics counters: one Arrow group-by per batch."""
        calls = table.filter(
            pc.or_(
                pc.is_valid(table.column("operation")), pc.is_valid(table.column("input_tokens"))
            )
        )
        if calls.num_rows == 0:
            return
        model = pc.coalesce(calls.column("response_model"), calls.column("request_model"))
        keyed = pa.table(
            {
                "provider": pc.fill_null(calls.column("provider"), ""),
                "model": pc.fill_null(model, ""),
                "node": pc.fill_null(calls.column("node"), ""),
                "cost": calls.column("cost_usd").cast(pa.float64()),
                **{kind: calls.column(f"{kind}_tokens") for kind in _TOKEN_KINDS},
            }
        )
        sums = keyed.group_by(["provider", "model", "node"], use_threads=False).aggregate(
            [("provider", "count"), ("cost", "sum"), ("cost", "count")]
            + [(kind, "sum") for kind in _TOKEN_KINDS]
        )
        for row in sums.to_pylist():
            key = (row["provider"], row["model"], row["node"])
            self.calls[key] += row["provider_count"]
            for kind in _TOKEN_KINDS:
                if row[f"{kind}_sum"]:
                    self.usage[(*key, kind)] += row[f"{kind}_sum"]
            if row["cost_count"]:
                self.cost[key] = self.cost.get(key, 0.0) + row["cost_sum"]

    def on_idle(self) -> None:
        """Called by the writer when no batch came for a while. With the journal the loader
        thread keeps its own clock; without, checkpoint now, not mid-ingest."""
        if self.journal is not None:
            self._load_wanted.set()
            return
        self._checkpoint_if_idle()

    def _checkpoint_if_idle(self) -> None:
        if not self._dirty or not self.config.idle_checkpoint or self._unloaded:
            return
        if time.monotonic() - self._last_write < self.config.idle_checkpoint:
            return
        self.checkpoint()

    def checkpoint(self) -> None:
        with self._db_lock:
            if self.connection is None:
                return
            t0 = time.perf_counter()
            self.connection.execute("CHECKPOINT")
            self._dirty = False
            self._checkpoints += 1
            self._checkpoint_seconds += time.perf_counter() - t0

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor for read queries (admin API) on the collector's own connection; the
        journal is loaded first, so the query sees every acknowledged span."""
        if self.connection is None:
            raise RuntimeError("duckdb exporter is not running")
        self.load()
        return self.connection.cursor()

    def shutdown(self) -> None:
        """Stop the loader, load what is journaled, checkpoint, close. Spans a failing final
        load leaves in the journal are loaded at the next start."""
        self._stopping.set()
        self._load_wanted.set()
        if self._loader is not None:
            self._loader.join()
            self._loader = None
        try:
            self.load()
        except Exception:
            pass  # logged by load(); the segments stay for the next start
        with self._db_lock:
            with self._lock:
                if self.journal is not None:
                    self.journal.close()
                    self.journal = None
            if self.connection is None:
                return
            try:
                self.connection.execute("CHECKPOINT")
            finally:
                self.connection.close()
                self.connection = None

    def counters(self) -> dict[str, int]:
        """The exporter's /metrics counters. The journal is loaded first, like for a query:
        the stored/duplicate and token counters are counted at the load (only then is it known
        which spans are new), and a scrape must see every acknowledged span."""
        try:
            self.load()
        except Exception:
            pass  # logged by load(); the scrape reports what is stored, and the failures
        return {
            "stored_spans": self._stored,
            "duplicate_spans": self._duplicates,
            "batches": self._batches,
            "journaled_spans_unloaded": self._unloaded,
            "bulk_loads": self._loads,
            "bulk_load_failures": self._failed_loads,
            "bulk_load_milliseconds": int(self._load_seconds * 1000),
            "checkpoints": self._checkpoints,
            "checkpoint_milliseconds": int(self._checkpoint_seconds * 1000),
        }


def create(config: Config) -> DuckDBExporter:
    return DuckDBExporter(config)
