"""End to end: the real OpenTelemetry SDK and OTLP exporters (HTTP and gRPC) → collector → DuckDB.

Spans use our conventions and foreign ones (OpenInference, OpenLLMetry, OpenLIT, old semconv);
the stored rows must add up to the exact per-user, per-node and per-trace totals.
"""

from __future__ import annotations

import json

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, format_trace_id

OURS = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
    "gen_ai.usage.input_tokens": 100,
    "gen_ai.usage.output_tokens": 20,
    "otel_tokens.node": "intent_classification",
    "enduser.id": "u1",
    "otel_tokens.correlation_id": "req-1",
    "app.feature": "triage",
}
OPENINFERENCE = {
    "llm.model_name": "gpt-4o",
    "llm.provider": "openai",
    "llm.token_count.prompt": 50,
    "llm.token_count.completion": 5,
    "llm.token_count.total": 55,
    "user.id": "u2",
    "graph.node.name": "retrieval",
    "app.feature": "search",
}
OPENLLMETRY = {
    "gen_ai.system": "anthropic",
    "gen_ai.request.model": "claude-3-5-haiku-20241022",
    "gen_ai.usage.prompt_tokens": 30,
    "gen_ai.usage.completion_tokens": 7,
    "gen_ai.usage.total_tokens": 37,
    "traceloop.entity.name": "summarize",
    "enduser.id": "u1",
}
OPENLIT = {
    "gen_ai.system": "openai",
    "gen_ai.operation.name": "chat",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.usage.input_tokens": 11,
    "gen_ai.usage.output_tokens": 3,
    "gen_ai.usage.cost": 0.5,
    "gen_ai.user.id": "u2",
    "otel_tokens.node": "answer",
}
OLD_SEMCONV = {
    "gen_ai.system": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.usage.prompt_tokens": 40,
    "gen_ai.usage.completion_tokens": 8,
    "enduser.id": "u1",
    "otel_tokens.node": "answer",
}


