"""otel-tokens: LLM token usage and cost per user, node and request, on OpenTelemetry."""
