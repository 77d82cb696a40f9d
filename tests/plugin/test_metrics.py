"""The plugin's metric instruments: when records are skipped, and which span exemplars name."""

from __future__ import annotations

from typing import Any

import openai
from opentelemetry import trace
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.metrics._internal import _ProxyMeterProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otel_tokens
from otel_tokens import attributes as attr
from otel_tokens.instrumentation.openai import patch
from otel_tokens.metrics import GenAIMetrics, MetricAttributes
from tests.plugin.conftest import client_spans
from tests.support.replay_server import ReplayFactory

CHAT = "openai/test_chat_completion_with_content.yaml"
ATTRIBUTES = MetricAttributes({attr.GEN_AI_PROVIDER_NAME: "openai"})


def _points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    points: dict[str, list[Any]] = {}
    data = reader.get_metrics_data()
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                points.setdefault(metric.name, []).extend(metric.data.data_points)
    return points


def test_proxy_meter_drops_until_a_provider_is_set_then_records() -> None:
    # The API hands out proxy instruments before any MeterProvider is set: records are
    # skipped while they would be dropped, and made once the proxy has real instruments.
    proxy = _ProxyMeterProvider()
    genai = GenAIMetrics(proxy.get_meter("otel_tokens"))
    assert genai.dropped
    reader = InMemoryMetricReader()
    proxy.on_set_meter_provider(MeterProvider(metric_readers=[reader]))
    assert not genai.dropped
    genai.record(ATTRIBUTES, input_tokens=3, output_tokens=2, duration_s=0.1, cost_usd=1e-6)
    points = _points(reader)
    assert sorted(p.sum for p in points["gen_ai.client.token.usage"]) == [2, 3]
    assert points["otel_tokens.cost"][0].value == 1e-6


def test_no_op_meter_drops_and_sdk_meter_records() -> None:
    assert GenAIMetrics(NoOpMeterProvider().get_meter("otel_tokens")).dropped
    assert not GenAIMetrics(MeterProvider().get_meter("otel_tokens")).dropped


def test_exemplars_name_the_span_current_when_the_call_started(
    replay: ReplayFactory,
    exporter: InMemorySpanExporter,
    instrumented: None,
    metric_reader: InMemoryMetricReader,
) -> None:
    server = replay(CHAT)
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="k", max_retries=0)
    with otel_tokens.node("summarise"):
        node_span = trace.get_current_span().get_span_context()
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Say this is a test"}]
        )
    assert len(client_spans(exporter)) == 1
    points = _points(metric_reader)
    exemplars = [e for p in points["gen_ai.client.token.usage"] for e in p.exemplars]
    assert exemplars
    assert {(e.trace_id, e.span_id) for e in exemplars} == {(node_span.trace_id, node_span.span_id)}


class _Client:
    """Stands in for an SDK client: only its base URL is read."""

    def __init__(self, url: str) -> None:
        self.base_url = self._base_url = openai.OpenAI(base_url=url, api_key="k").base_url


class _Resource:
    def __init__(self, client: _Client) -> None:
        self._client = client


def test_server_cache_follows_the_client_and_its_base_url() -> None:
    client = _Client("https://example.openai.azure.com/v1")
    assert patch.provider_and_server(_Resource(client)) == (
        "azure.ai.openai",
        "example.openai.azure.com",
        None,
    )
    client.base_url = client._base_url = openai.OpenAI(
        base_url="http://127.0.0.1:8080/v1", api_key="k"
    ).base_url
    assert patch.provider_and_server(_Resource(client)) == ("openai", "127.0.0.1", 8080)
    # A new client, even one reusing a dead client's id, is never given the old answer.
    for url, host in (("http://a.example/v1", "a.example"), ("http://b.example/v1", "b.example")):
        assert patch.provider_and_server(_Resource(_Client(url)))[1] == host
