"""`otel-tokens demo` runs end to end and reports exactly the tokens the provider billed."""

from __future__ import annotations

import io
import json
import re
from collections import Counter
from pathlib import Path

import duckdb
import pytest

from otel_tokens.demo import REPO_ROOT, run
from otel_tokens.demo.fake_provider import LedgerEntry, load_ledger

SCENARIO = json.loads((REPO_ROOT / "examples" / "agent_graph" / "scenario.json").read_text())


def node_of(entry: LedgerEntry) -> str:
    """Which node of agent_graph made a call, from what the provider saw (see app.py)."""
    assert entry.correlation_id is not None, "every app call carries X-Correlation-Id"
    if entry.correlation_id.startswith("job-"):
        return "summarize_email" if entry.endpoint == "chat.completions" else "index_email"
    if entry.endpoint == "embeddings":
        return "retrieval"
    if entry.endpoint == "generate_content":
        return "fact_extraction"
    return "answer_generation" if entry.stream else "intent_classification"


def user_of(entry: LedgerEntry) -> str:
    for item in SCENARIO["requests"] + SCENARIO["ingest_jobs"]:
        if item["correlation_id"] == entry.correlation_id:
            return str(item["user"])
    raise AssertionError(f"unknown correlation id {entry.correlation_id}")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, list[LedgerEntry]]:
    work_dir = tmp_path_factory.mktemp("demo")
    out = io.StringIO()
    status = run(work_dir, out=out)
    assert status == 0, out.getvalue()
    return work_dir, out.getvalue(), load_ledger(work_dir / "provider-ledger.jsonl")


def _totals(ledger: list[LedgerEntry], key: str) -> dict[str, Counter[str]]:
    totals: dict[str, Counter[str]] = {}
    for e in ledger:
        name = node_of(e) if key == "node" else user_of(e)
        c = totals.setdefault(name, Counter())
        c["calls"] += 1
        c["input_tokens"] += e.input_tokens
        c["output_tokens"] += e.output_tokens
        c["cache_read_tokens"] += e.cache_read_tokens
        c["cache_creation_tokens"] += e.cache_creation_tokens
        c["reasoning_tokens"] += e.reasoning_tokens
    return totals


def test_every_scenario_call_reached_the_provider(
    demo: tuple[Path, str, list[LedgerEntry]],
) -> None:
    _, _, ledger = demo
    per_request = 4  # intent, retrieval, answer, facts
    per_email = 2  # summarize, index
    emails = sum(len(j["emails"]) for j in SCENARIO["ingest_jobs"])
    assert len(ledger) == per_request * len(SCENARIO["requests"]) + per_email * emails
    assert {node_of(e) for e in ledger} == {
        "intent_classification",
        "retrieval",
        "answer_generation",
        "fact_extraction",
        "summarize_email",
        "index_email",
    }


def test_stored_usage_by_node_and_user_equals_what_the_provider_billed(
    demo: tuple[Path, str, list[LedgerEntry]],
) -> None:
    work_dir, _, ledger = demo
    con = duckdb.connect(str(work_dir / "otel-tokens.duckdb"), read_only=True)
    columns = (
        "calls, input_tokens, output_tokens, cache_read_tokens, cache_creation_tokens, "
        "reasoning_tokens"
    )
    for view, key in (("usage_by_node", "node"), ("usage_by_user", "user_id")):
        expected = {
            name: [
                c["calls"],
                c["input_tokens"],
                c["output_tokens"],
                c["cache_read_tokens"],
                c["cache_creation_tokens"],
                c["reasoning_tokens"],
            ]
            for name, c in _totals(ledger, "node" if key == "node" else "user").items()
        }
        rows = con.execute(f"SELECT {key}, {columns} FROM {view}").fetchall()
        assert {r[0]: list(r[1:]) for r in rows} == expected, view


def test_calls_are_priced_except_the_self_hosted_model(
    demo: tuple[Path, str, list[LedgerEntry]],
) -> None:
    work_dir, _, _ = demo
    con = duckdb.connect(str(work_dir / "otel-tokens.duckdb"), read_only=True)
    unpriced = con.execute("SELECT model FROM unpriced_models").fetchall()
    assert unpriced == [("llama-3.1-8b-instruct-local",)]
    priced = con.execute(
        "SELECT count(*) FROM llm_calls WHERE cost_usd > 0 AND cost_source = 'local'"
    ).fetchone()
    emails = sum(len(j["emails"]) for j in SCENARIO["ingest_jobs"])  # one index_email each
    assert priced is not None and priced[0] == 4 * len(SCENARIO["requests"]) + emails


