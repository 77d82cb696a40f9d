"""The ingest journal: span batches made durable as files before DuckDB stores them in bulk.

DuckDB stores a small transaction row by row in its write-ahead log and rewrites it into the
file at the next checkpoint; a transaction of a whole row group (``BULK_LOAD_SPANS`` rows) is
written once, compressed, straight into the file, at a third of the CPU per span. So the
collector acknowledges a batch once it is in the journal, and loads the journal into DuckDB in
large pieces (a bulk load), as log-structured stores do: no per-commit statements and
checkpoint rewrites for every small group commit.

Layout: a directory beside the database, ``<db>.journal/``, holding segments
``NNNNNNNNNNNN.arrows`` (Arrow IPC stream files, ``SPANS_SCHEMA``, one message per batch, each
append followed by ``fdatasync``) and a ``lock`` file. Whoever holds an exclusive ``flock`` on
``lock`` owns the directory: the running collector's exporter, or a process recovering leftover
segments; everybody else leaves the segments alone. The DuckDB file's own lock is not enough:
inside one process a second connection to a database opened writable shares that instance.

A segment is deleted only after the DuckDB transaction holding its spans committed. A crash in
between loads it again at recovery, which is harmless: appends are idempotent on
``(trace_id, span_id)``. A segment's last message cut short by a crash (kill -9 mid-write) was
never acknowledged: reading stops at the last whole batch.

No collector imports: ``queries.store.connect`` recovers leftover segments with this module.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, NamedTuple

import pyarrow as pa

from queries.schema import SPANS_SCHEMA

log = logging.getLogger("otel_tokens.journal")

#: Spans per bulk load: one DuckDB row group. DuckDB writes a transaction of at least a row
#: group straight to the file, compressed; a smaller one goes row by row through its write-ahead
#: log, stays in memory until the next checkpoint and is rewritten there: ~1.7x the CPU per
#: span of the whole exporter, and at 10 M spans stored such loads ran out of the 64MB
#: memory_limit (bench/append.py, docs/collector.md). The loader stores whole row groups and
#: leaves the rest of the journal for the next load (``load_segments(whole_pieces=True)``).
ROW_GROUP_SPANS = 122_880  # DuckDB's default row group size
BULK_LOAD_SPANS = ROW_GROUP_SPANS

SEGMENT_SUFFIX = ".arrows"
_LOCK_NAME = "lock"


class JournalBusy(RuntimeError):
    """Another process (or another exporter in this one) owns the journal directory."""


def directory_for(db_path: str | Path) -> Path:
    """The journal directory of a database file."""
    return Path(f"{db_path}.journal")


def segments(directory: Path) -> list[Path]:
    """The segment files of a journal directory, oldest first."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.name.endswith(SEGMENT_SUFFIX))


def read_segment(path: Path) -> pa.Table:
    """The whole batches of a segment (memory-mapped, no copy); a cut-short tail is skipped."""
    batches: list[pa.RecordBatch] = []
    try:
        with pa.memory_map(str(path)) as source:
            reader = pa.ipc.open_stream(source)
            while True:
                try:
                    batches.append(reader.read_next_batch())
                except StopIteration:
                    break
    except (OSError, pa.ArrowInvalid) as exc:
        # Only the newest segment of a crashed process can end mid-message: that batch was
        # never acknowledged. (An empty file: the crash came before the first batch.)
        if path.stat().st_size:
            log.warning(
                "journal %s: kept %d whole batches, skipped a cut-short tail (%s)",
                path.name,
                len(batches),
                exc,
            )
    return pa.Table.from_batches(batches, SPANS_SCHEMA)


def spans_in(paths: list[Path]) -> int:
    """How many whole spans the segments hold (read through a memory map: no copy)."""
    return sum(read_segment(p).num_rows for p in paths)


def as_spans(table: pa.Table) -> pa.Table:
    """The batch in exactly ``SPANS_SCHEMA`` (columns in order, types cast), so that a load can
    never fail on a type."""
    if table.schema == SPANS_SCHEMA:
        return table
    return table.select(list(SPANS_SCHEMA.names)).cast(SPANS_SCHEMA)


class Loaded(NamedTuple):
    """What ``load_segments`` did: spans stored, and how many spans at the start of the oldest
    segment it left on disk were stored already (the next load's ``skip``)."""

    stored: int
    skip: int


