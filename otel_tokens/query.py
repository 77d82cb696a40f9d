"""Read-only queries over the otel-tokens database: a local DuckDB file, or the collector's API.

DuckDB lets one process open a file for writing. While a collector holds the database, the
CLI and the HTML report read through the collector's ``POST /v1/query`` instead; callers of
:meth:`Database.query` do not see the difference.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import urllib.error
import urllib.request
import warnings
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from queries import store

DB_ENV = "OTEL_TOKENS_DB"
COLLECTOR_ENV = "OTEL_TOKENS_COLLECTOR"
DEFAULT_COLLECTOR = "http://127.0.0.1:4320"
TOKEN_ENV = "OTEL_TOKENS_ADMIN_TOKEN"

# One statement of one of these types reads and never writes. DuckDB's own parser decides the
# type (SHOW, DESCRIBE, SUMMARIZE and FROM-first queries are SELECTs to it), not a regex.
_READ_ONLY_TYPES = frozenset({duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN})


class QueryError(Exception):
    """A user-facing failure, with a message of one sentence (the CLI prints it as is)."""


def is_read_only_query(sql: str) -> bool:
    """True when ``sql`` is exactly one SELECT-like statement (SELECT, WITH, FROM, SHOW,
    DESCRIBE, SUMMARIZE, EXPLAIN), as DuckDB's parser classifies it."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error:
        return False
    return len(statements) == 1 and statements[0].type in _READ_ONLY_TYPES


def default_db_path() -> str:
    return os.environ.get(DB_ENV) or store.DEFAULT_DB_PATH


