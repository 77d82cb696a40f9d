"""The otel-tokens collector: OTLP in, gen_ai normalisation and cost, DuckDB out (SPEC §5)."""
