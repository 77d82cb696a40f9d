"""Fixtures of the schema, view and CLI tests: real DuckDB files under tmp_path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from queries.store import append_spans, connect
from tests.queries import dataset


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A migrated database file holding the known dataset."""
    path = tmp_path / "otel-tokens.duckdb"
    con = connect(path)
    append_spans(con, dataset.table())
    con.close()
    return path


@pytest.fixture
def con(db_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    c = connect(db_path)
    try:
        yield c
    finally:
        c.close()