def _is_lock_error(exc: duckdb.Error) -> bool:
    text = str(exc).lower()
    return "lock" in text or "conflicting" in text or "already open" in text


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class Database:
    """Where queries go: the DuckDB file at ``path``, else the collector holding it.

    The file is migrated once (a short writable open) and then read through read-only
    connections with external file access switched off, so a user's SQL can neither write
    nor read other files. When the file is locked by a running collector, queries go to
    ``collector`` (``OTEL_TOKENS_COLLECTOR``, default ``http://127.0.0.1:4320``).
    """

    def __init__(
        self,
        path: str | Path | None = None,
        collector: str | None = None,
        *,
        token: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.path = Path(path) if path is not None else Path(default_db_path())
        self.collector = (collector or os.environ.get(COLLECTOR_ENV) or DEFAULT_COLLECTOR).rstrip(
            "/"
        )
        self.token = token or os.environ.get(TOKEN_ENV)
        self.timeout = timeout
        self._mode: str | None = None  # "local" or "collector", decided on first use
        self._lock_message = ""
        self._con: duckdb.DuckDBPyConnection | None = None
        self._shared = False

    # -- public ---------------------------------------------------------------------------
    @property
    def mode(self) -> str:
        """``"local"`` or ``"collector"``; opens (and migrates) the file on first use."""
        if self._mode is None:
            self._mode = self._choose()
        return self._mode

    def query(self, sql: str, params: list[Any] | None = None) -> tuple[list[str], list[tuple]]:
        """Run one read-only statement; returns ``(column names, rows)``."""
        if not is_read_only_query(sql):
            raise QueryError(
                "only a single read-only query (SELECT, WITH, FROM, SHOW, DESCRIBE, EXPLAIN) "
                "is allowed"
            )
        if self.mode == "local":
            return self._query_local(sql, params)
        return self._query_collector(sql, params)

    def connect_writable(self) -> duckdb.DuckDBPyConnection:
        """A migrated writable connection to the local file (for ``reprice``); fails if locked."""
        if not self.path.exists():
            raise QueryError(f"no database at {self.path}: pass --db or set {DB_ENV}")
        try:
            return store.connect(self.path)
        except duckdb.IOException as exc:
            if _is_lock_error(exc):
                raise QueryError(
                    f"{self.path} is held by a running collector; stop it to change stored rows"
                ) from None
            raise QueryError(f"cannot open {self.path}: {_first_line(exc)}") from None

    # -- choosing a route -----------------------------------------------------------------
    def _choose(self) -> str:
        if not self.path.exists():
            # Opening would create an empty database: a mistyped --db would look like "no usage".
            raise QueryError(
                f"no database at {self.path}: start the collector, or pass --db / set {DB_ENV}"
            )
        try:
            store.connect(self.path).close()
            return "local"
        except duckdb.ConnectionException:
            # This process already has the file open read-only (another Database): it was
            # migrated when that one opened it.
            return "local"
        except duckdb.IOException as exc:
            if not _is_lock_error(exc):
                raise QueryError(f"cannot open {self.path}: {_first_line(exc)}") from None
            self._lock_message = _first_line(exc)
        except duckdb.Error as exc:
            raise QueryError(f"cannot open {self.path}: {_first_line(exc)}") from None
        return "collector"

    # -- local ----------------------------------------------------------------------------
    def _local_connection(self) -> tuple[duckdb.DuckDBPyConnection, bool] | None:
        """The cached read-only connection (and whether it shares a writable instance);
        None when a collector took the file since we looked."""
        if self._con is not None:
            return self._con, self._shared
        try:
            con = duckdb.connect(str(self.path), read_only=True)
            con.execute("SET enable_external_access = false")
            self._shared = False
        except duckdb.ConnectionException:
            # This process already holds the file writable (an in-process collector): share
            # that instance, one read-only transaction per query.
            con = duckdb.connect(str(self.path))
            self._shared = True
        except duckdb.IOException as exc:
            if _is_lock_error(exc):
                return None
            raise QueryError(f"cannot open {self.path}: {_first_line(exc)}") from None
        con.execute("SET enable_progress_bar = false")
        self._con = con
        return con, self._shared

    def close(self) -> None:
        """Release the file (a read-only handle keeps a collector from opening it)."""
        if self._con is not None:
            self._con.close()
            self._con = None

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _query_local(self, sql: str, params: list[Any] | None) -> tuple[list[str], list[tuple]]:
        opened = self._local_connection()
        if opened is None:  # a collector started since we looked
            self._mode = "collector"
            return self._query_collector(sql, params)
        con, shared = opened
        if shared:
            con.execute("BEGIN TRANSACTION READ ONLY")
        try:
            rel = con.execute(sql, params or None)
            columns = [d[0] for d in rel.description or []]
            # Arrow, not fetchall(): TIMESTAMPTZ values then need no pytz.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                table: Any = rel.to_arrow_table()
        except duckdb.Error as exc:
            raise QueryError(_first_line(exc)) from None
        finally:
            if shared:
                con.execute("ROLLBACK")
        rows = list(zip(*(c.to_pylist() for c in table.columns), strict=True))
        return columns, rows

    # -- through the collector --------------------------------------------------------------
    def _query_collector(self, sql: str, params: list[Any] | None) -> tuple[list[str], list[tuple]]:
        body = json.dumps({"sql": sql, "params": [_jsonable(p) for p in params or []]}).encode()
        request = urllib.request.Request(
            f"{self.collector}/v1/query",
            data=body,
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                doc = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise QueryError(_http_error(exc, self.collector)) from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise QueryError(
                f"{self.path} is locked by another process ({self._lock_message or 'in use'}) "
                f"and no collector answers at {self.collector}: {_reason(exc)}"
            ) from None
        columns = list(doc.get("columns") or [])
        types = list(doc.get("types") or [])
        rows = [
            tuple(_typed(v, t) for v, t in zip(row, types, strict=False)) for row in doc["rows"]
        ]
        return columns, rows


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason or exc) or type(exc).__name__


def _http_error(exc: urllib.error.HTTPError, collector: str) -> str:
    if exc.code == 401:
        return f"the collector at {collector} refused the query: set {TOKEN_ENV} to its token"
    try:
        message = json.loads(exc.read()).get("error")
    except (ValueError, AttributeError, OSError):
        message = None
    return str(message or f"the collector at {collector} answered HTTP {exc.code}")


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _typed(value: Any, type_name: str) -> Any:
    """Undo the API's JSON encoding, so rows look the same as from a local file."""
    if not isinstance(value, str):
        return value
    t = type_name.upper()
    try:
        if t.startswith("DECIMAL"):
            return Decimal(value)
        if t.startswith("TIMESTAMP"):
            parsed = dt.datetime.fromisoformat(value)
            return (
                parsed if parsed.tzinfo or "TIME ZONE" not in t else parsed.replace(tzinfo=dt.UTC)
            )
        if t == "DATE":
            return dt.date.fromisoformat(value)
    except ValueError:
        return value
    return value
