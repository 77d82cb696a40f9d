"""Fixtures of the schema, view and CLI tests: real DuckDB files under tmp_path."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pytest

from queries import store
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


@pytest.fixture
def edit_migration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[[str, str, str], None]:
    """``edit_migration(name, old, new)``: the migrations as shipped, but with ``old`` replaced
    by ``new`` in the file ``name`` (as when a release changes that file)."""

    def edit(name: str, old: str, new: str) -> None:
        changed = tmp_path / "queries"
        changed.mkdir(exist_ok=True)
        for m in store.migrations():
            text = m.sql.replace(old, new) if m.name == name else m.sql
            (changed / f"{m.name}.sql").write_text(text)
        monkeypatch.setattr(store, "QUERIES_DIR", changed)

    return edit
