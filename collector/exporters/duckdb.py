"""Exporter ``duckdb``: span rows → one Arrow batch → one idempotent transaction in the spans table.

The pipeline's single writer thread calls ``export``; a return means the batch is committed (the
DuckDB write-ahead log holds it), so the receiver may acknowledge. Automatic checkpoints, which
would stall a commit while the WAL is merged into the file, are pushed out to
``checkpoint_wal_size``; the writer checkpoints instead when ingest is idle.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from queries import store

TYPE = "duckdb"

_TOKEN_KINDS = ("input", "output", "cache_read", "cache_creation", "reasoning")


@dataclass
class Config:
    path: str = store.DEFAULT_DB_PATH
    # DuckDB checkpoint_threshold while ingesting. Until a checkpoint, committed rows are held in
    # memory as well as in the WAL (~0.5 KB per span), so this bounds the collector's memory too.
    checkpoint_wal_size: int = 64 * 2**20
    idle_checkpoint: float = 2.0  # seconds without a batch before the writer checkpoints; 0 = never
    threads: int = 0  # DuckDB worker threads; 0 = DuckDB's default (all cores)
    # DuckDB memory_limit: without one DuckDB keeps freed buffers up to 80% of RAM, and the
    # collector's RSS only grows. Queries through the admin API spill to disk beyond it.
    memory_limit: str = "128MB"  # "" = DuckDB's default

    def validate(self) -> None:
        if not self.path:
            raise ValueError("path: must not be empty")
        if self.checkpoint_wal_size < 2**20:
            raise ValueError("checkpoint_wal_size: must be at least 1MiB")
        if self.idle_checkpoint < 0:
            raise ValueError("idle_checkpoint: must be >= 0")
        if self.threads < 0:
            raise ValueError("threads: must be >= 0")


def create_default_config() -> Config:
    return Config()


# --- the exporter -----------------------------------------------------------------------------


class DuckDBExporter:
    """Owns the collector's one DuckDB connection; all writes go through ``export``."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.connection: duckdb.DuckDBPyConnection | None = None
        self._lock = threading.Lock()
        self._last_write = time.monotonic()
        self._dirty = False
        self._stored = 0
        self._duplicates = 0
        self._batches = 0
        self._checkpoints = 0
        self._checkpoint_seconds = 0.0
        self.usage: Counter[tuple[str, str, str, str]] = Counter()
        self.calls: Counter[tuple[str, str, str]] = Counter()
        self.cost: dict[tuple[str, str, str], float] = {}

    def start(self) -> None:
        path = Path(self.config.path)
        if path.parent and not path.parent.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
        con = store.connect(path)
        con.execute(f"SET checkpoint_threshold = '{int(self.config.checkpoint_wal_size)}B'")
        if self.config.threads:
            con.execute(f"SET threads = {int(self.config.threads)}")
        if self.config.memory_limit:
            con.execute("SET memory_limit = ?", [self.config.memory_limit])
        con.execute("SET preserve_insertion_order = false")
        # The admin query API runs on cursors of this connection: no file access, and no way
        # for a query to switch that back on.
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        self.connection = con

    def export(self, table: pa.Table) -> int:
        """Commit the batch (idempotently); returns how many spans were new."""
        with self._lock:
            if self.connection is None:
                raise RuntimeError("duckdb exporter is not running")
            inserted = store.append_spans(self.connection, table)
            self._dirty = True
            self._last_write = time.monotonic()
        self._batches += 1
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
        """Called by the writer when no batch came for a while: checkpoint now, not mid-ingest."""
        if not self._dirty or not self.config.idle_checkpoint:
            return
        if time.monotonic() - self._last_write < self.config.idle_checkpoint:
            return
        self.checkpoint()

    def checkpoint(self) -> None:
        with self._lock:
            if self.connection is None:
                return
            t0 = time.perf_counter()
            self.connection.execute("CHECKPOINT")
            self._dirty = False
            self._checkpoints += 1
            self._checkpoint_seconds += time.perf_counter() - t0

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor for read queries (admin API) on the collector's own connection."""
        if self.connection is None:
            raise RuntimeError("duckdb exporter is not running")
        return self.connection.cursor()

    def shutdown(self) -> None:
        with self._lock:
            if self.connection is None:
                return
            try:
                self.connection.execute("CHECKPOINT")
            finally:
                self.connection.close()
                self.connection = None

    def counters(self) -> dict[str, int]:
        return {
            "stored_spans": self._stored,
            "duplicate_spans": self._duplicates,
            "batches": self._batches,
            "checkpoints": self._checkpoints,
            "checkpoint_milliseconds": int(self._checkpoint_seconds * 1000),
        }


def create(config: Config) -> DuckDBExporter:
    return DuckDBExporter(config)
