"""The DuckDB store: connecting, applying the schema migrations, appending span batches.

Migrations are the ``NNN_name.sql`` files beside this module, applied in name order and recorded
in ``schema_migrations``. A file runs once; a file that only (re)creates views or macros
(``CREATE OR REPLACE ...``) runs again when its text changes, so a corrected view reaches every
existing database.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from queries import journal
from queries.schema import SPAN_COLUMNS, SPANS_SCHEMA

QUERIES_DIR = Path(__file__).resolve().parent
DEFAULT_DB_PATH = "otel-tokens.duckdb"

_MIGRATION_FILE = re.compile(r"^\d{3}_[a-z0-9_]+\.sql$")
_REPLACEABLE = re.compile(r"^\s*(--[^\n]*\n\s*)*CREATE\s+OR\s+REPLACE\b", re.IGNORECASE)


@dataclass(frozen=True)
class Migration:
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def replaceable(self) -> bool:
        return bool(_REPLACEABLE.match(self.sql))


def migrations() -> list[Migration]:
    """Every migration file, in the order it is applied."""
    files = sorted(p for p in QUERIES_DIR.iterdir() if _MIGRATION_FILE.match(p.name))
    return [Migration(p.stem, p.read_text()) for p in files]


def migrate(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Bring the database up to the current schema; returns the names applied now."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " name VARCHAR PRIMARY KEY, checksum VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
    )
    done = dict(con.execute("SELECT name, checksum FROM schema_migrations").fetchall())
    applied: list[str] = []
    for m in migrations():
        if m.name in done and (done[m.name] == m.checksum or not m.replaceable):
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(m.sql)
            con.execute(
                "INSERT OR REPLACE INTO schema_migrations VALUES (?, ?, now())",
                [m.name, m.checksum],
            )
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        applied.append(m.name)
    if {"002_llm_call_columns", "003_is_llm_call"} & set(applied):
        # Which spans are calls (or where the columns) changed: walk every trace again.
        _in_transaction(con, _inherit_all_nodes)
    elif "023_calls_awaiting_node" in applied:
        _in_transaction(con, _list_awaiting_calls)
    if {
        "003_is_llm_call",
        "016_trace_usage",
        "018_span_batches",
        "019_unfolded_trace_usage",
        "020_trace_usage_added",
        "021_trace_usage_combined",
    } & set(applied):
        # The per-trace summary is new, or what it counts changed: recount every stored span.
        _in_transaction(con, rebuild_trace_usage)
    return applied


def _in_transaction(con: duckdb.DuckDBPyConnection, work: Callable[[Any], None]) -> None:
    con.execute("BEGIN TRANSACTION")
    try:
        work(con)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


#: How far apart in start time an LLM call and the ancestor it inherits its node from may be.
#: Bounds the spans each append re-reads (the walk's cost grows with it: ~10 ms for 1 h, ~40 ms
#: for 24 h per batch at 10 M spans); a node step lasting longer than this is unusual.
NODE_WINDOW = timedelta(hours=6)

# Is there any call without a node of its own, and none inherited yet, in the batch's traces?
# When not (every call stamped by the otel_tokens plugin carries its node), the walk has nothing
# to do. A call that inherited a node keeps it for good: the spans linking it to that ancestor
# are all stored, and a stored span never changes (a re-sent one is not stored again), so no
# nearer node can appear; only calls still without one are looked at and walked. Those calls
# are listed in calls_awaiting_node (queries/023_calls_awaiting_node.sql), so this reads that
# small table, not the spans of the last hours.
_HAS_ORPHANS = """
SELECT count(*) FROM (
    SELECT 1 FROM calls_awaiting_node
    WHERE start_time BETWEEN $lo AND $hi AND trace_id IN (SELECT trace_id FROM _incoming_spans)
    LIMIT 1
)
"""

# The stored calls without a node of their own and none inherited; for each append, only its
# new rows (appended_batch only grows: only the last row groups are read).
_AWAITING = """
INSERT INTO calls_awaiting_node
SELECT trace_id, span_id, start_time FROM spans
WHERE llm_call AND node IS NULL AND inherited_node IS NULL {new_rows}
"""

#: How long after its start a call without a node is still awaited (relative to the newest
#: batch): a parent node span arriving later than this does not reach it. Bounds
#: calls_awaiting_node when an application has no nodes at all.
AWAIT_NODE_FOR = timedelta(hours=24)

# The ancestor walk behind llm_calls.node: for every LLM call without a node of its own in the
# traces in {scope} (and starting between $lo and $hi), the node of the nearest
# ancestor that has one, walking up parent_span_id; stored in spans.inherited_node. Re-run for
# every trace an append touches, so a parent that arrives after its children still reaches them.
_INHERIT_NODES = """
UPDATE spans AS s SET inherited_node = r.node
FROM (
    WITH RECURSIVE
    tree AS (
        SELECT rowid AS row_id, trace_id, span_id, parent_span_id, node, llm_call, inherited_node
        FROM spans
        WHERE start_time BETWEEN $lo AND $hi
          {scope}
    ),
    orphans AS (
        SELECT row_id, trace_id, span_id, parent_span_id, inherited_node
        FROM tree
        WHERE node IS NULL AND llm_call AND inherited_node IS NULL
    ),
    walk(trace_id, call_span_id, next_span_id, node, depth) AS (
        SELECT trace_id, span_id, parent_span_id, NULL::VARCHAR, 0
        FROM orphans
        WHERE parent_span_id IS NOT NULL
        UNION ALL
        SELECT w.trace_id, w.call_span_id, t.parent_span_id, t.node, w.depth + 1
        FROM walk AS w
        JOIN tree AS t ON t.trace_id = w.trace_id AND t.span_id = w.next_span_id
        WHERE w.node IS NULL AND w.depth < 100  -- a corrupt parent cycle cannot loop forever
    ),
    found AS (
        SELECT trace_id, call_span_id AS span_id, node FROM walk WHERE node IS NOT NULL
    )
    SELECT o.row_id, f.node
    FROM orphans AS o
    LEFT JOIN found AS f ON f.trace_id = o.trace_id AND f.span_id = o.span_id
    WHERE o.inherited_node IS DISTINCT FROM f.node
) AS r
WHERE s.rowid = r.row_id
RETURNING s.trace_id, s.span_id
"""


def inherit_nodes(
    con: duckdb.DuckDBPyConnection, lo: datetime, hi: datetime, scope: str | None = None
) -> None:
    """Run the ancestor walk (inside the caller's transaction) over the spans starting in
    [lo, hi] of the traces that relation ``scope`` lists (a registered batch), or all traces;
    the calls it gives a node leave ``calls_awaiting_node``."""
    where = f"AND trace_id IN (SELECT trace_id FROM {scope})" if scope else ""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Arrow output makes a copy": of the resolved keys only
        resolved: pa.Table = con.execute(
            _INHERIT_NODES.format(scope=where), {"lo": lo, "hi": hi}
        ).to_arrow_table()
    if resolved.num_rows:
        con.register("_resolved_calls", resolved)
        try:
            con.execute(
                "DELETE FROM calls_awaiting_node AS a USING _resolved_calls AS r"
                " WHERE a.trace_id = r.trace_id AND a.span_id = r.span_id"
            )
        finally:
            con.unregister("_resolved_calls")


def _list_awaiting_calls(con: duckdb.DuckDBPyConnection) -> None:
    """List every stored call still without a node in ``calls_awaiting_node``, anew."""
    con.execute("DELETE FROM calls_awaiting_node")
    con.execute(_AWAITING.format(new_rows=""))


def _inherit_all_nodes(con: duckdb.DuckDBPyConnection) -> None:
    """Fill ``inherited_node`` for every stored call (after migrations 002 or 003 changed)."""
    _list_awaiting_calls(con)
    inherit_nodes(con, datetime(1, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, tzinfo=UTC))


#: How many spans may be appended after the last fold before ``append_spans`` folds them into
#: ``trace_usage`` (see queries/018_span_batches.sql). usage_by_trace adds the unfolded spans up
#: at query time (~+0.1-0.3 s at 100 k, bench/views.py); a fold costs a scan of trace_usage's
#: trace ids (~0.25 s at 10 M spans / 1.4 M traces), paid once per this many spans: ~2.5 µs per
#: appended span on average.
FOLD_SPANS_AT = 100_000


def rebuild_trace_usage(con: duckdb.DuckDBPyConnection) -> None:
    """Recount ``trace_usage`` from every stored span (inside the caller's transaction)."""
    con.execute("DELETE FROM trace_usage_parts")
    con.execute("DELETE FROM trace_usage")
    con.execute("UPDATE trace_usage_state SET folded_through = -1")  # every span unfolded
    last = con.execute("SELECT coalesce(max(appended_batch), 0) FROM spans").fetchall()[0][0]
    fold_trace_usage(con, last)


def fold_trace_usage(con: duckdb.DuckDBPyConnection, through_batch: int) -> None:
    """Fold what was added to the traces (the spans appended up to batch ``through_batch`` and
    the parts) into ``trace_usage``, inside the caller's transaction: each touched trace's row
    is replaced by its combination with the additions."""
    con.execute("CREATE OR REPLACE TEMP TABLE _added_traces AS FROM trace_usage_added")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Arrow output makes a copy": of the touched rows only
        folded = con.execute(
            "DELETE FROM trace_usage WHERE trace_id IN (SELECT trace_id FROM _added_traces)"
            " RETURNING *"
        ).to_arrow_table()
    con.register("_folded_traces", folded)
    try:
        con.execute(
            "INSERT INTO trace_usage BY NAME"
            " FROM trace_usage_combined('_folded_traces', '_added_traces')"
        )
    finally:
        con.unregister("_folded_traces")
    con.execute("DELETE FROM trace_usage_parts")
    con.execute("UPDATE trace_usage_state SET folded_through = ?", [through_batch])
    con.execute("DROP TABLE _added_traces")


def record_cost_changes(
    con: duckdb.DuckDBPyConnection, new_costs: str, lo: datetime | str, hi: datetime | str
) -> None:
    """Before the stored ``cost_usd`` of some calls is replaced (inside the caller's
    transaction): add to each trace's usage the difference, as a ``trace_usage_parts`` row,
    for the calls already folded into ``trace_usage`` (the unfolded ones are read as stored).

    ``new_costs`` names a relation of ``(trace_id, span_id, cost_usd)`` whose calls start
    between ``lo`` and ``hi``. The difference is taken against the values stored now, so
    usage_by_trace stays exact whatever the caller read before.
    """
    con.execute(
        _COST_CHANGES.format(new_costs=new_costs),
        {"lo": lo, "hi": hi},
    )


# Per trace: the change in priced cost and in the number of unpriced calls that replacing the
# stored costs by the new ones makes. A part with calls = 0 carrying only these differences.
_COST_CHANGES = """
INSERT INTO trace_usage_parts (trace_id, calls, cost_usd, unpriced_calls)
SELECT trace_id, 0, cost_change, unpriced_change
FROM (
    SELECT
        s.trace_id,
        coalesce(sum(n.cost_usd), 0) - coalesce(sum(s.cost_usd), 0) AS cost_change,
        count(*) FILTER (WHERE n.cost_usd IS NULL) - count(*) FILTER (WHERE s.cost_usd IS NULL)
            AS unpriced_change
    FROM spans AS s
    JOIN {new_costs} AS n ON s.trace_id = n.trace_id AND s.span_id = n.span_id
    WHERE s.start_time BETWEEN CAST($lo AS TIMESTAMPTZ) AND CAST($hi AS TIMESTAMPTZ)
      AND s.llm_call
      -- folded: not in unfolded_trace_usage (queries/019_unfolded_trace_usage.sql)
      AND s.appended_batch <= (SELECT folded_through FROM trace_usage_state)
    GROUP BY s.trace_id
)
WHERE cost_change <> 0 OR unpriced_change <> 0
"""


def connect(
    path: str | Path = DEFAULT_DB_PATH, *, read_only: bool = False, recover_journal: bool = True
) -> duckdb.DuckDBPyConnection:
    """Open the database; a writable connection is migrated to the current schema first, then
    stores the spans a stopped collector left in its journal (``queries.journal``) unless
    ``recover_journal`` is false (the collector's exporter recovers them itself)."""
    con = duckdb.connect(str(path), read_only=read_only)
    # The progress bar would draw on the terminal of whichever CLI or service opened the file.
    con.execute("SET enable_progress_bar = false")
    if not read_only:
        migrate(con)
        if recover_journal:
            journal.recover(journal.directory_for(path), lambda batch: append_spans(con, batch))
    return con


def empty_spans_table() -> pa.Table:
    return SPANS_SCHEMA.empty_table()


def spans_table(columns: dict[str, list[Any]]) -> pa.Table:
    """Build a batch from column lists; columns not given are NULL."""
    n = len(next(iter(columns.values()))) if columns else 0
    arrays = [
        pa.array(columns[f.name], type=f.type) if f.name in columns else pa.nulls(n, f.type)
        for f in SPANS_SCHEMA
    ]
    return pa.Table.from_arrays(arrays, schema=SPANS_SCHEMA)


def first_of_each_key(batch: pa.Table) -> pa.Table:
    """Keep the first row of each ``(trace_id, span_id)``; a batch without repeats is kept as is.

    Done in Arrow, on the two key columns only: ``DISTINCT ON`` in SQL would carry every column
    through an aggregate and costs several times the insert itself. A hash of the joined keys
    (``unique``), not a ``group_by``: the group_by's execution plan left ~57 MB more resident in
    the collector for a bulk load of 122,880 spans.
    """
    keys = pc.binary_join_element_wise(batch.column("trace_id"), batch.column("span_id"), "/")
    distinct = pc.unique(keys)
    if len(distinct) == batch.num_rows:
        return batch
    # unique() lists the keys in order of first appearance, index_in() finds that appearance:
    # the rows to keep, in arrival order.
    return batch.take(pc.index_in(distinct, value_set=keys))


def append_spans(con: duckdb.DuckDBPyConnection, batch: pa.Table) -> int:
    """Append a batch of spans in one transaction; returns how many rows were new.

    Idempotent on ``(trace_id, span_id)``: a span already stored, or repeated inside the batch,
    is not inserted again. The duplicate check only reads row groups whose ``start_time`` range
    overlaps the batch (a re-sent span carries the same start time), so it stays cheap as the
    table grows instead of probing every stored span or keeping a large key index in memory.

    In the same transaction, each new row gets ``llm_call`` (``is_llm_call()``) and the
    batch's number (``appended_batch``, which tells usage_by_trace what it has not folded into
    ``trace_usage`` yet; every ``FOLD_SPANS_AT`` spans the append folds them); and the LLM
    calls of the batch's traces that carry no node get ``inherited_node`` from their nearest
    ancestor (see ``_INHERIT_NODES``). The views read these instead of recomputing them.
    """
    if batch.num_rows == 0:
        return 0
    if batch.schema != SPANS_SCHEMA:
        batch = batch.select(list(SPAN_COLUMNS)).cast(SPANS_SCHEMA)
    batch = first_of_each_key(batch)
    bounds = pc.min_max(batch.column("start_time"))
    lo: datetime = bounds["min"].as_py()
    hi: datetime = bounds["max"].as_py()
    con.register("_incoming_spans", batch)
    try:
        con.execute("BEGIN TRANSACTION")
        try:
            appended_batch, folded_through = con.execute(_NEXT_BATCH).fetchall()[0]
            row = con.execute(
                _INSERT_NEW_ROWS, {"lo": lo, "hi": hi, "batch": appended_batch}
            ).fetchone()
            inserted = int(row[0]) if row else 0
            if inserted:
                _after_insert(con, lo, hi, appended_batch, folded_through)
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
    finally:
        con.unregister("_incoming_spans")
    return inserted


_NEXT_BATCH = """
SELECT nextval('span_batches'), (SELECT folded_through FROM trace_usage_state)
"""

_INSERT_NEW_ROWS = """
INSERT INTO spans BY NAME
SELECT *, is_llm_call(operation, input_tokens, output_tokens) AS llm_call,
       $batch AS appended_batch
FROM _incoming_spans AS b
WHERE NOT EXISTS (
    SELECT 1 FROM spans AS s
    WHERE s.start_time BETWEEN $lo AND $hi
      AND s.trace_id = b.trace_id AND s.span_id = b.span_id
)
"""


def _after_insert(
    con: duckdb.DuckDBPyConnection,
    lo: datetime,
    hi: datetime,
    appended_batch: int,
    folded_through: int,
) -> None:
    """What follows from the new rows just inserted (those of ``_incoming_spans``)."""
    window = {"lo": lo - NODE_WINDOW, "hi": hi + NODE_WINDOW}
    con.execute(_AWAITING.format(new_rows="AND appended_batch = $batch"), {"batch": appended_batch})
    if con.execute(_HAS_ORPHANS, window).fetchall()[0][0]:
        inherit_nodes(con, window["lo"], window["hi"], "_incoming_spans")
    oldest = hi - AWAIT_NODE_FOR
    con.execute("DELETE FROM calls_awaiting_node WHERE start_time < ?", [oldest])
    # appended_batch only grows, so the row groups before the last fold are skipped here
    unfolded = con.execute(
        "SELECT count(*) FROM spans WHERE appended_batch > ?", [folded_through]
    ).fetchall()[0][0]
    if unfolded >= FOLD_SPANS_AT:
        fold_trace_usage(con, appended_batch)
