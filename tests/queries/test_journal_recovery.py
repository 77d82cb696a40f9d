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


def _sealed_segments(directory: Path, batches) -> list[Path]:
    """One segment per batch, as a collector leaves them when it seals after each."""
    owner = journal.Journal(directory)
    for b in batches:
        owner.append(journal.as_spans(b))
        owner.seal()
    owner.close()
    return journal.segments(directory)


def _span_ids(first: int, n: int) -> list[str]:
    return [f"{i:016x}" for i in range(first, first + n)]


def test_whole_pieces_are_one_row_group_each_and_the_rest_waits_for_the_next_load(tmp_path):
    directory = tmp_path / "spans.duckdb.journal"
    paths = _sealed_segments(directory, [_batch(0, 5), _batch(5, 5), _batch(10, 5)])
    pieces: list[list[str]] = []

    def keep(t) -> None:
        pieces.append(t.column("span_id").to_pylist())

    first = journal.load_segments(paths, keep, 4, whole_pieces=True)
    assert [len(p) for p in pieces] == [4, 4, 4]
    assert first == journal.Loaded(stored=12, skip=2)
    assert journal.segments(directory) == paths[2:]  # the segment with spans not stored yet
    second = journal.load_segments(journal.segments(directory), keep, 4, skip=first.skip)
    assert second == journal.Loaded(stored=3, skip=0)
    assert [s for p in pieces for s in p] == _span_ids(0, 15)  # each span once, in order
    assert journal.segments(directory) == []


def test_a_crash_after_a_whole_pieces_load_stores_the_rest_and_nothing_twice(tmp_path):
    db = tmp_path / "spans.duckdb"
    con = store.connect(db)
    paths = _sealed_segments(journal.directory_for(db), [_batch(0, 5), _batch(5, 5)])
    loaded = journal.load_segments(
        paths, lambda t: store.append_spans(con, t), 4, whole_pieces=True
    )
    assert loaded == journal.Loaded(stored=8, skip=3)
    con.close()  # the kept segment's first 3 spans are stored: recovery loads it whole
    con = store.connect(db)
    ids = con.execute("SELECT span_id FROM spans ORDER BY span_id").fetchall()
    assert [r[0] for r in ids] == _span_ids(0, 10)
    assert journal.segments(journal.directory_for(db)) == []
    con.close()
