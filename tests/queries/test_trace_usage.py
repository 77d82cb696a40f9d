"""usage_by_trace reads a per-trace summary kept at append time (trace_usage, the spans appended
since its last fold, and trace_usage_parts).

Each test builds the summary the way real traffic does (several batches, children before
parents, re-sent spans, folds, reprice, an older database) and checks usage_by_trace to the
token and to the cent, and against the same question asked of the spans themselves.
"""

from __future__ import annotations

import random
import warnings
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from bench.generate import span_batch
from otel_tokens.pricing import PriceBook
from otel_tokens.reprice import reprice
from queries import store
from queries.store import append_spans, connect
from tests.queries import dataset
from tests.queries.dataset import DAY_A, TRACE_A, TRACE_B, TRACE_C

SECOND = timedelta(seconds=1)

# usage_by_trace as it was computed from spans alone (migration 007, before the summary): the
# reference every summary must equal, whatever the order the spans came in.
FROM_SPANS = """
SELECT
    trace_id,
    any_value(correlation_id) AS correlation_id,
    any_value(name) FILTER (WHERE parent_span_id IS NULL) AS root_span,
    coalesce(any_value(service_name) FILTER (WHERE parent_span_id IS NULL),
             any_value(service_name)) AS service_name,
    any_value(user_id) AS user_id,
    any_value(tenant) AS tenant,
    any_value(job_type) AS job_type,
    min(start_time) AS start_time,
    coalesce(
        any_value(duration_ms) FILTER (WHERE parent_span_id IS NULL),
        CAST(epoch_us(max(end_time)) - epoch_us(min(start_time)) AS DOUBLE) / 1000
    ) AS duration_ms,
    count(*) FILTER (WHERE llm_call) AS calls,
    CAST(coalesce(sum(input_tokens) FILTER (WHERE llm_call), 0) AS BIGINT) AS input_tokens,
    CAST(coalesce(sum(output_tokens) FILTER (WHERE llm_call), 0) AS BIGINT) AS output_tokens,
    CAST(coalesce(sum(cache_read_tokens) FILTER (WHERE llm_call), 0) AS BIGINT)
        AS cache_read_tokens,
    CAST(coalesce(sum(cache_creation_tokens) FILTER (WHERE llm_call), 0) AS BIGINT)
        AS cache_creation_tokens,
    CAST(coalesce(sum(reasoning_tokens) FILTER (WHERE llm_call), 0) AS BIGINT)
        AS reasoning_tokens,
    CAST(
        coalesce(sum(input_tokens) FILTER (WHERE llm_call), 0)
        + coalesce(sum(output_tokens) FILTER (WHERE llm_call), 0)
        AS BIGINT
    ) AS total_tokens,
    sum(cost_usd) FILTER (WHERE llm_call) AS cost_usd,
    count(*) FILTER (WHERE llm_call AND cost_usd IS NULL) AS unpriced_calls
FROM spans
WHERE llm_call OR parent_span_id IS NULL
GROUP BY trace_id
HAVING count(*) FILTER (WHERE llm_call) > 0
"""


def rows(con: duckdb.DuckDBPyConnection, sql: str, params: Any = None) -> list[dict[str, Any]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return list(con.execute(sql, params).to_arrow_table().to_pylist())


def traces(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, Any]]:
    return {r["trace_id"]: r for r in rows(con, "SELECT * FROM usage_by_trace")}


def assert_matches_spans(con: duckdb.DuckDBPyConnection) -> None:
    expected = {r["trace_id"]: r for r in rows(con, FROM_SPANS)}
    assert traces(con) == expected


def unfolded_spans(con: duckdb.DuckDBPyConnection) -> int:
    return int(
        rows(
            con,
            "SELECT count(*) AS n FROM spans"
            " WHERE appended_batch > (SELECT folded_through FROM trace_usage_state)",
        )[0]["n"]
    )