def test_background_job_and_context_are_stamped_on_calls(
    demo: tuple[Path, str, list[LedgerEntry]],
) -> None:
    work_dir, _, _ = demo
    con = duckdb.connect(str(work_dir / "otel-tokens.duckdb"), read_only=True)
    rows = con.execute(
        "SELECT DISTINCT correlation_id, user_id, tenant, job_type FROM llm_calls ORDER BY 1"
    ).fetchall()
    expected = sorted(
        [(r["correlation_id"], r["user"], r["tenant"], None) for r in SCENARIO["requests"]]
        + [
            (j["correlation_id"], j["user"], j["tenant"], "ingest_emails")
            for j in SCENARIO["ingest_jobs"]
        ]
    )
    assert rows == expected
    services = con.execute("SELECT DISTINCT service_name FROM spans").fetchall()
    assert services == [("agent-graph-demo",)]


def _line_with(text: str, name: str) -> str:
    lines = [ln for ln in text.splitlines() if re.search(rf"(^|\W){re.escape(name)}(\W|$)", ln)]
    assert lines, f"{name!r} not in the output"
    return lines[0]


def _has_number(line: str, value: int) -> bool:
    return f"{value:,}" in line or re.search(rf"(^|[^\d,.]){value}([^\d,.]|$)", line) is not None


def test_printed_reports_show_every_node_and_user_with_exact_totals(
    demo: tuple[Path, str, list[LedgerEntry]],
) -> None:
    _, out, ledger = demo
    by_node = out.split("$ otel-tokens report --by node")[1].split(
        "$ otel-tokens report --by user"
    )[0]
    by_user = out.split("$ otel-tokens report --by user")[1].split("$ otel-tokens trace")[0]
    for section, key in ((by_node, "node"), (by_user, "user")):
        for name, c in _totals(ledger, key).items():
            line = _line_with(section, name)
            total = c["input_tokens"] + c["output_tokens"]
            assert _has_number(line, total), f"{name}: {total} not in {line!r}"


def test_printed_trace_shows_the_request_tree(demo: tuple[Path, str, list[LedgerEntry]]) -> None:
    _, out, _ = demo
    tree = out.split("$ otel-tokens trace req-acme-0001")[1].split("Done in")[0]
    for node in ("intent_classification", "retrieval", "answer_generation", "fact_extraction"):
        assert node in tree
    assert "claude-haiku-4-5" in tree and "gemini-2.5-flash" in tree


def test_progress_lines_and_exploration_commands_are_printed(
    demo: tuple[Path, str, list[LedgerEntry]],
) -> None:
    work_dir, out, _ = demo
    steps = [ln for ln in out.splitlines() if re.match(r"\[\d/7\] ", ln)]
    assert len(steps) == 7
    assert f"otel-tokens --db {work_dir / 'otel-tokens.duckdb'} trace req-acme-0001" in out
    assert (work_dir / "report.html").read_text().count('class="chart"') == 3


def test_a_failing_step_ends_the_demo_with_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "otel-config.yaml").mkdir()  # the demo cannot write its collector config here
    status = run(tmp_path, out=io.StringIO())
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1
    assert len(err) == 1 and err[0].startswith("otel-tokens demo: ")


def test_neither_the_app_nor_the_collector_logged_an_error(
    demo: tuple[Path, str, list[LedgerEntry]],
) -> None:
    work_dir, _, _ = demo
    app_log = (work_dir / "app.log").read_text()
    assert "Traceback" not in app_log and "WARNING" not in app_log, app_log
    collector_log = (work_dir / "collector.log").read_text()
    assert " ERROR " not in collector_log and "Traceback" not in collector_log, collector_log


def test_streamed_openai_answers_asked_for_usage_though_the_app_did_not(
    demo: tuple[Path, str, list[LedgerEntry]],
) -> None:
    _, _, ledger = demo
    streams = [e for e in ledger if e.provider == "openai" and e.stream]
    assert len(streams) == sum(1 for r in SCENARIO["requests"] if r["tenant"] == "globex")
    # app.py passes no stream_options: the plugin injected include_usage, and the app (which
    # indexes choices[0] on every chunk) never saw the usage-only chunk.
    assert all(e.include_usage for e in streams)
