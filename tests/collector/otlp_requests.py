"""Hand-built OTLP export requests for receiver tests (the SDK exporters are used end to end)."""

from __future__ import annotations

import gzip
import json
import os
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

T0 = 1_763_900_000_000_000_000


def any_value(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, list):
        out = AnyValue()
        out.array_value.values.extend(any_value(v) for v in value)
        return out
    if isinstance(value, dict):
        out = AnyValue()
        out.kvlist_value.values.extend(
            KeyValue(key=k, value=any_value(v)) for k, v in value.items()
        )
        return out
    return AnyValue(string_value=str(value))


def span_spec(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "trace_id": os.urandom(16),
        "span_id": os.urandom(8),
        "parent_span_id": b"",
        "name": "chat gpt-4o-mini",
        "kind": 3,
        "start": T0,
        "end": T0 + 250_000_000,
        "attributes": {},
    }
    spec.update(overrides)
    return spec


def protobuf_request(spans: list[dict[str, Any]], service: str = "svc") -> bytes:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.append(KeyValue(key="service.name", value=any_value(service)))
    ss = rs.scope_spans.add()
    ss.scope.name = "tests"
    for spec in spans:
        sp = ss.spans.add()
        sp.trace_id = spec["trace_id"]
        sp.span_id = spec["span_id"]
        sp.parent_span_id = spec["parent_span_id"]
        sp.name = spec["name"]
        sp.kind = spec["kind"]
        sp.start_time_unix_nano = spec["start"]
        sp.end_time_unix_nano = spec["end"]
        for k, v in spec["attributes"].items():
            sp.attributes.append(KeyValue(key=k, value=any_value(v)))
    return req.SerializeToString()


def _json_any(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, list):
        return {"arrayValue": {"values": [_json_any(v) for v in value]}}
    return {"stringValue": str(value)}


def json_request(spans: list[dict[str, Any]], service: str = "svc") -> bytes:
    doc = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": service}}]
                },
                "scopeSpans": [
                    {
                        "scope": {"name": "tests"},
                        "spans": [
                            {
                                "traceId": s["trace_id"].hex(),
                                "spanId": s["span_id"].hex(),
                                "parentSpanId": s["parent_span_id"].hex(),
                                "name": s["name"],
                                "kind": s["kind"],
                                "startTimeUnixNano": str(s["start"]),
                                "endTimeUnixNano": str(s["end"]),
                                "attributes": [
                                    {"key": k, "value": _json_any(v)}
                                    for k, v in s["attributes"].items()
                                ],
                            }
                            for s in spans
                        ],
                    }
                ],
            }
        ]
    }
    return json.dumps(doc).encode()


def gzipped(body: bytes) -> bytes:
    return gzip.compress(body)
