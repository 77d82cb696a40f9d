"""The column set of table ``spans`` as an Arrow schema: what the collector hands the store.

Kept apart from ``queries.store`` so that code which only builds batches (the collector's worker
processes) does not load DuckDB.
"""

from __future__ import annotations

import pyarrow as pa

_TS = pa.timestamp("us", tz="UTC")

#: The column set of table ``spans``, in table order, as the exporter hands it over.
SPANS_SCHEMA = pa.schema(
    [
        ("trace_id", pa.string()),
        ("span_id", pa.string()),
        ("parent_span_id", pa.string()),
        ("name", pa.string()),
        ("kind", pa.string()),
        ("service_name", pa.string()),
        ("scope_name", pa.string()),
        ("start_time", _TS),
        ("end_time", _TS),
        ("duration_ms", pa.float64()),
        ("status_code", pa.string()),
        ("status_message", pa.string()),
        ("operation", pa.string()),
        ("provider", pa.string()),
        ("request_model", pa.string()),
        ("response_model", pa.string()),
        ("input_tokens", pa.int64()),
        ("output_tokens", pa.int64()),
        ("cache_read_tokens", pa.int64()),
        ("cache_creation_tokens", pa.int64()),
        ("reasoning_tokens", pa.int64()),
        ("cost_usd", pa.decimal128(18, 10)),
        ("cost_source", pa.string()),
        ("usage_estimated", pa.bool_()),
        ("pricing_ref", pa.string()),
        ("node", pa.string()),
        ("user_id", pa.string()),
        ("tenant", pa.string()),
        ("session_id", pa.string()),
        ("conversation_id", pa.string()),
        ("correlation_id", pa.string()),
        ("job_type", pa.string()),
        ("attributes", pa.string()),  # JSON text
        ("resource_attributes", pa.string()),  # JSON text
        ("received_at", _TS),
    ]
)
SPAN_COLUMNS: tuple[str, ...] = tuple(SPANS_SCHEMA.names)