def fold_everything(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("BEGIN TRANSACTION")
    store.rebuild_trace_usage(con)
    con.execute("COMMIT")
    assert unfolded_spans(con) == 0


def short(row: dict[str, Any]) -> tuple:
    return (
        row["calls"],
        row["input_tokens"],
        row["output_tokens"],
        row["total_tokens"],
        row["cost_usd"],
        row["unpriced_calls"],
    )


def trace_a_rows(*spans: str) -> list[dict[str, Any]]:
    return [r for r in dataset.ROWS if r["trace_id"] == TRACE_A and r["span_id"][:2] in spans]


@pytest.fixture
def empty(tmp_path: Path):
    con = connect(tmp_path / "t.duckdb")
    yield con
    con.close()


def test_one_row_per_trace_with_calls_to_the_token_and_cent(con):
    got = traces(con)
    assert set(got) == {TRACE_A, TRACE_B, TRACE_C}
    assert short(got[TRACE_A]) == (3, 600, 180, 780, Decimal("0.2501"), 1)
    assert short(got[TRACE_B]) == (1, 1000, 500, 1500, Decimal("1.5"), 0)
    assert short(got[TRACE_C]) == (1, 10, 5, 15, Decimal("0.01"), 0)
    a = got[TRACE_A]
    assert (a["cache_read_tokens"], a["reasoning_tokens"], a["cache_creation_tokens"]) == (
        20,
        40,
        0,
    )
    assert got[TRACE_B]["cache_creation_tokens"] == 100
    assert_matches_spans(con)


def test_a_trace_arriving_one_span_per_batch_adds_up_exactly(empty):
    for row in trace_a_rows("a0", "a1", "a2", "a3", "a4", "a5"):
        assert append_spans(empty, dataset.table([row])) == 1
    a = traces(empty)[TRACE_A]
    assert short(a) == (3, 600, 180, 780, Decimal("0.2501"), 1)
    assert (a["root_span"], a["correlation_id"], a["user_id"], a["tenant"]) == (
        "POST /chat",
        "req-1",
        "u1",
        "acme",
    )
    assert (a["start_time"], a["duration_ms"]) == (DAY_A, 500.0)
    # read from the unfolded spans: nothing of trace A was folded into trace_usage yet
    assert rows(empty, "SELECT count(*) AS n FROM trace_usage WHERE trace_id = ?", [TRACE_A]) == [
        {"n": 0}
    ]
    assert_matches_spans(empty)


def test_calls_before_their_root_then_the_root_takes_over(empty):
    append_spans(empty, dataset.table(trace_a_rows("a3", "a5")))
    a = traces(empty)[TRACE_A]
    assert short(a) == (2, 400, 80, 480, Decimal("0.0001"), 1)
    assert a["root_span"] is None
    assert a["service_name"] == "chat-api"  # a call's, while the root is missing
    assert a["start_time"] == DAY_A + 3 * SECOND  # the first call
    assert a["duration_ms"] == 2500.0  # a3 starts at +3 s, a5 ends at +5.5 s
    assert_matches_spans(empty)

    append_spans(empty, dataset.table(trace_a_rows("a0", "a1", "a2", "a4")))
    a = traces(empty)[TRACE_A]
    assert short(a) == (3, 600, 180, 780, Decimal("0.2501"), 1)
    assert (a["root_span"], a["start_time"], a["duration_ms"]) == ("POST /chat", DAY_A, 500.0)
    assert_matches_spans(empty)


def test_a_root_without_calls_yet_is_no_row_until_a_call_comes(empty):
    append_spans(empty, dataset.table(trace_a_rows("a0", "a1")))
    assert TRACE_A not in traces(empty)
    append_spans(empty, dataset.table(trace_a_rows("a4")))
    a = traces(empty)[TRACE_A]
    assert short(a) == (1, 200, 100, 300, Decimal("0.25"), 0)
    assert (a["root_span"], a["duration_ms"]) == ("POST /chat", 500.0)


def test_only_new_rows_count_when_spans_are_sent_again(con):
    before = traces(con)
    assert append_spans(con, dataset.table()) == 0
    assert traces(con) == before
    new_call = {
        **trace_a_rows("a4")[0],
        "span_id": dataset.span_id("a6"),
        "input_tokens": 7,
        "output_tokens": 3,
        "cost_usd": Decimal("0.001"),
        "reasoning_tokens": None,
    }
    # a partly re-sent batch: all of trace A again, one new call, and the new call twice
    assert append_spans(con, dataset.table(trace_a_rows("a0", "a3", "a4") + [new_call] * 2)) == 1
    got = traces(con)
    assert short(got[TRACE_A]) == (4, 607, 183, 790, Decimal("0.2511"), 1)
    assert got[TRACE_B] == before[TRACE_B]
    assert_matches_spans(con)


def test_folding_changes_no_number(empty, monkeypatch):
    monkeypatch.setattr(store, "FOLD_SPANS_AT", 2)
    for row in dataset.ROWS:
        append_spans(empty, dataset.table([row]))
    got = traces(empty)
    assert short(got[TRACE_A]) == (3, 600, 180, 780, Decimal("0.2501"), 1)
    assert got[TRACE_A]["root_span"] == "POST /chat"
    assert_matches_spans(empty)
    # the twelfth append folded the last two spans: everything is in trace_usage, once
    assert unfolded_spans(empty) == 0
    assert rows(empty, "SELECT count(*) AS n, count(DISTINCT trace_id) AS d FROM trace_usage") == [
        {"n": 3, "d": 3}
    ]


def test_any_arrival_order_and_batching_matches_the_spans(empty, monkeypatch):
    """A generated month of traces, shuffled (children often before parents), re-sent in part,
    in batches of random sizes that cut traces apart, folding now and then."""
    monkeypatch.setattr(store, "FOLD_SPANS_AT", 300)
    gen = duckdb.connect()
    spans = span_batch(
        gen,
        seed=11,
        first_trace=0,
        last_trace=400,
        t0=datetime(2025, 1, 1, tzinfo=UTC),
        step_us=6e9,
        limit=10_000,
    )
    gen.close()
    rnd = random.Random(3)
    order = list(range(spans.num_rows))
    rnd.shuffle(order)
    done = 0
    while done < len(order):
        size = rnd.randrange(1, 400)
        take = order[done : done + size]
        resent = rnd.sample(order[:done], min(done, 20))  # already stored: must not count
        append_spans(empty, spans.take(take + resent))
        done += size
    assert rows(empty, "SELECT count(*) AS n FROM spans") == [{"n": spans.num_rows}]
    got = traces(empty)
    assert len(got) > 300
    assert 0 < unfolded_spans(empty) < 300  # folded now and then, not at every append
    assert_matches_spans(empty)


@pytest.mark.parametrize("folded", [False, True], ids=["unfolded", "folded"])
def test_reprice_moves_the_trace_cost_with_the_calls(db_path: Path, folded: bool):
    con = connect(db_path)
    if folded:
        fold_everything(con)
    book = PriceBook({"my-llama-70b": {"input": 1.0, "output": 2.0, "provider": "vllm"}})
    reprice(con, book)
    a = traces(con)[TRACE_A]
    calls = rows(
        con,
        "SELECT sum(cost_usd) AS cost, count(*) - count(cost_usd) AS unpriced FROM llm_calls "
        "WHERE trace_id = ?",
        [TRACE_A],
    )[0]
    assert a["unpriced_calls"] == calls["unpriced"] == 0
    assert a["cost_usd"] == calls["cost"]
    assert a["cost_usd"] > Decimal("0.00036")  # a5's new price plus a3 and a4 at catalogue prices
    assert_matches_spans(con)
    con.close()


@pytest.mark.parametrize("folded", [False, True], ids=["unfolded", "folded"])
def test_reprice_to_no_price_gives_null_cost_not_zero(empty, folded: bool):
    # a call stored with a local price for a model no catalogue knows: repricing removes it
    call = {**trace_a_rows("a5")[0], "cost_usd": Decimal("0.5"), "cost_source": "local"}
    append_spans(empty, dataset.table([*trace_a_rows("a0"), call]))
    if folded:
        fold_everything(empty)
    assert short(traces(empty)[TRACE_A]) == (1, 300, 30, 330, Decimal("0.5"), 0)
    reprice(empty, PriceBook())
    assert short(traces(empty)[TRACE_A]) == (1, 300, 30, 330, None, 1)
    assert_matches_spans(empty)


def test_a_database_written_before_the_summary_is_filled_on_connect(tmp_path: Path):
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute(
        "CREATE TABLE schema_migrations (name VARCHAR PRIMARY KEY, checksum VARCHAR NOT NULL,"
        " applied_at TIMESTAMPTZ NOT NULL)"
    )
    for m in store.migrations():
        if m.name < "016":
            con.execute(m.sql)
            con.execute("INSERT INTO schema_migrations VALUES (?, ?, now())", [m.name, m.checksum])
    con.register("b", dataset.table())
    con.execute(
        "INSERT INTO spans BY NAME SELECT *,"
        " is_llm_call(operation, input_tokens, output_tokens) AS llm_call FROM b"
    )
    con.close()
    con = connect(path)
    got = traces(con)
    assert short(got[TRACE_A]) == (3, 600, 180, 780, Decimal("0.2501"), 1)
    assert set(got) == {TRACE_A, TRACE_B, TRACE_C}
    assert_matches_spans(con)
    con.close()


def test_a_changed_call_rule_recounts_the_summary(tmp_path: Path, edit_migration):
    con = connect(tmp_path / "m.duckdb")
    append_spans(con, dataset.table())
    # invoke_agent spans count as calls now (trace C's agent span: 999 + 999 tokens)
    edit_migration("003_is_llm_call", "NOT IN ('invoke_agent', ", "NOT IN (")
    assert store.migrate(con) == ["003_is_llm_call"]
    c = traces(con)[TRACE_C]
    assert short(c) == (2, 1009, 1004, 2013, Decimal("0.01"), 1)
    assert_matches_spans(con)
    con.close()
