"""OTLP → span rows (team interface 2), and random bytes never raise anything but DecodeError."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.receivers import decode
from collector.rows import rows_to_table
from queries.store import SPAN_COLUMNS
from tests.collector.otlp_requests import T0, json_request, protobuf_request, span_spec


def test_protobuf_rows_have_every_column_and_the_structural_ones_filled():
    parent = span_spec()
    child = span_spec(
        trace_id=parent["trace_id"],
        parent_span_id=parent["span_id"],
        kind=3,
        attributes={
            "i": 7,
            "f": 1.5,
            "b": True,
            "s": "x",
            "l": [1, "a"],
            "m": {"k": "v"},
            "raw": b"\x01",
        },
    )
    out = decode.decode_protobuf(
        protobuf_request([parent, child], service="chat-api"), received_at=5
    )
    assert out.rejected == 0
    row = out.rows[1]
    assert tuple(row) == SPAN_COLUMNS
    assert row["trace_id"] == parent["trace_id"].hex()
    assert row["parent_span_id"] == parent["span_id"].hex()
    assert out.rows[0]["parent_span_id"] is None
    assert (row["kind"], row["service_name"], row["scope_name"]) == ("CLIENT", "chat-api", "tests")
    assert (row["start_time"], row["end_time"], row["duration_ms"]) == (T0, T0 + 250_000_000, 250.0)
    assert row["status_code"] == "UNSET" and row["received_at"] == 5
    assert row["attributes"] == {
        "i": 7,
        "f": 1.5,
        "b": True,
        "s": "x",
        "l": [1, "a"],
        "m": {"k": "v"},
        "raw": "AQ==",
    }
    assert row["resource_attributes"] == {"service.name": "chat-api"}
    assert all(row[c] is None for c in ("operation", "input_tokens", "cost_usd", "node", "user_id"))


def test_json_and_protobuf_decode_to_the_same_rows():
    spans = [span_spec(attributes={"n": 3, "s": "x", "ok": False, "tags": ["a"]}) for _ in range(3)]
    a = decode.decode_protobuf(protobuf_request(spans), received_at=1).rows
    b = decode.decode_json(json_request(spans), received_at=1).rows
    assert a == b


def test_json_ids_are_hex_not_base64():
    spec = span_spec()
    row = decode.decode_json(json_request([spec])).rows[0]
    assert row["trace_id"] == spec["trace_id"].hex() and len(row["trace_id"]) == 32


def test_json_int64_as_number_or_string_and_snake_case_keys():
    doc = {
        "resource_spans": [
            {
                "scope_spans": [
                    {
                        "spans": [
                            {
                                "trace_id": "0af7651916cd43dd8448eb211c80319c",
                                "span_id": "b7ad6b7169203331",
                                "start_time_unix_nano": T0,
                                "end_time_unix_nano": str(T0 + 1000),
                                "attributes": [
                                    {"key": "a", "value": {"intValue": 12}},
                                    {"key": "b", "value": {"int_value": "-3"}},
                                    {"key": "c", "value": {"doubleValue": "NaN"}},
                                    {"key": "d", "value": {}},
                                ],
                            }
                        ]
                    }
                ]
            }
        ]
    }
    row = decode.decode_json(json.dumps(doc).encode()).rows[0]
    assert row["end_time"] == T0 + 1000
    assert row["attributes"]["a"] == 12 and row["attributes"]["b"] == -3
    assert row["attributes"]["c"] != row["attributes"]["c"]  # NaN
    assert "d" not in row["attributes"]


def test_rows_with_odd_values_still_become_an_arrow_batch():
    row = decode.decode_json(json_request([span_spec()])).rows[0]
    row["attributes"] = {"nan": float("nan"), "surrogate": "\ud800", "big": 2**70}
    row["input_tokens"] = "12"  # a processor that left a string behind
    row["cost_usd"] = 0.25
    row["name"] = "bad \udcff name"
    table = rows_to_table([row])
    got = table.to_pylist()[0]
    assert got["input_tokens"] == 12
    assert json.loads(got["attributes"])["nan"] == "nan"
    assert "bad" in got["name"]


# --- property-based: whatever arrives, the decoder answers rows or DecodeError -------------------

ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=30,
)
KEYS = st.sampled_from(
    [
        "resourceSpans",
        "scopeSpans",
        "spans",
        "traceId",
        "spanId",
        "parentSpanId",
        "startTimeUnixNano",
        "endTimeUnixNano",
        "attributes",
        "key",
        "value",
        "stringValue",
        "intValue",
        "doubleValue",
        "arrayValue",
        "kvlistValue",
        "values",
        "kind",
        "status",
        "code",
        "name",
        "resource",
        "scope",
    ]
)
OTLP_ISH = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=40)
    | st.sampled_from(
        ["5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174", "SPAN_KIND_CLIENT", ""]
    ),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=6),
    max_leaves=60,
)


def _check(out: decode.Decoded) -> None:
    for row in out.rows:
        assert tuple(row) == SPAN_COLUMNS
        assert len(row["trace_id"]) == 32 and len(row["span_id"]) == 16
    rows_to_table(out.rows)  # and the exporter can always build its batch


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(OTLP_ISH)
def test_random_otlp_json_documents_never_raise_anything_but_decode_error(doc):
    try:
        out = decode.decode_json(json.dumps(doc).encode())
    except decode.DecodeError:
        return
    _check(out)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_as_json_never_raise_anything_but_decode_error(body):
    try:
        _check(decode.decode_json(body))
    except decode.DecodeError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_as_protobuf_never_raise_anything_but_decode_error(body):
    try:
        _check(decode.decode_protobuf(body))
    except decode.DecodeError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_valid_protobuf_never_raises_anything_but_decode_error(data):
    body = bytearray(protobuf_request([span_spec(attributes={"a": 1, "b": "x", "c": [1.5]})]))
    for _ in range(data.draw(st.integers(1, 8))):
        i = data.draw(st.integers(0, len(body) - 1))
        body[i] = data.draw(st.integers(0, 255))
    try:
        _check(decode.decode_protobuf(bytes(body)))
    except decode.DecodeError:
        pass
