"""The examples work against a real collector, and the dashboards use metrics it really exposes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.demo.conftest import RunningCollector

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
BIN = Path(sys.executable).parent


def _send_curl_span(
    collector: RunningCollector, correlation_id: str
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "OTLP_HTTP": collector.otlp_http,
        "CORRELATION_ID": correlation_id,
        "INPUT_TOKENS": "1200",
        "OUTPUT_TOKENS": "300",
    }
    return subprocess.run(
        ["bash", str(EXAMPLES / "curl" / "send_span.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )


def test_curl_example_stores_a_priced_llm_call_under_its_node(
    running_collector: RunningCollector,
) -> None:
    _send_curl_span(running_collector, "curl-test-0001")
    rows = running_collector.query(
        "SELECT name, kind, parent_span_id IS NULL, node, user_id, tenant, provider, "
        "request_model, input_tokens, output_tokens, CAST(cost_usd AS DOUBLE) "
        "FROM spans WHERE correlation_id = 'curl-test-0001' ORDER BY start_time"
    )
    assert rows[0][:6] == [
        "node invoice_summary",
        "INTERNAL",
        True,
        "invoice_summary",
        "erin@initech.test",
        "initech",
    ]
    call = rows[1]
    assert call[:3] == ["chat gpt-4o-mini", "CLIENT", False]
    assert call[6:10] == ["openai", "gpt-4o-mini", 1200, 300]
    # gpt-4o-mini: 0.15 USD / M input, 0.60 USD / M output (genai-prices 0.2.3).
    assert call[10] == pytest.approx(1200 * 0.15e-6 + 300 * 0.60e-6)


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads((EXAMPLES / "grafana" / "otel-tokens-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    exprs += [v["query"]["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    rules = yaml.safe_load((EXAMPLES / "prometheus" / "otel-tokens-rules.yml").read_text())
    exprs += [r["expr"] for g in rules["groups"] for r in g["rules"]]
    return exprs


def test_dashboard_and_rules_use_only_metrics_and_labels_the_collector_exposes(
    running_collector: RunningCollector,
) -> None:
    _send_curl_span(running_collector, "curl-test-0002")
    exposition = running_collector.metrics()
    exposed = set(re.findall(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{|\s)", exposition, re.MULTILINE))
    labels = set(re.findall(r'([a-zA-Z_]+)="', exposition)) | {"job", "instance"}
    used = set()
    for expr in _dashboard_exprs():
        used |= set(re.findall(r"\b(otel_tokens_[a-z_]+|process_resident_memory_bytes)\b", expr))
        for group in re.findall(r"\bby \(([^)]*)\)", expr):
            assert {g.strip() for g in group.split(",")} <= labels, expr
    assert used, "the dashboard queries no otel-tokens metric"
    assert used <= exposed, f"not exposed by /metrics: {sorted(used - exposed)}"
    # The call sent above shows up in the series the dashboard charts.
    assert re.search(
        r'otel_tokens_tokens_total\{[^}]*model="gpt-4o-mini"[^}]*type="input"[^}]*\} 1200',
        exposition,
    )


def test_prometheus_scrape_config_targets_the_admin_metrics_path() -> None:
    config = yaml.safe_load((EXAMPLES / "prometheus" / "prometheus.yml").read_text())
    job = config["scrape_configs"][0]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"] == ["127.0.0.1:4320"]


def test_query_views_example_prints_every_view_from_the_file(
    running_collector: RunningCollector,
) -> None:
    _send_curl_span(running_collector, "curl-test-0003")
    running_collector.stop()
    proc = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "query_views.py"),
            "--db",
            str(running_collector.db_path),
            "--correlation-id",
            "curl-test-0003",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "invoice_summary" in proc.stdout and "erin@initech.test" in proc.stdout
    assert proc.stdout.count("\n== ") == 6


def test_query_views_example_reads_through_a_running_collector(
    running_collector: RunningCollector,
) -> None:
    _send_curl_span(running_collector, "curl-test-0004")
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "query_views.py"), "--collector", running_collector.admin],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "invoice_summary" in proc.stdout
