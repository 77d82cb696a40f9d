"""Admin listener: /healthz, Prometheus /metrics and the read-only query API (team interface 4)."""

from __future__ import annotations

import pytest
import requests

from collector.admin import is_allowed_query
from tests.collector.otlp_requests import protobuf_request, span_spec

PB = {"Content-Type": "application/x-protobuf"}


def test_healthz(collector):
    r = requests.get(collector.admin_url + "/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def test_query_api_returns_columns_types_and_json_encoded_rows(collector):
    spec = span_spec(attributes={"x": 1})
    assert requests.post(collector.http_url, data=protobuf_request([spec]), headers=PB).ok
    r = requests.post(
        collector.admin_url + "/v1/query",
        json={"sql": "SELECT span_id, start_time, duration_ms, 1.5::DECIMAL(4,2) AS d FROM spans"},
    )
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["columns"] == ["span_id", "start_time", "duration_ms", "d"]
    assert doc["types"] == ["VARCHAR", "TIMESTAMP WITH TIME ZONE", "DOUBLE", "DECIMAL(4,2)"]
    [[span_id, start, duration, d]] = doc["rows"]
    assert span_id == spec["span_id"].hex()
    assert start.startswith("2025-11-23") and duration == 250.0 and d == "1.50"


def test_query_api_takes_parameters(collector):
    r = requests.post(
        collector.admin_url + "/v1/query", json={"sql": "SELECT ? + 1 AS n", "params": [41]}
    )
    assert r.json()["rows"] == [[42]]


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM spans",
        "INSERT INTO spans (trace_id) VALUES ('x')",
        "DROP TABLE spans",
        "SELECT 1; DELETE FROM spans",
        "COPY spans TO '/tmp/x.csv'",
        "ATTACH '/tmp/other.duckdb'",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_text('/etc/hostname')",
        "PRAGMA database_list",
        "SET threads = 1",
        "INSTALL httpfs",
        "",
    ],
)
def test_query_api_refuses_anything_but_one_read_only_select(collector, sql):
    r = requests.post(collector.admin_url + "/v1/query", json={"sql": sql})
    assert r.status_code == 400
    assert set(r.json()) == {"error"} and "\n" not in r.json()["error"]


def test_file_access_is_off_even_when_the_text_check_is_fooled(collector):
    r = requests.post(
        collector.admin_url + "/v1/query", json={"sql": "SELECT * FROM \"read_csv\"('/etc/passwd')"}
    )
    assert r.status_code == 400


def test_a_failing_select_is_400_with_one_line(collector):
    r = requests.post(collector.admin_url + "/v1/query", json={"sql": "SELECT nope FROM spans"})
    assert r.status_code == 400 and "nope" in r.json()["error"]
    assert requests.post(collector.admin_url + "/v1/query", data=b"not json").status_code == 400


def test_only_one_select_without_file_functions_is_allowed():
    assert is_allowed_query("SELECT 1")
    assert is_allowed_query("WITH x AS (SELECT 1) SELECT * FROM x")
    assert not is_allowed_query("UPDATE spans SET name = 'x'")
    assert not is_allowed_query("SELECT 1; SELECT 2")
    assert not is_allowed_query("SELECT * FROM parquet_scan('x.parquet')")


def test_metrics_count_spans_and_tokens_by_provider_model_node(collector):
    llm = span_spec(
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": 120,
            "gen_ai.usage.output_tokens": 30,
            "otel_tokens.node": "answer",
        }
    )
    body = protobuf_request([llm, span_spec(), span_spec(trace_id=b"bad")])
    for _ in range(2):  # the re-send must not count twice
        assert requests.post(collector.http_url, data=body, headers=PB).ok
    text = requests.get(collector.admin_url + "/metrics").text
    assert "otel_tokens_collector_spans_received_total 6" in text
    assert "otel_tokens_collector_spans_accepted_total 4" in text
    assert "otel_tokens_collector_spans_rejected_total 2" in text
    assert (
        'otel_tokens_collector_exporter_counter{exporter="duckdb",counter="stored_spans"} 2' in text
    )
    assert 'otel_tokens_collector_responses_total{transport="http",code="200"} 2' in text
    if collector.query("SELECT count(*) FROM spans WHERE input_tokens IS NOT NULL")[0][0]:
        labels = 'provider="openai",model="gpt-4o-mini",node="answer"'
        assert f'otel_tokens_tokens_total{{{labels},type="input"}} 120' in text
        assert f'otel_tokens_tokens_total{{{labels},type="output"}} 30' in text
        assert f"otel_tokens_llm_calls_total{{{labels}}} 1" in text


def test_admin_requires_the_token_when_auth_is_on(start_collector):
    collector = start_collector(auth_token="s3cret")
    q = {"sql": "SELECT 1"}
    assert requests.post(collector.admin_url + "/v1/query", json=q).status_code == 401
    assert requests.get(collector.admin_url + "/metrics").status_code == 401
    auth = {"Authorization": "Bearer s3cret"}
    assert requests.post(collector.admin_url + "/v1/query", json=q, headers=auth).status_code == 200
    assert requests.get(collector.admin_url + "/healthz").status_code == 200  # probes stay open


def test_token_metrics_count_only_the_new_spans_of_a_partly_re_sent_export(collector):
    def llm(tokens: int):
        return span_spec(
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": tokens,
                "gen_ai.usage.output_tokens": 1,
                "otel_tokens.node": "n",
            }
        )

    first, second = llm(100), llm(7)
    assert requests.post(collector.http_url, data=protobuf_request([first]), headers=PB).ok
    assert requests.post(collector.http_url, data=protobuf_request([first, second]), headers=PB).ok
    # gen_ai_normalize (in the default test pipeline) fills the token columns the metrics count.
    assert collector.query("SELECT count(*) FROM spans WHERE input_tokens IS NOT NULL")[0][0] == 2
    text = requests.get(collector.admin_url + "/metrics").text
    labels = 'provider="openai",model="gpt-4o-mini",node="n"'
    assert f'otel_tokens_tokens_total{{{labels},type="input"}} 107' in text
    assert f"otel_tokens_llm_calls_total{{{labels}}} 2" in text
