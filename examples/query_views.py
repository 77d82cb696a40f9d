"""Query the otel-tokens views from Python: a DuckDB file directly, or a running collector.

    .venv/bin/python examples/query_views.py --db demo-output/otel-tokens.duckdb
    .venv/bin/python examples/query_views.py --collector http://127.0.0.1:4320
    .venv/bin/python examples/query_views.py --db otel-tokens.duckdb --correlation-id req-acme-0001

DuckDB lets one process write a database file: while the collector runs, read through its admin
query API (``--collector``, read-only SQL over HTTP); when it is stopped, open the file read-only
(``--db``). The views are plain SQL (``queries/*.sql``), so the same statements work in the
DuckDB CLI, in a notebook or in any tool that reads DuckDB.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any

Query = Callable[[str], tuple[list[str], list[Sequence[Any]]]]


def local(path: str) -> Query:
    import duckdb

    con = duckdb.connect(path, read_only=True)

    def run(sql: str) -> tuple[list[str], list[Sequence[Any]]]:
        # Through Arrow: TIMESTAMPTZ values come back as aware datetimes without needing pytz.
        table = con.sql(sql).to_arrow_table()
        return table.column_names, [list(row.values()) for row in table.to_pylist()]

    return run


def remote(admin_url: str, token: str | None = None) -> Query:
    def run(sql: str) -> tuple[list[str], list[Sequence[Any]]]:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(
            f"{admin_url.rstrip('/')}/v1/query",
            data=json.dumps({"sql": sql}).encode(),
            headers=headers,
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            body = json.load(response)
        return body["columns"], body["rows"]

    return run


def show(title: str, query: Query, sql: str) -> None:
    columns, rows = query(sql)
    print(f"\n== {title}\n-- {' '.join(sql.split())}")
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))
    if not rows:
        print("(no rows)")


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--db", help="a DuckDB file written by the collector (opened read-only)")
    source.add_argument("--collector", help="admin URL of a running collector")
    parser.add_argument("--token", help="bearer token when the admin listener has auth on")
    parser.add_argument("--correlation-id", help="also show this request's node breakdown")
    args = parser.parse_args()
    query = local(args.db) if args.db else remote(args.collector, args.token)

    show(
        "Which nodes spend the money?",
        query,
        "SELECT node, calls, total_tokens, cost_usd, share_of_cost "
        "FROM usage_by_node ORDER BY cost_usd DESC NULLS LAST",
    )
    show(
        "Which users, interactive vs background?",
        query,
        "SELECT user_id, calls, total_tokens, cost_usd, interactive_calls, background_calls "
        "FROM usage_by_user ORDER BY cost_usd DESC NULLS LAST LIMIT 10",
    )
    show(
        "Tokens and cost per user in the last 24 hours (for a sliding-window limit)",
        query,
        "SELECT * FROM user_usage_since(now() - INTERVAL 1 DAY) LIMIT 10",
    )
    show(
        "The most expensive requests",
        query,
        "SELECT correlation_id, user_id, calls, total_tokens, cost_usd "
        "FROM usage_by_trace ORDER BY cost_usd DESC NULLS LAST LIMIT 5",
    )
    show(
        "Models without a price (their calls carry no cost)", query, "SELECT * FROM unpriced_models"
    )
    if args.correlation_id:
        cid = args.correlation_id.replace("'", "''")
        show(
            f"Nodes of request {args.correlation_id}",
            query,
            "SELECT n.* FROM trace_nodes AS n JOIN usage_by_trace AS t USING (trace_id) "
            f"WHERE t.correlation_id = '{cid}'",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
