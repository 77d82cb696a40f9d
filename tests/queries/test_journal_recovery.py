"""store.connect recovers what a stopped collector left in its journal (queries/journal.py)."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from queries import journal, store


def _batch(first: int, n: int):
    return store.spans_table(
        {
            "trace_id": [f"{i:032x}" for i in range(first, first + n)],
            "span_id": [f"{i:016x}" for i in range(first, first + n)],
            "name": ["step"] * n,
            "start_time": [datetime(2026, 11, 23, tzinfo=UTC)] * n,
        }
    )


def _crashed_journal(db: Path, batches) -> list[Path]:
    """Segments as a killed collector leaves them: written and synced, never loaded."""
    owner = journal.Journal(journal.directory_for(db))
    for b in batches:
        owner.append(journal.as_spans(b))
    left = journal.segments(owner.directory)
    owner._writer = None  # a kill -9: no end-of-stream marker, the lock simply goes away
    owner._file = None

    os.close(owner._lock)
    return left


def _count(db: Path) -> int:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return int(con.execute("SELECT count(*) FROM spans").fetchall()[0][0])
    finally:
        con.close()


def test_a_writable_connect_loads_leftover_segments_then_deletes_them(tmp_path):
    db = tmp_path / "spans.duckdb"
    store.connect(db).close()
    _crashed_journal(db, [_batch(0, 3), _batch(3, 2)])
    store.connect(db).close()
    assert _count(db) == 5
    assert journal.segments(journal.directory_for(db)) == []


def test_a_read_only_connect_leaves_the_journal_alone(tmp_path):
    db = tmp_path / "spans.duckdb"
    store.connect(db).close()
    left = _crashed_journal(db, [_batch(0, 3)])
    store.connect(db, read_only=True).close()
    assert journal.segments(journal.directory_for(db)) == left


def test_a_cut_short_last_batch_is_skipped_and_the_whole_ones_are_loaded(tmp_path):
    db = tmp_path / "spans.duckdb"
    store.connect(db).close()
    [segment] = _crashed_journal(db, [_batch(0, 3), _batch(3, 4)])
    data = segment.read_bytes()
    segment.write_bytes(data[: len(data) - 40])  # the kill came mid-write of the second batch
    store.connect(db).close()
    assert _count(db) == 3


def test_an_empty_or_garbage_segment_does_not_stop_recovery(tmp_path):
    db = tmp_path / "spans.duckdb"
    store.connect(db).close()
    [segment] = _crashed_journal(db, [_batch(0, 2)])
    (segment.parent / "000000000000.arrows").write_bytes(b"")  # crashed before its schema
    (segment.parent / "000000000099.arrows").write_bytes(b"\xff\xff\xff\xff garbage")
    store.connect(db).close()
    assert _count(db) == 2
    assert journal.segments(journal.directory_for(db)) == []


def test_loading_a_segment_again_after_its_commit_stores_nothing_twice(tmp_path):
    """A crash between the load's commit and the segment delete: the reload is harmless."""
    db = tmp_path / "spans.duckdb"
    store.connect(db).close()
    [segment] = _crashed_journal(db, [_batch(0, 3)])
    copy = tmp_path / "copy.arrows"
    shutil.copy(segment, copy)
    store.connect(db).close()
    shutil.copy(copy, segment)  # as if the delete never happened
    store.connect(db).close()
    assert _count(db) == 3


def test_after_a_failed_append_the_next_batches_go_to_a_new_segment(tmp_path, monkeypatch):
    """Injected: a failing fdatasync (a real one needs a full or failing disk). The batch is
    not acknowledged; the ones after it must stay readable."""
    db = tmp_path / "spans.duckdb"
    store.connect(db).close()
    owner = journal.Journal(journal.directory_for(db))
    owner.append(journal.as_spans(_batch(0, 2)))

    def failing(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(journal.os, "fdatasync", failing)
    with pytest.raises(OSError):  # no acknowledgement
        owner.append(journal.as_spans(_batch(2, 2)))
    monkeypatch.undo()
    owner.append(journal.as_spans(_batch(4, 3)))
    owner.close()
    assert len(journal.segments(journal.directory_for(db))) == 2
    store.connect(db).close()
    # The first and last batches were acknowledged; the middle one was not, but it reached the
    # file whole, so it is stored as well (a client re-sending it is deduplicated).
    assert _count(db) == 7
