"""Wiring: tracer provider if none, the stamping processor, and the installed SDK instrumentors."""

from __future__ import annotations

import importlib
import logging
import os
import threading
from collections.abc import Collection, Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)

from otel_tokens import context as scopes
from otel_tokens.config import Settings, load_settings
from otel_tokens.processor import StampingProcessor

logger = logging.getLogger(__name__)

# SDK name -> (module that must be importable, our instrumentor "module:Class").
SDK_INSTRUMENTORS: Mapping[str, tuple[str, str]] = {
    "openai": ("openai", "otel_tokens.instrumentation.openai:OpenAIInstrumentor"),
    "anthropic": ("anthropic", "otel_tokens.instrumentation.anthropic:AnthropicInstrumentor"),
    "google_genai": (
        "google.genai",
        "otel_tokens.instrumentation.google_genai:GoogleGenAIInstrumentor",
    ),
}

_lock = threading.Lock()
_stamped_providers: list[Any] = []  # providers that already carry our processor
_instrumented: dict[str, BaseInstrumentor] = {}


def _has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def default_tracer_provider() -> Any:
    """An SDK TracerProvider exporting per the standard OTEL_* variables (OTLP by default).

    ``OTEL_TRACES_EXPORTER``: ``otlp`` (default; protocol from ``OTEL_EXPORTER_OTLP_PROTOCOL``,
    ``http/protobuf`` by default, or ``grpc``), ``console`` or ``none``.
    """
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SimpleSpanProcessor,
        SpanExporter,
    )

    provider = TracerProvider(resource=Resource.create())
    names = os.environ.get("OTEL_TRACES_EXPORTER", "otlp")
    for raw in names.split(","):
        name = raw.strip().lower()
        exporter: SpanExporter
        if name in ("", "none"):
            continue
        if name == "console":
            provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
            continue
        if name == "otlp":
            protocol = os.environ.get(
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            )
            if protocol.strip() == "grpc":
                from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
                    OTLPSpanExporter as GrpcExporter,
                )

                exporter = GrpcExporter()
            else:
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
                    OTLPSpanExporter as HttpExporter,
                )

                exporter = HttpExporter()
            provider.add_span_processor(BatchSpanProcessor(exporter))
            continue
        raise ValueError(f"OTEL_TRACES_EXPORTER: unsupported exporter {raw!r}")
    return provider


def add_stamping_processor(provider: Any) -> bool:
    """Add our processor once to an SDK provider; False when the provider cannot take one."""
    with _lock:
        if any(p is provider for p in _stamped_providers):
            return True
        if not hasattr(provider, "add_span_processor"):
            return False
        provider.add_span_processor(StampingProcessor())
        _stamped_providers.append(provider)
        return True


def instrument_sdks(settings: Settings, **kwargs: Any) -> list[str]:
    """Instrument each selected SDK that is installed; returns the SDK names now instrumented."""
    done = []
    for sdk in settings.instrument:
        module_name, target = SDK_INSTRUMENTORS[sdk]
        if not _has_module(module_name):
            continue
        try:
            instrumentor = _instrumented.get(sdk)
            if instrumentor is None:
                module_path, class_name = target.split(":")
                instrumentor = getattr(importlib.import_module(module_path), class_name)()
                _instrumented[sdk] = instrumentor
            if not instrumentor.is_instrumented_by_opentelemetry:
                instrumentor.instrument(**kwargs)
            done.append(sdk)
        except Exception:
            # One SDK's instrumentor failing (or not written yet) must not stop the others.
            logger.warning("otel_tokens: could not instrument %s", sdk, exc_info=True)
    return done


def uninstrument_sdks() -> None:
    for sdk, instrumentor in list(_instrumented.items()):
        try:
            if instrumentor.is_instrumented_by_opentelemetry:
                instrumentor.uninstrument()
        except Exception:
            logger.warning("otel_tokens: could not uninstrument %s", sdk, exc_info=True)


def apply_settings(settings: Settings) -> None:
    """Process-wide switches: propagation and the price book."""
    scopes.set_propagate(settings.propagate)
    if settings.prices is not None:
        from otel_tokens.instrumentation.genai_span import set_price_book
        from otel_tokens.pricing import PriceBook, load_overrides

        prices = settings.prices
        overrides = load_overrides(prices) if isinstance(prices, str) else prices
        set_price_book(PriceBook(overrides=overrides))


def setup(settings: Settings, tracer_provider: Any = None, meter_provider: Any = None) -> Any:
    """Everything ``configure()`` and the zero-code entry point do; returns the tracer provider."""
    apply_settings(settings)
    if meter_provider is not None or not settings.metrics:
        from otel_tokens import metrics

        if settings.metrics:
            metrics.use_meter_provider(meter_provider)
        else:
            from opentelemetry.metrics import NoOpMeterProvider

            metrics.use_meter_provider(NoOpMeterProvider())
    provider = tracer_provider
    if provider is None:
        provider = trace.get_tracer_provider()
        if not hasattr(provider, "add_span_processor"):
            # No SDK provider yet (plain app, or opentelemetry-instrument without a distro).
            provider = default_tracer_provider()
            trace.set_tracer_provider(provider)
            provider = trace.get_tracer_provider()
    if not add_stamping_processor(provider):
        logger.warning(
            "otel_tokens: tracer provider %s cannot take a SpanProcessor; spans are not stamped",
            type(provider).__name__,
        )
    instrument_sdks(settings, tracer_provider=provider)
    return provider


class OtelTokensInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Zero-code entry point: ``opentelemetry-instrument python app.py``.

    Adds the stamping processor to the SDK tracer provider (creating one from the standard
    OTEL_* variables when no distro did) and instruments whichever of openai, anthropic and
    google-genai is installed. ``OTEL_TOKENS_*`` variables configure it (docs/plugin.md).
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        return ()  # every SDK is optional

    def _instrument(self, **kwargs: Any) -> None:
        settings = load_settings()
        if settings.disabled:
            return
        setup(
            settings,
            tracer_provider=kwargs.get("tracer_provider"),
            meter_provider=kwargs.get("meter_provider"),
        )

    def _uninstrument(self, **kwargs: Any) -> None:
        uninstrument_sdks()
