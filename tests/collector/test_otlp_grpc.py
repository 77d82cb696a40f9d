"""OTLP/gRPC receiver: the TraceService Export call, status codes and RetryInfo."""

from __future__ import annotations

import threading

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from tests.collector.otlp_requests import protobuf_request, span_spec


def _stub(collector):
    channel = grpc.insecure_channel(collector.grpc_endpoint)
    return channel, trace_service_pb2_grpc.TraceServiceStub(channel)


def _request(spans):
    return trace_service_pb2.ExportTraceServiceRequest.FromString(protobuf_request(spans))


def test_export_over_grpc_is_committed_and_idempotent(collector):
    channel, stub = _stub(collector)
    req = _request([span_spec() for _ in range(10)])
    for _ in range(3):
        resp = stub.Export(req, timeout=30)
        assert not resp.HasField("partial_success")
    channel.close()
    assert collector.query("SELECT count(*) FROM spans")[0][0] == 10


def test_gzip_compressed_grpc_export(collector):
    channel = grpc.insecure_channel(collector.grpc_endpoint, compression=grpc.Compression.Gzip)
    stub = trace_service_pb2_grpc.TraceServiceStub(channel)
    stub.Export(_request([span_spec()]), timeout=30)
    channel.close()
    assert collector.query("SELECT count(*) FROM spans")[0][0] == 1


def test_bad_spans_over_grpc_are_a_partial_success(collector):
    channel, stub = _stub(collector)
    resp = stub.Export(_request([span_spec(), span_spec(trace_id=b"short")]), timeout=30)
    channel.close()
    assert resp.partial_success.rejected_spans == 1
    assert "trace_id" in resp.partial_success.error_message


def test_undecodable_grpc_request_is_invalid_argument_and_the_collector_stays_up(collector):
    channel = grpc.insecure_channel(collector.grpc_endpoint)
    raw = channel.unary_unary(
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        request_serializer=lambda b: b,
        response_deserializer=lambda b: b,
    )
    with pytest.raises(grpc.RpcError) as err:
        raw(b"\xff\xff\xff garbage", timeout=30)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    _, stub = _stub(collector)
    stub.Export(_request([span_spec()]), timeout=30)
    channel.close()


def test_grpc_message_over_the_limit_is_resource_exhausted(start_collector):
    collector = start_collector(grpc={"max_recv_msg_size_mib": 1})
    channel, stub = _stub(collector)
    with pytest.raises(grpc.RpcError) as err:
        stub.Export(_request([span_spec(attributes={"blob": "x" * (2 * 2**20)})]), timeout=30)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    stub.Export(_request([span_spec()]), timeout=30)
    channel.close()


def test_grpc_requires_the_bearer_token_when_auth_is_on(start_collector):
    collector = start_collector(auth_token="s3cret")
    channel, stub = _stub(collector)
    with pytest.raises(grpc.RpcError) as err:
        stub.Export(_request([span_spec()]), timeout=30)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    stub.Export(_request([span_spec()]), metadata=[("authorization", "Bearer s3cret")], timeout=30)
    channel.close()
    assert collector.query("SELECT count(*) FROM spans")[0][0] == 1


def test_full_queue_is_unavailable_with_retry_info(start_collector):
    collector = start_collector(
        processors=["memory_limiter", "batch"],
        processor_configs={"memory_limiter": {"limit_spans": 5, "limit_mib": 0, "retry_after": 2}},
    )
    exporter = collector.collector.exporters["duckdb"]
    channel, stub = _stub(collector)
    results: list[object] = []
    # The writer blocks inside its commit, so the first export stays in flight.
    exporter._lock.acquire()
    try:
        t = threading.Thread(
            target=lambda: results.append(
                stub.Export(_request([span_spec() for _ in range(4)]), timeout=60)
            )
        )
        t.start()
        limiter = collector.collector.pipelines[0].limiter
        for _ in range(500):
            if limiter.in_flight_spans:
                break
            threading.Event().wait(0.01)
        with pytest.raises(grpc.RpcError) as err:
            stub.Export(_request([span_spec() for _ in range(4)]), timeout=30)
    finally:
        exporter._lock.release()
    t.join(30)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    details = dict(err.value.trailing_metadata())["grpc-status-details-bin"]
    status = status_pb2.Status.FromString(details)
    info = error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(info)
    assert info.retry_delay.seconds == 2
    assert len(results) == 1
    channel.close()