def load_segments(
    paths: list[Path],
    store: Callable[[pa.Table], object],
    at_least: int = BULK_LOAD_SPANS,
    *,
    skip: int = 0,
    whole_pieces: bool = False,
) -> Loaded:
    """Store the spans of ``paths`` (oldest first; the first ``skip`` spans of ``paths[0]`` are
    stored already) through ``store``, in pieces of at least ``at_least`` spans where there are
    that many, deleting each segment once all its spans are stored. A failing ``store`` raises,
    and the segments not stored yet stay on disk.

    With ``whole_pieces`` every piece is exactly ``at_least`` spans (DuckDB writes a whole row
    group straight to the file; see ``BULK_LOAD_SPANS``), and the rest stays in the journal for
    the next load. A segment stays on disk until all its spans are stored: after a crash
    its stored spans are loaded again, which changes nothing (appends are idempotent).
    """
    waiting: list[tuple[Path, pa.Table]] = []  # segments with spans not stored, oldest first
    rows = -skip  # spans of ``waiting`` not stored
    stored = 0
    for p in paths:
        t = read_segment(p)
        waiting.append((p, t))
        rows += t.num_rows
        # Whole pieces are one row group each: a bigger transaction needs more DuckDB memory.
        while rows >= at_least:
            n = at_least if whole_pieces else rows
            skip = _store_piece(waiting, skip, n, store)
            stored += n
            rows -= n
    rest = 0 if whole_pieces else rows
    skip = _store_piece(waiting, skip, rest, store)  # also deletes segments without spans left
    stored += rest
    if paths:
        _sync_directory(paths[0].parent)  # the deletes: a crash must not bring them back late
    return Loaded(stored, skip)


def _store_piece(
    waiting: list[tuple[Path, pa.Table]], skip: int, n: int, store: Callable[[pa.Table], object]
) -> int:
    """Store the next ``n`` spans of ``waiting`` (its first ``skip`` are stored), then delete
    and drop the segments now stored whole; returns the new ``skip``."""
    if n:
        tables = [t for _, t in waiting]
        tables[0] = tables[0].slice(skip)
        piece = pa.concat_tables(tables) if len(tables) != 1 else tables[0]
        store(piece.slice(0, n))
        # Unmap what was stored before the next piece is read: the touched pages count in RSS.
        del piece, tables
    done = skip + n
    while waiting and waiting[0][1].num_rows <= done:
        done -= waiting[0][1].num_rows
        waiting.pop(0)[0].unlink(missing_ok=True)
    return done


def recover(directory: Path, store: Callable[[pa.Table], object]) -> int:
    """Store and delete the segments left in ``directory`` by a process that stopped before
    loading them; returns the spans read. Does nothing when the journal has a live owner."""
    if not directory.is_dir():
        return 0
    try:
        lock = _lock(directory)
    except JournalBusy:
        return 0
    try:
        leftover = segments(directory)
        if leftover:
            log.info("journal %s: loading %d leftover segments", directory, len(leftover))
        return load_segments(leftover, store).stored
    finally:
        os.close(lock)


def _lock(directory: Path) -> int:
    fd = os.open(directory / _LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise JournalBusy(f"journal {directory} is in use by another collector") from None
    return fd


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Journal:
    """The owner's side: append batches to the open segment; seal it for a load.

    Not thread-safe: the caller serialises ``append`` and ``seal``.
    """

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self._lock = _lock(directory)  # raises JournalBusy
        existing = segments(directory)
        self._next = int(existing[-1].name.removesuffix(SEGMENT_SUFFIX)) + 1 if existing else 1
        self._file: BinaryIO | None = None
        self._fd = -1
        self._writer: pa.ipc.RecordBatchStreamWriter | None = None

    def append(self, table: pa.Table) -> None:
        """Write the batch (in ``SPANS_SCHEMA``) to the open segment and wait until it is on
        disk; a return is the durable commit a receiver may acknowledge."""
        if self._writer is None:
            self._open_segment()
        assert self._writer is not None and self._file is not None
        try:
            self._writer.write_table(table)
            self._file.flush()
            os.fdatasync(self._fd)
        except BaseException:
            # A failed write may have left part of a message (e.g. disk full): nothing may follow
            # it in this file, or the batches after it could not be read. The part is skipped
            # at the load like a crash's; the next append starts a new segment.
            self._abandon_segment()
            raise

    def _abandon_segment(self) -> None:
        self._writer = None
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass
            self._file = None

    def seal(self) -> list[Path]:
        """Close the open segment (the next append starts a new one); returns every segment on
        disk, oldest first: what a load now takes."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._file is not None:
            self._file.close()
            self._file = None
        return segments(self.directory)

    def close(self) -> None:
        """Seal and give up ownership: segments still on disk are recovered by the next owner;
        an empty journal directory is removed (a stopped collector leaves only its database)."""
        left = self.seal()
        if self._lock < 0:
            return
        if not left:
            # Still under our lock: a process opening the lock file now finds no segments.
            (self.directory / _LOCK_NAME).unlink(missing_ok=True)
            try:
                self.directory.rmdir()
            except OSError:
                pass  # something else was put there: leave it
        os.close(self._lock)
        self._lock = -1

    def _open_segment(self) -> None:
        path = self.directory / f"{self._next:012d}{SEGMENT_SUFFIX}"
        self._next += 1
        f = open(path, "xb")  # noqa: SIM115 - kept open across appends, closed by seal()
        self._file = f
        self._fd = f.fileno()
        self._writer = pa.ipc.new_stream(f, SPANS_SCHEMA)
        f.flush()
        _sync_directory(self.directory)  # the new file's name must survive a crash too