def _emit(exporter) -> dict[str, str]:
    """Two traces through one exporter; returns {trace label: trace id hex}."""
    provider = TracerProvider(resource=Resource.create({"service.name": "chat-api"}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer("e2e")
    ids: dict[str, str] = {}
    with tracer.start_as_current_span("POST /chat", kind=SpanKind.SERVER) as root:
        root.set_attribute("enduser.id", "u1")
        root.set_attribute("otel_tokens.correlation_id", "req-1")
        with tracer.start_as_current_span("node intent_classification"):
            with tracer.start_as_current_span(
                "chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes=OURS
            ):
                pass
        with tracer.start_as_current_span(
            "retrieve", kind=SpanKind.CLIENT, attributes=OPENINFERENCE
        ):
            pass
        with tracer.start_as_current_span(
            "anthropic.chat", kind=SpanKind.CLIENT, attributes=OPENLLMETRY
        ):
            pass
        ids["A"] = format_trace_id(root.get_span_context().trace_id)
    with tracer.start_as_current_span("job", kind=SpanKind.CONSUMER) as root:
        with tracer.start_as_current_span("openai.chat", kind=SpanKind.CLIENT, attributes=OPENLIT):
            pass
        with tracer.start_as_current_span(
            "openai.chat", kind=SpanKind.CLIENT, attributes=OLD_SEMCONV
        ):
            pass
        ids["B"] = format_trace_id(root.get_span_context().trace_id)
    assert provider.force_flush(30_000)
    provider.shutdown()
    return ids


@pytest.fixture(params=["http", "grpc"])
def exporter_for(request):
    def make(collector):
        if request.param == "http":
            return HttpExporter(endpoint=collector.http_url)
        return GrpcExporter(endpoint=collector.grpc_endpoint, insecure=True)

    return make


def test_sdk_exporters_deliver_every_span_with_its_structure_and_attributes(
    collector, exporter_for
):
    ids = _emit(exporter_for(collector))
    rows = collector.query(
        "SELECT trace_id, name, kind, service_name, scope_name, parent_span_id IS NULL, attributes"
        " FROM spans ORDER BY start_time"
    )
    assert len(rows) == 8
    assert {r[0] for r in rows} == set(ids.values())
    by_name = {r[1]: r for r in rows}
    assert by_name["POST /chat"][2:6] == ("SERVER", "chat-api", "e2e", True)
    assert by_name["chat gpt-4o-mini"][2] == "CLIENT"
    # Attributes no column takes are kept in the JSON column.
    assert json.loads(by_name["chat gpt-4o-mini"][6])["app.feature"] == "triage"
    assert json.loads(by_name["retrieve"][6])["app.feature"] == "search"
    # Parent links survive: every non-root span's parent is a stored span of the same trace.
    orphans = collector.query(
        "SELECT count(*) FROM spans c WHERE parent_span_id IS NOT NULL AND NOT EXISTS"
        " (SELECT 1 FROM spans p WHERE p.trace_id = c.trace_id AND p.span_id = c.parent_span_id)"
    )
    assert orphans == [(0,)]


def test_foreign_conventions_add_up_per_user_node_and_trace(collector, exporter_for):
    ids = _emit(exporter_for(collector))
    per_user = dict(
        (u, (i, o))
        for u, i, o in collector.query(
            "SELECT user_id, sum(input_tokens), sum(output_tokens) FROM spans"
            " WHERE input_tokens IS NOT NULL GROUP BY user_id"
        )
    )
    assert per_user == {"u1": (100 + 30 + 40, 20 + 7 + 8), "u2": (50 + 11, 5 + 3)}
    per_node = dict(
        (n, (i, o))
        for n, i, o in collector.query(
            "SELECT node, sum(input_tokens), sum(output_tokens) FROM spans"
            " WHERE input_tokens IS NOT NULL GROUP BY node"
        )
    )
    assert per_node == {
        "intent_classification": (100, 20),
        "retrieval": (50, 5),
        "summarize": (30, 7),
        "answer": (11 + 40, 3 + 8),
    }
    per_trace = dict(
        (t, (i, o))
        for t, i, o in collector.query(
            "SELECT trace_id, sum(input_tokens), sum(output_tokens) FROM spans GROUP BY trace_id"
        )
    )
    assert per_trace == {ids["A"]: (180, 32), ids["B"]: (51, 11)}
    # OpenLIT's cost is the provider's and is kept as such.
    assert collector.query(
        "SELECT cost_usd::DOUBLE, cost_source FROM spans"
        " WHERE attributes->>'$.\"gen_ai.user.id\"' = 'u2'"
    ) == [(0.5, "provider")]
    providers = dict(
        collector.query(
            "SELECT name, provider FROM spans WHERE input_tokens IS NOT NULL AND name <> 'retrieve'"
        )
    )
    assert providers["anthropic.chat"] == "anthropic"


def test_views_show_the_same_totals_when_they_exist(collector, exporter_for):
    ids = _emit(exporter_for(collector))
    views = {r[0] for r in collector.query("SELECT view_name FROM duckdb_views()")}
    assert {"usage_by_user", "usage_by_node", "usage_by_trace"} <= views
    users = collector.query(
        "SELECT user_id, calls, input_tokens, output_tokens FROM usage_by_user ORDER BY user_id"
    )
    assert users == [("u1", 3, 170, 35), ("u2", 2, 61, 8)]
    nodes = collector.query(
        "SELECT node, input_tokens, output_tokens FROM usage_by_node ORDER BY node"
    )
    assert nodes == [
        ("answer", 51, 11),
        ("intent_classification", 100, 20),
        ("retrieval", 50, 5),
        ("summarize", 30, 7),
    ]
    traces = dict(
        (t, (c, i))
        for t, c, i in collector.query(
            "SELECT trace_id, correlation_id, input_tokens FROM usage_by_trace"
        )
    )
    assert traces == {ids["A"]: ("req-1", 180), ids["B"]: (None, 51)}
