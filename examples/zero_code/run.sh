#!/usr/bin/env bash
# Run examples/zero_code/app.py under opentelemetry-instrument, exporting to a local collector.
# Without OPENAI_API_KEY / ANTHROPIC_API_KEY it uses the local fake provider (offline).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=.venv/bin

if [ -z "${OPENAI_API_KEY:-}" ] || [ -z "${ANTHROPIC_API_KEY:-}" ]; then
  # Start the fake provider and take the SDK settings it prints (base URLs and dummy keys).
  SETTINGS="$(mktemp)"
  $BIN/python -m otel_tokens.demo.fake_provider > "$SETTINGS" &
  FAKE_PID=$!
  trap 'kill $FAKE_PID; rm -f "$SETTINGS"' EXIT
  until grep -q '^export GEMINI_API_KEY' "$SETTINGS"; do sleep 0.1; done
  eval "$(grep '^export ' "$SETTINGS")"
fi

export OTEL_SERVICE_NAME=zero-code-example
export OTEL_TRACES_EXPORTER=otlp
export OTEL_METRICS_EXPORTER=none
export OTEL_LOGS_EXPORTER=none
export OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf
export OTEL_EXPORTER_OTLP_ENDPOINT="${OTEL_EXPORTER_OTLP_ENDPOINT:-http://127.0.0.1:4318}"
# The official openai-v2 instrumentation is installed in the dev venv too; one is enough.
export OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=openai

$BIN/opentelemetry-instrument $BIN/python examples/zero_code/app.py
