"""The analyst CLI over a real DuckDB file holding the known dataset (tests/queries/dataset.py)."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from otel_tokens.cli import main
from otel_tokens.pricing import PriceBook
from otel_tokens.usage import Usage
from tests.queries.dataset import DAY_A, TRACE_A


def run(db: Path, *args: str, env: dict[str, str] | None = None):
    result = CliRunner().invoke(main, ["--db", str(db), *args], env=env)
    return result


def ok(db: Path, *args: str) -> str:
    result = run(db, *args)
    assert result.exit_code == 0, result.output
    return result.output


def one_line_error(result, *fragments: str) -> None:
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    for fragment in fragments:
        assert fragment in lines[0]


def test_report_by_node_as_json_gives_exact_numbers(db_path):
    docs = json.loads(ok(db_path, "report", "--by", "node", "--format", "json"))
    got = {d["node"]: d for d in docs}
    assert got["plan"]["calls"] == 2
    assert got["plan"]["total_tokens"] == 480
    assert Decimal(got["extract"]["cost_usd"]) == Decimal("1.5")
    assert got["plan"]["unpriced_calls"] == 1
    assert docs[0]["node"] == "extract"  # most expensive first


def test_report_filters_are_independent_flags(db_path):
    docs = json.loads(ok(db_path, "report", "--user", "u2", "--format", "json"))
    assert [(d["user_id"], d["calls"]) for d in docs] == [("u2", 1)]
    docs = json.loads(ok(db_path, "report", "--since", "30d", "--by", "tenant", "--format", "json"))
    assert [d["tenant"] for d in docs] == ["acme"]  # globex's call is 40 days old
    node_filter = ("--tenant", "acme", "--node", "plan", "--by", "model", "--format", "json")
    docs = json.loads(ok(db_path, "report", *node_filter))
    assert {(d["model"], d["calls"]) for d in docs} == {("gpt-4o-mini", 1), ("my-llama-70b", 1)}
    day = DAY_A.date().isoformat()
    docs = json.loads(
        ok(
            db_path,
            "report",
            "--from",
            day,
            "--to",
            f"{day}T23:59:59",
            "--by",
            "day",
            "--format",
            "json",
        )
    )
    assert [(d["day"], d["calls"]) for d in docs] == [(day, 3)]


def test_report_by_job_type_names_interactive_calls(db_path):
    docs = json.loads(ok(db_path, "report", "--by", "job_type", "--format", "json"))
    assert {d["job_type"]: d["calls"] for d in docs} == {"interactive": 4, "ingest_emails": 1}


def test_report_formats_table_csv_markdown(db_path):
    table = ok(db_path, "report", "--by", "user")
    assert "u1" in table and "1.750100" in table
    rows = list(csv.DictReader(io.StringIO(ok(db_path, "report", "--format", "csv"))))
    assert {r["user_id"]: Decimal(r["cost_usd"]) for r in rows} == {
        "u1": Decimal("1.7501"),
        "u2": Decimal("0.01"),
    }
    md = ok(db_path, "report", "--by", "model", "--format", "markdown")
    assert md.splitlines()[0].startswith("| provider | model | calls |")
    assert "| vllm | my-llama-70b | 1 |" in md


def test_report_writes_output_file(db_path, tmp_path):
    out = tmp_path / "r.csv"
    ok(db_path, "report", "--format", "csv", "--output", str(out))
    assert out.read_text().startswith("user_id,calls,")


def test_report_html_is_a_page(db_path, tmp_path):
    out = tmp_path / "r.html"
    ok(db_path, "report", "--format", "html", "--output", str(out))
    assert "<svg" in out.read_text() or "<html" in out.read_text().lower()


@pytest.mark.parametrize("since", ["3x", "yesterday", "30"])
def test_bad_since_is_one_line_and_non_zero(db_path, since):
    one_line_error(run(db_path, "report", "--since", since), "--since", since)


def test_since_and_from_together_are_refused(db_path):
    one_line_error(run(db_path, "report", "--since", "1d", "--from", "2026-01-01"), "--since")


def test_trace_by_correlation_id_shows_tree_inherited_nodes_and_node_totals(db_path):
    out = ok(db_path, "trace", "req-1")
    assert TRACE_A in out and "req-1" in out
    assert "plan ^" in out  # a3's node comes from its grandparent
    assert "per node" in out
    docs = json.loads(ok(db_path, "trace", "req-1", "--format", "json"))
    assert docs[0]["trace_id"] == TRACE_A
    assert len(docs[0]["spans"]) == 6
    nodes = {n["node"]: n for n in docs[0]["nodes"]}
    assert (nodes["plan"]["calls"], nodes["plan"]["total_tokens"]) == (2, 480)
    assert Decimal(nodes["answer"]["cost_usd"]) == Decimal("0.25")


def test_trace_by_trace_id_in_any_case(db_path):
    docs = json.loads(ok(db_path, "trace", TRACE_A.upper(), "--format", "json"))
    assert docs[0]["correlation_id"] == "req-1"
    out = ok(db_path, "trace", TRACE_A, "--format", "markdown")
    assert "| node plan |" in out or "node plan" in out


def test_trace_that_matches_nothing_says_so(db_path):
    one_line_error(run(db_path, "trace", "req-404"), "no trace or correlation id matches req-404")


def test_sql_runs_a_query(db_path):
    docs = json.loads(ok(db_path, "sql", "SELECT count(*) AS n FROM llm_calls", "--format", "json"))
    assert docs == [{"n": 5}]
    assert "usage_by_node" in ok(db_path, "sql", "SHOW TABLES")


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO spans (trace_id, span_id, start_time) VALUES ('x', 'y', now())",
        "DROP TABLE spans",
        "ATTACH 'other.duckdb' AS other",
        "COPY spans TO 'out.csv'",
        "SELECT 1; DROP TABLE spans",
        "UPDATE spans SET cost_usd = 0",
        "SET threads = 1",
    ],
)
def test_sql_rejects_anything_but_one_query(db_path, statement):
    one_line_error(run(db_path, "sql", statement), "read-only")
    assert json.loads(
        ok(db_path, "sql", "SELECT count(*) AS n FROM spans", "--format", "json")
    ) == [{"n": 12}]


def test_sql_cannot_read_other_files(db_path, tmp_path):
    secret = tmp_path / "secret.csv"
    secret.write_text("a\n1\n")
    result = run(db_path, "sql", f"SELECT * FROM read_csv('{secret}')")
    assert result.exit_code != 0


def test_sql_error_is_one_line(db_path):
    one_line_error(run(db_path, "sql", "SELECT no_such_column FROM spans"), "no_such_column")


def test_db_comes_from_environment(db_path):
    result = CliRunner().invoke(
        main, ["sql", "SELECT 1 AS one", "--format", "csv"], env={"OTEL_TOKENS_DB": str(db_path)}
    )
    assert result.output == "one\n1\n"


def test_prices_model_shows_catalogue_price(db_path):
    out = ok(db_path, "prices", "gpt-4o-mini")
    assert "gpt-4o-mini" in out and "0.15" in out and "catalogue" in out
    one_line_error(run(db_path, "prices", "no-such-model-xyz"), "no price known")


def test_prices_check_fails_on_unpriced_models_and_on_bad_overrides(db_path, tmp_path):
    result = run(db_path, "prices", "check")
    assert result.exit_code != 0
    assert "vllm/my-llama-70b" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("my-llama-70b: {input: lots}\n")
    one_line_error(run(db_path, "prices", "--prices", str(bad), "check"), str(bad))
    good = tmp_path / "prices.yaml"
    good.write_text("my-llama-70b: {input: 1.0, output: 2.0, provider: vllm}\n")
    result = run(db_path, "prices", "--prices", str(good), "check")
    assert result.exit_code == 0, result.output


def test_reprice_prices_local_and_unpriced_calls_and_keeps_provider_costs(db_path, tmp_path):
    prices = tmp_path / "prices.yaml"
    prices.write_text("my-llama-70b: {input: 1.0, output: 2.0, provider: vllm}\n")
    out = ok(db_path, "reprice", "--prices", str(prices))
    assert "repriced 4 calls" in out  # a3, a4, a5, c1; b2's cost came from the provider
    costs = {
        d["span_id"][:2]: d
        for d in json.loads(
            ok(
                db_path,
                "sql",
                "SELECT span_id, cost_usd, cost_source, pricing_ref FROM llm_calls",
                "--format",
                "json",
            )
        )
    }
    assert Decimal(costs["a5"]["cost_usd"]) == Decimal("0.00036")  # 300 x $1/M + 30 x $2/M
    assert costs["a5"]["cost_source"] == "local"
    assert Decimal(costs["b2"]["cost_usd"]) == Decimal("1.5")
    expected = PriceBook().cost(Usage(100, 50, 20), "gpt-4o-mini", "openai", DAY_A)
    assert expected is not None
    assert float(costs["a3"]["cost_usd"]) == pytest.approx(expected.amount, abs=1e-10)
    assert json.loads(
        ok(db_path, "sql", "SELECT count(*) AS n FROM unpriced_models", "--format", "json")
    ) == [{"n": 0}]


def test_a_locked_file_without_a_collector_is_one_clear_sentence(db_path, tmp_path):
    import subprocess
    import sys

    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True);"
            " time.sleep(60)",
            str(db_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        result = run(db_path, "--collector", "http://127.0.0.1:9", "report")
        one_line_error(result, "locked", "no collector answers at http://127.0.0.1:9")
    finally:
        holder.kill()
        holder.wait()


def test_while_a_collector_holds_the_file_queries_go_through_its_api(db_path):
    from otel_tokens.demo import DB_NAME, CollectorProcess, write_collector_config

    work = db_path.parent
    assert db_path.name == DB_NAME
    collector = CollectorProcess(write_collector_config(work), work / "collector.log")
    collector.start()
    try:
        docs = json.loads(
            ok(
                db_path,
                "--collector",
                collector.admin_url,
                "report",
                "--by",
                "node",
                "--format",
                "json",
            )
        )
        assert {d["node"]: d["total_tokens"] for d in docs} == {
            "extract": 1500,
            "answer": 300,
            "plan": 480,
            None: 15,
        }
        assert Decimal(docs[0]["cost_usd"]) == Decimal("1.5")
        docs = json.loads(
            ok(db_path, "--collector", collector.admin_url, "trace", "req-1", "--format", "json")
        )
        assert len(docs[0]["spans"]) == 6
        one_line_error(
            run(db_path, "--collector", collector.admin_url, "sql", "DROP TABLE spans"),
            "read-only",
        )
    finally:
        collector.stop()


def test_every_command_has_help(db_path):
    for command in (
        ["report"],
        ["trace"],
        ["sql"],
        ["prices"],
        ["prices", "check"],
        ["reprice"],
        ["collector"],
        ["demo"],
    ):
        result = CliRunner().invoke(main, [*command, "--help"])
        assert result.exit_code == 0, command
        assert "Usage:" in result.output


def test_a_missing_database_file_is_an_error_not_a_new_empty_file(tmp_path):
    missing = tmp_path / "typo.duckdb"
    one_line_error(run(missing, "report"), "no database at", str(missing))
    assert not missing.exists()
