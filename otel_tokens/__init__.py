"""otel-tokens: LLM token usage and cost per user, node and request, on OpenTelemetry."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from os import PathLike
from typing import Any

from otel_tokens.context import background_job, node, usage_context

__all__ = ["background_job", "configure", "node", "usage_context"]

_configure_lock = threading.Lock()


def configure(
    *,
    tracer_provider: Any = None,
    meter_provider: Any = None,
    propagate: bool | None = None,
    prices: str | PathLike[str] | Mapping[str, Mapping[str, Any]] | None = None,
    instrument: str | Iterable[str] | None = None,
    metrics: bool | None = None,
) -> Any:
    """Set up the plugin by hand (not needed under ``opentelemetry-instrument``); idempotent.

    Uses ``tracer_provider``, else the global SDK provider, else creates one exporting OTLP to
    the collector per the standard ``OTEL_EXPORTER_OTLP_*`` variables; adds the stamping
    processor once; instruments the installed SDKs (``instrument="openai,anthropic"`` to choose).
    Arguments win over ``OTEL_TOKENS_*`` variables. Returns the tracer provider in use.
    """
    from otel_tokens.auto import setup
    from otel_tokens.config import load_settings

    settings = load_settings(
        propagate=propagate,
        prices=prices,
        instrument=instrument,
        metrics=metrics,
    )
    with _configure_lock:
        return setup(settings, tracer_provider=tracer_provider, meter_provider=meter_provider)
