"""Every view over the known dataset (tests/queries/dataset.py), to the token and to the cent."""

from __future__ import annotations

import warnings
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from queries import store
from queries.store import append_spans, connect, migrate
from tests.queries import dataset
from tests.queries.dataset import DAY_A, DAY_B, TRACE_A, TRACE_B, TRACE_C, span_id

SECOND = timedelta(seconds=1)


def rows(con: duckdb.DuckDBPyConnection, sql: str, params: Any = None) -> list[dict[str, Any]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return list(con.execute(sql, params).to_arrow_table().to_pylist())


def by(con: duckdb.DuckDBPyConnection, view: str, key: str) -> dict[Any, dict[str, Any]]:
    return {r[key]: r for r in rows(con, f"SELECT * FROM {view}")}


def test_llm_calls_hold_only_calls_and_resolve_nodes_through_ancestors(con):
    calls = {r["span_id"]: r for r in rows(con, "SELECT * FROM llm_calls")}
    assert set(calls) == {span_id(s) for s in ("a3", "a4", "a5", "b2", "c1")}
    assert calls[span_id("a3")]["node"] == "plan"  # grandparent's node, through a plain span
    assert calls[span_id("a3")]["own_node"] is None
    assert calls[span_id("a4")]["node"] == "answer"  # its own node wins over the parent's
    assert calls[span_id("a5")]["node"] == "plan"  # parent's node
    assert calls[span_id("c1")]["node"] is None  # no node anywhere above
    assert calls[span_id("a3")]["total_tokens"] == 150
    assert calls[span_id("b2")]["is_background"] is True
    assert calls[span_id("a3")]["day"] == DAY_A.date()


def test_usage_by_user_splits_interactive_and_background(con):
    users = by(con, "usage_by_user", "user_id")
    u1 = users["u1"]
    assert (u1["calls"], u1["input_tokens"], u1["output_tokens"], u1["total_tokens"]) == (
        4,
        1600,
        680,
        2280,
    )
    assert (u1["cache_read_tokens"], u1["cache_creation_tokens"], u1["reasoning_tokens"]) == (
        20,
        100,
        40,
    )
    assert u1["cost_usd"] == Decimal("1.7501")  # the unpriced call adds nothing, not 0-as-known
    assert u1["unpriced_calls"] == 1
    assert (u1["interactive_calls"], u1["background_calls"]) == (3, 1)
    assert (u1["interactive_tokens"], u1["background_tokens"]) == (780, 1500)
    assert u1["interactive_cost_usd"] == Decimal("0.2501")
    assert u1["background_cost_usd"] == Decimal("1.50")
    assert u1["first_seen"] == DAY_A + 3 * SECOND  # the first call, not the root span
    assert u1["last_seen"] == DAY_B + 2 * SECOND
    u2 = users["u2"]
    assert (u2["calls"], u2["total_tokens"], u2["cost_usd"]) == (1, 15, Decimal("0.01"))
    assert u2["background_cost_usd"] is None


def test_usage_by_node_counts_calls_only_and_shares_the_priced_cost(con):
    nodes = by(con, "usage_by_node", "node")
    assert set(nodes) == {"plan", "answer", "extract", None}
    plan = nodes["plan"]
    assert (plan["calls"], plan["input_tokens"], plan["output_tokens"]) == (2, 400, 80)
    assert plan["cost_usd"] == Decimal("0.0001")
    assert plan["unpriced_calls"] == 1
    assert plan["avg_tokens_per_call"] == 240
    assert nodes["answer"]["cost_usd"] == Decimal("0.25")
    assert nodes["extract"]["total_tokens"] == 1500
    assert nodes[None]["cost_usd"] == Decimal("0.01")
    assert nodes["extract"]["share_of_cost"] == pytest.approx(1.50 / 1.7601)
    assert sum(n["share_of_cost"] for n in nodes.values()) == pytest.approx(1.0)


def test_usage_by_trace_carries_root_span_and_correlation_id(con):
    traces = by(con, "usage_by_trace", "trace_id")
    assert set(traces) == {TRACE_A, TRACE_B, TRACE_C}
    a = traces[TRACE_A]
    assert a["correlation_id"] == "req-1"
    assert a["root_span"] == "POST /chat"
    assert a["user_id"] == "u1"
    assert a["start_time"] == DAY_A
    assert a["duration_ms"] == 500.0
    assert (a["calls"], a["total_tokens"], a["cost_usd"], a["unpriced_calls"]) == (
        3,
        780,
        Decimal("0.2501"),
        1,
    )
    assert traces[TRACE_B]["job_type"] == "ingest_emails"
    # the invoke_agent span's 999 + 999 tokens are not a call
    assert traces[TRACE_C]["total_tokens"] == 15


def test_trace_nodes_break_one_request_down_by_node(con):
    got = {
        r["node"]: r
        for r in rows(con, "SELECT * FROM trace_nodes WHERE correlation_id = ?", ["req-1"])
    }
    assert set(got) == {"plan", "answer"}
    assert (got["plan"]["calls"], got["plan"]["total_tokens"]) == (2, 480)
    assert got["answer"]["cost_usd"] == Decimal("0.25")
    assert got["answer"]["share_of_trace_cost"] == pytest.approx(0.25 / 0.2501)


def test_usage_by_model_day_job_type_and_tenant(con):
    models = {(r["provider"], r["model"]): r for r in rows(con, "SELECT * FROM usage_by_model")}
    mini = models[("openai", "gpt-4o-mini")]
    assert (mini["calls"], mini["total_tokens"], mini["cost_usd"]) == (3, 465, Decimal("0.2601"))
    assert models[("vllm", "my-llama-70b")]["cost_usd"] is None
    assert models[("anthropic", "claude-sonnet-4-20250514")]["cost_usd"] == Decimal("1.5")

    days = {(r["day"], r["model"]): r for r in rows(con, "SELECT * FROM usage_by_day")}
    assert days[(DAY_A.date(), "gpt-4o-mini")]["calls"] == 2
    assert days[(DAY_A.date(), "gpt-4o-mini")]["cost_usd"] == Decimal("0.2501")
    assert days[(DAY_B.date(), "claude-sonnet-4-20250514")]["background_calls"] == 1

    jobs = by(con, "usage_by_job_type", "job_type")
    assert set(jobs) == {"interactive", "ingest_emails"}
    assert (jobs["interactive"]["calls"], jobs["interactive"]["cost_usd"]) == (
        4,
        Decimal("0.2601"),
    )
    assert jobs["ingest_emails"]["total_tokens"] == 1500

    tenants = by(con, "usage_by_tenant", "tenant")
    acme = tenants["acme"]
    assert (acme["calls"], acme["users"], acme["cost_usd"]) == (4, 1, Decimal("1.7501"))
    assert acme["background_cost_usd"] == Decimal("1.5")
    assert tenants["globex"]["total_tokens"] == 15


def test_unpriced_models_lists_calls_that_carry_no_cost(con):
    assert rows(
        con, "SELECT provider, model, calls, input_tokens, output_tokens FROM unpriced_models"
    ) == [
        {
            "provider": "vllm",
            "model": "my-llama-70b",
            "calls": 1,
            "input_tokens": 300,
            "output_tokens": 30,
        }
    ]


def test_user_usage_since_sums_interactive_and_background_in_the_window(con):
    got = {
        r["user_id"]: r
        for r in rows(con, "SELECT * FROM user_usage_since(CAST(? AS TIMESTAMPTZ))", [DAY_A])
    }
    assert set(got) == {"u1"}  # u2's only call is 40 days old
    assert (got["u1"]["calls"], got["u1"]["total_tokens"], got["u1"]["cost_usd"]) == (
        4,
        2280,
        Decimal("1.7501"),
    )


def test_a_group_with_only_unpriced_calls_has_null_cost_not_zero(con):
    assert by(con, "usage_by_model", "model")["my-llama-70b"]["cost_usd"] is None


def test_resent_spans_change_no_total(con):
    before = rows(con, "SELECT * FROM usage_by_user ORDER BY user_id")
    assert append_spans(con, dataset.table()) == 0
    assert append_spans(con, dataset.table(dataset.ROWS[:4] + dataset.ROWS[:4])) == 0
    assert rows(con, "SELECT * FROM usage_by_user ORDER BY user_id") == before
    assert rows(con, "SELECT count(*) AS n FROM spans") == [{"n": len(dataset.ROWS)}]


def test_a_parent_arriving_after_its_child_still_gives_the_child_its_node(tmp_path: Path):
    con = connect(tmp_path / "late.duckdb")
    children = [r for r in dataset.ROWS if r["span_id"][:2] in ("a3", "a5")]
    parents = [r for r in dataset.ROWS if r["trace_id"] == TRACE_A and r not in children]
    append_spans(con, dataset.table(children))
    nodes = {r["span_id"]: r["node"] for r in rows(con, "SELECT span_id, node FROM llm_calls")}
    assert nodes == {span_id("a3"): None, span_id("a5"): None}  # ancestors not there yet
    awaiting = "SELECT span_id FROM calls_awaiting_node ORDER BY span_id"
    assert [r["span_id"] for r in rows(con, awaiting)] == [span_id("a3"), span_id("a5")]
    append_spans(con, dataset.table(parents))
    nodes = {r["span_id"]: r["node"] for r in rows(con, "SELECT span_id, node FROM llm_calls")}
    assert nodes == {span_id("a3"): "plan", span_id("a4"): "answer", span_id("a5"): "plan"}
    assert rows(con, awaiting) == []  # resolved: no later batch walks them again
    con.close()


def test_an_existing_database_lists_its_calls_awaiting_a_node(tmp_path: Path):
    """A database written before migration 023 gets its unresolved calls listed on connect."""
    path = tmp_path / "old.duckdb"
    con = connect(path)
    append_spans(con, dataset.table([r for r in dataset.ROWS if r["span_id"][:2] == "a5"]))
    con.execute("DROP TABLE calls_awaiting_node")
    con.execute("DELETE FROM schema_migrations WHERE name = '023_calls_awaiting_node'")
    con.close()
    con = connect(path)
    assert [r["span_id"] for r in rows(con, "SELECT span_id FROM calls_awaiting_node")] == [
        span_id("a5")
    ]
    con.close()


def test_a_duplicate_inside_one_batch_is_stored_once(tmp_path: Path):
    con = connect(tmp_path / "dup.duckdb")
    assert append_spans(con, dataset.table([dataset.ROWS[3], dataset.ROWS[3]])) == 1
    con.close()


def test_migrations_are_idempotent(tmp_path: Path):
    con = connect(tmp_path / "m.duckdb")
    assert migrate(con) == []
    names = [r["name"] for r in rows(con, "SELECT name FROM schema_migrations ORDER BY name")]
    assert names == [m.name for m in store.migrations()]
    con.close()


def test_a_database_from_before_024_loses_its_correlation_id_index(tmp_path: Path):
    """Migration 015's ART index is dropped (DuckDB holds it whole in memory on every write);
    the stored spans stay and new ones still load."""
    path = tmp_path / "indexed.duckdb"
    con = connect(path)
    append_spans(con, dataset.table(dataset.ROWS[:4]))
    con.execute("CREATE INDEX spans_correlation_id ON spans (correlation_id)")
    con.execute("DELETE FROM schema_migrations WHERE name = '024_drop_correlation_id_index'")
    con.close()
    con = connect(path)
    assert rows(con, "SELECT index_name FROM duckdb_indexes() WHERE table_name = 'spans'") == []
    assert append_spans(con, dataset.table()) == len(dataset.ROWS) - 4
    assert rows(con, "SELECT count(*) AS n FROM spans") == [{"n": len(dataset.ROWS)}]
    con.close()


def test_a_changed_view_is_reapplied_and_the_table_is_not(tmp_path: Path, edit_migration):
    con = connect(tmp_path / "m.duckdb")
    append_spans(con, dataset.table())
    edit_migration("011_usage_by_job_type", "'interactive'", "'foreground'")
    assert [n for n in migrate(con)] == ["011_usage_by_job_type"]
    assert "foreground" in by(con, "usage_by_job_type", "job_type")
    assert rows(con, "SELECT count(*) AS n FROM spans") == [{"n": len(dataset.ROWS)}]
    assert migrate(con) == []
    con.close()


def test_inherited_nodes_are_backfilled_when_the_column_is_added(tmp_path: Path):
    """A database written before migration 002 gets its calls' nodes on the next connect."""
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    old = [m for m in store.migrations() if m.name == "001_spans"]
    con.execute(
        "CREATE TABLE schema_migrations (name VARCHAR PRIMARY KEY, checksum VARCHAR NOT NULL,"
        " applied_at TIMESTAMPTZ NOT NULL)"
    )
    for m in old:
        con.execute(m.sql)
        con.execute("INSERT INTO schema_migrations VALUES (?, ?, now())", [m.name, m.checksum])
    con.register("b", dataset.table())
    con.execute("INSERT INTO spans SELECT * FROM b")
    con.close()
    con = connect(path)
    nodes = {r["span_id"]: r["node"] for r in rows(con, "SELECT span_id, node FROM llm_calls")}
    assert nodes[span_id("a3")] == "plan"
    con.close()


def test_a_missing_link_arriving_later_completes_the_walk(tmp_path: Path):
    """call a3 -> step a2 -> node plan a1: without a2 the walk cannot reach a1; when a2 arrives
    (here carrying a node of its own) a3 takes the nearest node."""
    con = connect(tmp_path / "closer.duckdb")
    a = [r for r in dataset.ROWS if r["trace_id"] == TRACE_A and r["span_id"][:2] != "a2"]
    append_spans(con, dataset.table(a))
    assert rows(con, "SELECT node FROM llm_calls WHERE span_id = ?", [span_id("a3")]) == [
        {"node": None}
    ]
    step = next(r for r in dataset.ROWS if r["span_id"][:2] == "a2")
    append_spans(con, dataset.table([{**step, "node": "retrieval"}]))
    assert rows(con, "SELECT node FROM llm_calls WHERE span_id = ?", [span_id("a3")]) == [
        {"node": "retrieval"}
    ]
    con.close()


def test_usage_by_tenant_counts_distinct_users_not_calls_nor_no_user(tmp_path: Path):
    con = connect(tmp_path / "tenants.duckdb")
    call = next(r for r in dataset.ROWS if r["span_id"][:2] == "c1")
    rows_ = [
        {**call, "span_id": dataset.span_id(f"x{i}"), "user_id": user}
        for i, user in enumerate(["u2", "u2", "u3", None])
    ]
    append_spans(con, dataset.table(rows_))
    globex = by(con, "usage_by_tenant", "tenant")["globex"]
    assert (globex["calls"], globex["users"], globex["total_tokens"]) == (4, 2, 60)
    assert globex["cost_usd"] == Decimal("0.04")
    assert (globex["interactive_calls"], globex["unpriced_calls"]) == (4, 0)
    con.close()
