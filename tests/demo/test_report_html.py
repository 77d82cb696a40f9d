"""The HTML report is one self-contained page whose SVG charts a real browser renders."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from otel_tokens.query import Database
from otel_tokens.report_html import PALETTE, bar_list_chart, render
from queries.store import append_spans, connect, spans_table
from tests.demo.png import color_counts

DAY0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
EVIL_USER = '<script>alert("x")</script>&co'


def _known_dataset(path: Path) -> None:
    """Three days of calls: two priced models, one unpriced, one call inheriting its node."""
    cols: dict[str, list[Any]] = {
        c: []
        for c in (
            "trace_id",
            "span_id",
            "parent_span_id",
            "name",
            "kind",
            "start_time",
            "end_time",
            "operation",
            "provider",
            "request_model",
            "input_tokens",
            "output_tokens",
            "cost_usd",
            "node",
            "user_id",
            "tenant",
            "correlation_id",
        )
    }

    def span(trace: int, span_id: int, parent: int | None, day: int, **values: Any) -> None:
        start = DAY0 + timedelta(days=day, minutes=span_id)
        row = {
            "trace_id": f"{trace:032x}",
            "span_id": f"{span_id:016x}",
            "parent_span_id": None if parent is None else f"{parent:016x}",
            "name": values.pop("name", "chat"),
            "kind": values.pop("kind", "CLIENT"),
            "start_time": start,
            "end_time": start + timedelta(seconds=1),
            **values,
        }
        for c in cols:
            cols[c].append(row.get(c))

    def call(
        trace: int,
        span_id: int,
        parent: int | None,
        day: int,
        user: str,
        node: str | None,
        provider: str,
        model: str,
        tokens: tuple[int, int],
        cost: str | None,
    ) -> None:
        span(
            trace,
            span_id,
            parent,
            day,
            operation="chat",
            provider=provider,
            request_model=model,
            input_tokens=tokens[0],
            output_tokens=tokens[1],
            cost_usd=None if cost is None else Decimal(cost),
            node=node,
            user_id=user,
            tenant="acme",
            correlation_id=f"req-{trace}",
        )

    call(
        1, 1, None, 0, "alice", "intent_classification", "openai", "gpt-4o-mini", (100, 20), "0.50"
    )
    call(
        1,
        2,
        None,
        0,
        "alice",
        "answer_generation",
        "anthropic",
        "claude-sonnet-4",
        (900, 300),
        "2.00",
    )
    call(
        2,
        3,
        None,
        1,
        "bob",
        "answer_generation",
        "anthropic",
        "claude-sonnet-4",
        (800, 200),
        "1.25",
    )
    # A call without its own node, under a node span: llm_calls resolves "fact_extraction".
    span(3, 4, None, 2, name="node fact_extraction", kind="INTERNAL", node="fact_extraction")
    call(3, 5, 4, 2, EVIL_USER, None, "openai", "gpt-4o-mini", (50, 10), "0.25")
    call(3, 6, 4, 2, EVIL_USER, None, "vllm", "my-llama-70b", (400, 100), None)
    con = connect(path)
    append_spans(con, spans_table(cols))
    con.close()


@pytest.fixture
def report(tmp_path: Path) -> str:
    db_path = tmp_path / "known.duckdb"
    _known_dataset(db_path)
    return render(Database(db_path), None, now=DAY0 + timedelta(days=3))


def test_report_totals_and_rankings_match_the_known_dataset(report: str) -> None:
    assert "$4.00" in report  # 0.50 + 2.00 + 1.25 + 0.25; the unpriced call adds nothing
    assert "2,880" in report  # all tokens, priced or not
    users = report.split('id="users"')[1].split('id="nodes"')[0]
    assert users.index("alice") < users.index("bob")  # ranked by cost: 2.50 before 1.25
    nodes = report.split('id="nodes"')[1].split('id="unpriced"')[0]
    assert "fact_extraction" in nodes  # inherited from the parent node span
    unpriced = report.split('id="unpriced"')[1]
    assert "my-llama-70b" in unpriced and "gpt-4o-mini" not in unpriced


def test_report_escapes_data_and_loads_nothing_external(report: str) -> None:
    assert "<script" not in report
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;co" in report
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", report)
    assert "@import" not in report and "url(" not in report


def test_report_filters_restrict_the_calls_that_are_summed(tmp_path: Path) -> None:
    db_path = tmp_path / "known.duckdb"
    _known_dataset(db_path)
    page = render(Database(db_path), {"user": "bob"}, now=DAY0 + timedelta(days=3))
    assert "$1.25" in page and "alice" not in page and "user = bob" in page
    page = render(Database(db_path), {"since": "1d"}, now=DAY0 + timedelta(days=3))
    assert "$0.25" in page and "bob" not in page


def test_empty_database_renders_a_page_without_charts(tmp_path: Path) -> None:
    connect(tmp_path / "empty.duckdb").close()
    page = render(Database(tmp_path / "empty.duckdb"), None)
    assert "No priced calls in this period." in page and "<svg" not in page


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail(
            "chromium is not installed: run tests/demo/install_chromium.sh (Debian package "
            "'chromium'); the HTML report test needs a real browser and does not skip"
        )
    return path


def _browser(args: list[str], page: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            *args,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def test_report_charts_render_in_headless_chromium(report: str, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(report, encoding="utf-8")
    dom = _browser(["--dump-dom"], page).stdout
    # The browser's DOM, not our text: the SVGs were parsed as SVG, the bars are there.
    assert len(re.findall(r"<svg[^>]*class=\"chart\"", dom)) == 3
    daily = dom.split('id="cost-by-day"')[1].split("</svg>")[0]
    assert len(re.findall(r'<rect class="bar"', daily)) == 4  # day 0: 2 models, day 1: 1, day 2: 1
    assert "<script" not in dom
    screenshot = tmp_path / "report.png"
    _browser(["--window-size=1000,1700", f"--screenshot={screenshot}"], page)
    counts = color_counts(screenshot)
    # Painted pixels in the series colours: claude (largest cost), gpt-4o-mini, and the
    # user/node bars in the first colour. Legend swatches alone would be 100 pixels each.
    assert counts[PALETTE[0]] > 3000, counts.most_common(8)
    assert counts[PALETTE[1]] > 500, counts.most_common(8)


def test_cli_writes_the_html_report_with_its_filters(tmp_path: Path) -> None:
    db_path = tmp_path / "known.duckdb"
    _known_dataset(db_path)
    out = tmp_path / "r.html"
    cli = Path(sys.executable).parent / "otel-tokens"
    subprocess.run(
        [
            str(cli),
            "--db",
            str(db_path),
            "report",
            "--format",
            "html",
            "--output",
            str(out),
            "--from",
            "2026-03-01",
            "--to",
            "2026-03-02",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert "$2.50" in page and "bob" not in page  # only day 0: alice's two calls
    assert page.count('class="chart"') == 3


def test_an_unpriced_node_is_labelled_unpriced_not_zero_dollars() -> None:
    rows = [
        {"name": "answer", "cost_usd": Decimal("1.5"), "total_tokens": 900},
        {"name": "summarize_email", "cost_usd": None, "total_tokens": 465},
    ]
    svg = bar_list_chart("top-nodes", rows, "(no node)")
    assert "summarize_email: unpriced" in svg and "answer: $1.50" in svg
    assert "$0<" not in svg
