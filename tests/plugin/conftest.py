"""Plugin test fixtures: in-memory spans and metrics, the OpenAI instrumentor, replay server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from otel_tokens import metrics
from otel_tokens.auto import add_stamping_processor
from tests.support.fixtures import replay  # noqa: F401 - re-exported fixture

_EXPORTER = InMemorySpanExporter()


def _global_provider() -> TracerProvider:
    """The process-wide SDK provider (``node()`` spans go to the global one); set once."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        trace.set_tracer_provider(TracerProvider())
        provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    if not getattr(provider, "_otel_tokens_test_exporter", False):
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        provider._otel_tokens_test_exporter = True  # type: ignore[attr-defined]
    add_stamping_processor(provider)
    return provider


@pytest.fixture
def provider() -> TracerProvider:
    return _global_provider()


@pytest.fixture
def exporter(provider: TracerProvider) -> Iterator[InMemorySpanExporter]:
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


@pytest.fixture
def instrumented(provider: TracerProvider, exporter: InMemorySpanExporter) -> Iterator[None]:
    from otel_tokens.instrumentation.openai import OpenAIInstrumentor

    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        yield
    finally:
        instrumentor.uninstrument()


@pytest.fixture
def metric_reader() -> Iterator[InMemoryMetricReader]:
    reader = InMemoryMetricReader()
    metrics.use_meter_provider(MeterProvider(metric_readers=[reader]))
    try:
        yield reader
    finally:
        metrics.use_meter_provider(None)


def client_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.kind == SpanKind.CLIENT]
