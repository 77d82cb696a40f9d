"""The C fast path (``_fast_decode``) against the protobuf decoder that defines the rows.

Whatever the fast path returns must be exactly what ``decode_with_protobuf`` builds from the same
body; what it is not sure of it declines (``None``), and the plain requests it exists for it must
not decline, or it would be a slow no-op.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from collector.receivers import _fast_decode, decode
from tests.collector.otlp_requests import T0, any_value, protobuf_request, span_spec


def fast(body: bytes) -> list[dict[str, Any]] | None:
    return _fast_decode.decode(body, 7)


def reference(body: bytes) -> decode.Decoded:
    return decode.decode_with_protobuf(body, 7)


def assert_same_or_declined(body: bytes) -> bool:
    """The fast path's rows equal the reference's, or it declined; True if it answered."""
    rows = fast(body)
    if rows is None:
        return False
    expected = reference(body)  # must not raise: the fast path accepted the body
    assert expected.rejected == 0
    assert rows == expected.rows
    assert [type(v) for r in rows for v in r.values()] == [
        type(v) for r in expected.rows for v in r.values()
    ]
    return True


# --- generated requests --------------------------------------------------------------------

TEXT = st.text(max_size=12) | st.sampled_from(["gen_ai.usage.input_tokens", "", "é", "🙂"])
SCALARS = (
    st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False)
    | TEXT
    | st.binary(max_size=7)
)
VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(TEXT, children, max_size=3),
    max_leaves=8,
)
ATTRIBUTES = st.lists(st.tuples(TEXT, VALUES), max_size=6)  # repeated keys included


def key_values(pairs: list[tuple[str, Any]]) -> list[KeyValue]:
    return [KeyValue(key=k, value=any_value(v)) for k, v in pairs]


@st.composite
def spans(draw: st.DrawFn) -> Span:
    span = Span(
        trace_id=draw(st.binary(min_size=16, max_size=16).filter(any)),
        span_id=draw(st.binary(min_size=8, max_size=8).filter(any)),
        parent_span_id=draw(st.sampled_from([b"", bytes(8), b"\x01" * 8, b"\x02" * 3])),
        name=draw(TEXT),
        kind=draw(st.integers(-3, 9)),
        start_time_unix_nano=draw(st.integers(1, 2**63 - 1) | st.just(T0)),
        end_time_unix_nano=draw(st.just(0) | st.integers(0, 2**63 - 1)),
        attributes=key_values(draw(ATTRIBUTES)),
        trace_state=draw(TEXT),
        flags=draw(st.integers(0, 2**32 - 1)),
        dropped_attributes_count=draw(st.integers(0, 3)),
    )
    if draw(st.booleans()):
        span.status.CopyFrom(Status(code=draw(st.integers(-1, 4)), message=draw(TEXT)))
    if draw(st.booleans()):
        event = span.events.add(time_unix_nano=T0, name=draw(TEXT))
        event.attributes.extend(key_values(draw(ATTRIBUTES)))
    if draw(st.booleans()):
        link = span.links.add(trace_id=b"\x01" * 16, span_id=b"\x01" * 8, trace_state="k=v")
        link.attributes.extend(key_values(draw(ATTRIBUTES)))
    return span


@st.composite
def requests(draw: st.DrawFn) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    for _ in range(draw(st.integers(0, 3))):
        rs = request.resource_spans.add(schema_url=draw(TEXT))
        if draw(st.booleans()):
            rs.resource.attributes.extend(
                key_values(draw(st.lists(st.tuples(st.just("service.name") | TEXT, VALUES))))
            )
        for _ in range(draw(st.integers(0, 3))):
            ss = rs.scope_spans.add()
            if draw(st.booleans()):
                ss.scope.CopyFrom(InstrumentationScope(name=draw(TEXT), version=draw(TEXT)))
                ss.scope.attributes.extend(key_values(draw(ATTRIBUTES)))
            ss.spans.extend(draw(st.lists(spans(), max_size=4)))
    return request


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests())
def test_generated_requests_decode_to_the_reference_rows(request):
    # Every generated span is valid and no sub-message is sent twice: nothing to decline.
    assert assert_same_or_declined(request.SerializeToString())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests(), st.data())
def test_mutated_requests_are_decoded_as_the_reference_does_or_declined(request, data):
    body = bytearray(request.SerializeToString())
    if not body:
        return
    for _ in range(data.draw(st.integers(1, 6))):
        i = data.draw(st.integers(0, len(body) - 1))
        op = data.draw(st.sampled_from(["set", "insert", "delete"]))
        if op == "set":
            body[i] = data.draw(st.integers(0, 255))
        elif op == "insert":
            body.insert(i, data.draw(st.integers(0, 255)))
        elif len(body) > 1:
            del body[i]
    try:
        assert_same_or_declined(bytes(body))
    except decode.DecodeError:
        pytest.fail("the fast path accepted a body protobuf cannot parse")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_are_decoded_as_the_reference_does_or_declined(body):
    try:
        assert_same_or_declined(body)
    except decode.DecodeError:
        pytest.fail("the fast path accepted a body protobuf cannot parse")


# --- the cases it leaves to protobuf, and orders protobuf allows --------------------------


def plain_span(**fields: Any) -> Span:
    plain: dict[str, Any] = {
        "trace_id": b"\x01" * 16,
        "span_id": b"\x02" * 8,
        "start_time_unix_nano": T0,
    }
    return Span(**(plain | fields))


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field, built by hand to get orders the serializer never makes."""
    out = bytearray([number << 3 | 2])
    n = len(payload)
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out) + payload


