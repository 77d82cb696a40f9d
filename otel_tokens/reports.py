"""The analyst queries behind the CLI, as parameterised SQL over the views in ``queries/``.

Every filter is an independent, optional value passed as a query parameter (never pasted into
the SQL text), so the same builders serve a local file and the collector's query API.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from otel_tokens.query import Database, QueryError
from queries.store import NODE_WINDOW

#: ``--by`` value -> the grouping columns (expressions over ``llm_calls``) and their labels.
GROUPINGS: dict[str, tuple[tuple[str, str], ...]] = {
    "user": (("user_id", "user_id"),),
    "node": (("node", "node"),),
    "model": (("provider", "provider"), ("model", "model")),
    "provider": (("provider", "provider"),),
    "day": (("day", "day"),),
    "job_type": (("coalesce(job_type, 'interactive')", "job_type"),),
    "tenant": (("tenant", "tenant"),),
}

_DURATION = re.compile(r"^\s*(\d+)\s*(m|min|h|d|w)\s*$", re.IGNORECASE)
_UNITS = {"m": "minutes", "min": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(value: str, *, now: datetime | None = None) -> datetime:
    """``30d`` / ``12h`` / ``90m`` / ``2w`` before now, or an ISO date/time; raises QueryError."""
    match = _DURATION.match(value)
    if match:
        amount, unit = int(match.group(1)), match.group(2).lower()
        return (now or datetime.now(UTC)) - timedelta(**{_UNITS[unit]: amount})
    return parse_time(value, option="--since")


def parse_time(value: str, *, option: str) -> datetime:
    """An ISO date (``2026-11-01``) or date-time; naive values are UTC. Raises QueryError."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise QueryError(
            f"{option}: {value!r} is not a duration like 30d/12h/90m/2w or an ISO date"
            if option == "--since"
            else f"{option}: {value!r} is not an ISO date or date-time (e.g. 2026-11-01)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Filters:
    """Which LLM calls a report covers; ``None`` = no restriction. Times are [start, end)."""

    start: datetime | None = None
    end: datetime | None = None
    user: str | None = None
    tenant: str | None = None
    node: str | None = None

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        for clause, value in (
            ("start_time >= CAST(? AS TIMESTAMPTZ)", self.start),
            ("start_time < CAST(? AS TIMESTAMPTZ)", self.end),
            ("user_id = ?", self.user),
            ("tenant = ?", self.tenant),
            ("node = ?", self.node),
        ):
            if value is not None:
                clauses.append(clause)
                params.append(value.isoformat() if isinstance(value, datetime) else value)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def usage_report(db: Database, by: str, filters: Filters) -> tuple[list[str], list[tuple]]:
    """Calls, tokens and cost of the filtered LLM calls, one row per ``by`` group."""
    if by not in GROUPINGS:
        raise QueryError(f"--by: {by!r} is not one of {', '.join(GROUPINGS)}")
    keys = GROUPINGS[by]
    select_keys = ", ".join(f"{expr} AS {label}" for expr, label in keys)
    group = ", ".join(expr for expr, _ in keys)
    where, params = filters.where()
    sql = f"""
        SELECT
            {select_keys},
            count(*) AS calls,
            CAST(sum(coalesce(input_tokens, 0)) AS BIGINT) AS input_tokens,
            CAST(sum(coalesce(output_tokens, 0)) AS BIGINT) AS output_tokens,
            CAST(sum(coalesce(cache_read_tokens, 0)) AS BIGINT) AS cache_read_tokens,
            CAST(sum(coalesce(reasoning_tokens, 0)) AS BIGINT) AS reasoning_tokens,
            CAST(sum(total_tokens) AS BIGINT) AS total_tokens,
            sum(cost_usd) AS cost_usd,
            count(*) FILTER (WHERE cost_usd IS NULL) AS unpriced_calls,
            round(CAST(sum(cost_usd) / nullif(sum(sum(cost_usd)) OVER (), 0) AS DOUBLE), 4)
                AS share_of_cost
        FROM llm_calls{where}
        GROUP BY {group}
        ORDER BY cost_usd DESC NULLS LAST, total_tokens DESC, {group}
    """
    return db.query(sql, params)


