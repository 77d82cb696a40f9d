#!/usr/bin/env bash
# Send one request's spans to the otel-tokens collector as plain OTLP/JSON over HTTP: no SDK,
# no Python. Any language that can POST JSON can report LLM usage this way.
#
#   otel-tokens collector &                 # OTLP/HTTP on 127.0.0.1:4318
#   examples/curl/send_span.sh              # or: OTLP_HTTP=http://host:4318 USER_ID=bob ...
#   otel-tokens trace "$CORRELATION_ID"     # the id is printed below
#
# OTLP/JSON rules that matter (OTLP spec, "JSON Protobuf Encoding"): trace and span ids are
# lowercase hex strings (not base64), 64-bit integers (times, intValue) are JSON strings,
# enums are numbers (kind 1 = INTERNAL, 3 = CLIENT).
set -euo pipefail

OTLP_HTTP="${OTLP_HTTP:-http://127.0.0.1:4318}"
USER_ID="${USER_ID:-erin@initech.test}"
TENANT="${TENANT:-initech}"
MODEL="${MODEL:-gpt-4o-mini}"
INPUT_TOKENS="${INPUT_TOKENS:-1200}"
OUTPUT_TOKENS="${OUTPUT_TOKENS:-300}"

hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }
TRACE_ID="$(hex 16)"
NODE_SPAN_ID="$(hex 8)"
CALL_SPAN_ID="$(hex 8)"
CORRELATION_ID="${CORRELATION_ID:-curl-$(hex 4)}"
END="$(date +%s%N)"
START=$((END - 850000000))          # the node took 850 ms
CALL_START=$((START + 20000000))
CALL_END=$((END - 10000000))

str() { printf '{"key":"%s","value":{"stringValue":"%s"}}' "$1" "$2"; }
int() { printf '{"key":"%s","value":{"intValue":"%s"}}' "$1" "$2"; }

BODY=$(cat <<JSON
{
  "resourceSpans": [{
    "resource": {"attributes": [$(str service.name billing-worker), $(str telemetry.sdk.language shell)]},
    "scopeSpans": [{
      "scope": {"name": "examples.curl"},
      "spans": [
        {
          "traceId": "$TRACE_ID", "spanId": "$NODE_SPAN_ID",
          "name": "node invoice_summary", "kind": 1,
          "startTimeUnixNano": "$START", "endTimeUnixNano": "$END",
          "attributes": [
            $(str otel_tokens.node invoice_summary),
            $(str enduser.id "$USER_ID"),
            $(str otel_tokens.tenant "$TENANT"),
            $(str otel_tokens.correlation_id "$CORRELATION_ID")
          ],
          "status": {}
        },
        {
          "traceId": "$TRACE_ID", "spanId": "$CALL_SPAN_ID", "parentSpanId": "$NODE_SPAN_ID",
          "name": "chat $MODEL", "kind": 3,
          "startTimeUnixNano": "$CALL_START", "endTimeUnixNano": "$CALL_END",
          "attributes": [
            $(str gen_ai.operation.name chat),
            $(str gen_ai.provider.name openai),
            $(str gen_ai.request.model "$MODEL"),
            $(int gen_ai.usage.input_tokens "$INPUT_TOKENS"),
            $(int gen_ai.usage.output_tokens "$OUTPUT_TOKENS"),
            $(str enduser.id "$USER_ID"),
            $(str otel_tokens.tenant "$TENANT"),
            $(str otel_tokens.correlation_id "$CORRELATION_ID")
          ],
          "status": {"code": 1}
        }
      ]
    }]
  }]
}
JSON
)

AUTH=()
if [ -n "${OTEL_TOKENS_TOKEN:-}" ]; then   # collector with the bearertokenauth extension
  AUTH=(-H "Authorization: Bearer $OTEL_TOKENS_TOKEN")
fi

echo "POST $OTLP_HTTP/v1/traces  trace_id=$TRACE_ID correlation_id=$CORRELATION_ID"
curl --silent --show-error --fail-with-body \
  -H 'Content-Type: application/json' "${AUTH[@]}" \
  --data-binary "$BODY" \
  "$OTLP_HTTP/v1/traces"
echo