def request_of(*spans: bytes, scope: bytes = b"", resource: bytes = b"") -> bytes:
    """One resource and one scope around the serialized spans, each part after the spans."""
    scope_spans = b"".join(field(2, s) for s in spans) + (field(1, scope) if scope else b"")
    resource_spans = field(2, scope_spans) + (field(1, resource) if resource else b"")
    return field(1, resource_spans)


def test_a_scope_and_a_resource_after_their_spans_still_apply():
    body = request_of(
        plain_span(name="late").SerializeToString(),
        scope=InstrumentationScope(name="lib").SerializeToString(),
        resource=Resource(
            attributes=[KeyValue(key="service.name", value=AnyValue(int_value=3))]
        ).SerializeToString(),
    )
    rows = fast(body)
    assert rows is not None and rows == reference(body).rows
    assert (rows[0]["scope_name"], rows[0]["service_name"]) == ("lib", "3")


@pytest.mark.parametrize(
    "span",
    [
        plain_span(trace_id=bytes(16)),  # rejected spans: the reference says why
        plain_span(span_id=b"\x01" * 7),
        plain_span(start_time_unix_nano=0),
        plain_span(end_time_unix_nano=2**63),
        plain_span(attributes=[KeyValue(key="i", value=AnyValue(string_value_strindex=3))]),
    ],
    ids=["zero-trace-id", "short-span-id", "no-start", "end-after-2262", "strindex"],
)
def test_what_the_reference_must_decide_is_declined(span):
    body = request_of(span.SerializeToString())
    assert fast(body) is None
    assert decode.decode_protobuf(body, 7) == reference(body)


def test_a_sub_message_sent_twice_is_merged_by_protobuf_so_declined():
    twice = (
        plain_span(status=Status(message="first")).SerializeToString()
        + Span(status=Status(code=2)).SerializeToString()
    )
    body = request_of(twice)
    assert fast(body) is None
    rows = decode.decode_protobuf(body, 7).rows
    assert (rows[0]["status_code"], rows[0]["status_message"]) == ("ERROR", "first")


def test_bad_utf8_anywhere_protobuf_checks_is_declined_and_refused():
    span = plain_span(events=[Span.Event(name="EVENT")]).SerializeToString()
    body = request_of(span.replace(b"EVENT", b"\xff\xfeENT"))
    assert fast(request_of(span)) is not None
    assert fast(body) is None
    with pytest.raises(decode.DecodeError):
        decode.decode_protobuf(body, 7)


def test_a_known_field_with_another_wire_type_is_declined():
    span = plain_span().SerializeToString()
    assert fast(request_of(span)) is not None
    assert fast(request_of(span + b"\x30\x01")) is not None  # kind = 1: a varint, as it should
    assert fast(request_of(span + b"\x28\x01")) is None  # name as a varint
    assert fast(request_of(span + b"\x2d\x01\x00\x00\x00")) is None  # name as a fixed32


def test_plain_request_answers_every_attribute_kind_like_the_reference():
    attrs = {"s": "x", "e": "", "i": -5, "f": 0.25, "b": False, "l": [1, [2]], "m": {"k": b"\0"}}
    body = protobuf_request([span_spec(attributes=attrs)])
    assert assert_same_or_declined(body)
    assert fast(body)[0]["attributes"] == {  # type: ignore[index]
        "s": "x",
        "e": "",
        "i": -5,
        "f": 0.25,
        "b": False,
        "l": [1, [2]],
        "m": {"k": "AA=="},
    }