@dataclass
class TraceView:
    """One trace's spans (tree order left to the caller) and its per-node totals."""

    trace_id: str
    correlation_id: str | None
    span_columns: list[str]
    spans: list[tuple]
    node_columns: list[str]
    nodes: list[tuple]


_SPAN_COLUMNS = """
    span_id, parent_span_id, name, kind, service_name,
    coalesce(node, inherited_node) AS node,
    node IS NULL AND inherited_node IS NOT NULL AS node_inherited,
    coalesce(response_model, request_model) AS model,
    input_tokens, output_tokens, cache_read_tokens, reasoning_tokens,
    cost_usd, cost_source, usage_estimated, duration_ms, status_code,
    start_time, correlation_id, user_id
"""


def find_traces(db: Database, ident: str) -> list[tuple[str, datetime, datetime]]:
    """Traces whose correlation id or trace id is ``ident``: (trace_id, first, last start).

    Correlation id first, on its own: a scan of one column (~50 ms at 10 M spans; the index it
    once had cost every write its memory, migration 024), where an ``OR`` with trace_id would
    scan both.
    """
    found_sql = """
        SELECT trace_id, min(start_time) AS first_start, max(start_time) AS last_start
        FROM spans
        WHERE {column} = ?
        GROUP BY trace_id
        ORDER BY first_start
    """
    _, rows = db.query(found_sql.format(column="correlation_id"), [ident.strip()])
    if not rows:
        _, rows = db.query(found_sql.format(column="trace_id"), [ident.strip().lower()])
    return [(r[0], _as_datetime(r[1]), _as_datetime(r[2])) for r in rows]


def load_trace(db: Database, trace_id: str, first: datetime, last: datetime) -> TraceView:
    """The spans of one trace and its node totals.

    The start-time window around the spans already found lets DuckDB skip every row group
    outside it, instead of reading the trace_id column of the whole table.
    """
    window = [trace_id, (first - NODE_WINDOW).isoformat(), (last + NODE_WINDOW).isoformat()]
    in_trace = (
        "trace_id = ? AND start_time BETWEEN CAST(? AS TIMESTAMPTZ) AND CAST(? AS TIMESTAMPTZ)"
    )
    span_columns, spans = db.query(
        f"SELECT {_SPAN_COLUMNS} FROM spans WHERE {in_trace} ORDER BY start_time, span_id",
        window,
    )
    node_columns, nodes = db.query(
        f"""
        SELECT
            node,
            count(*) AS calls,
            CAST(sum(coalesce(input_tokens, 0)) AS BIGINT) AS input_tokens,
            CAST(sum(coalesce(output_tokens, 0)) AS BIGINT) AS output_tokens,
            CAST(sum(total_tokens) AS BIGINT) AS total_tokens,
            sum(cost_usd) AS cost_usd,
            count(*) FILTER (WHERE cost_usd IS NULL) AS unpriced_calls,
            sum(duration_ms) AS call_duration_ms
        FROM llm_calls
        WHERE {in_trace}
        GROUP BY node
        ORDER BY cost_usd DESC NULLS LAST, total_tokens DESC, node
        """,
        window,
    )
    at = span_columns.index("correlation_id")
    correlation = next((s[at] for s in spans if s[at]), None)
    return TraceView(trace_id, correlation, span_columns, spans, node_columns, nodes)


def seen_models(db: Database) -> list[tuple[str | None, str | None, int]]:
    """(provider, model, calls) of every model the database has calls for."""
    _, rows = db.query(
        "SELECT provider, model, calls FROM usage_by_model ORDER BY calls DESC, provider, model"
    )
    return [(r[0], r[1], int(r[2])) for r in rows]


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
