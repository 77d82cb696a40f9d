"""configure(): idempotent wiring of the stamping processor, instrumentors and prices."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider

import otel_tokens
from otel_tokens.instrumentation import genai_span
from otel_tokens.processor import StampingProcessor
from otel_tokens.usage import Usage


def stamping_processors(provider: TracerProvider) -> int:
    processors = provider._active_span_processor._span_processors
    return sum(isinstance(p, StampingProcessor) for p in processors)


def test_configure_twice_adds_the_processor_once() -> None:
    provider = TracerProvider()
    assert otel_tokens.configure(tracer_provider=provider, instrument="none") is provider
    otel_tokens.configure(tracer_provider=provider, instrument="none")
    assert stamping_processors(provider) == 1


def test_configure_prices_override_the_catalogue() -> None:
    provider = TracerProvider()
    try:
        otel_tokens.configure(
            tracer_provider=provider,
            instrument="none",
            prices={"my-llama": {"input": 1.0, "output": 2.0}},
        )
        book = genai_span.price_book()
        assert book is not None
        cost = book.cost(Usage(input_tokens=1_000_000, output_tokens=1_000_000), "my-llama")
        assert cost is not None and cost.amount == 3.0
    finally:
        genai_span.set_price_book(None)
