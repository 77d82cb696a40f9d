"""OTLP/HTTP receiver behaviour, status by status, against a real collector on 127.0.0.1."""

from __future__ import annotations

import gzip
import json
import zlib

import requests
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from tests.collector.otlp_requests import T0, gzipped, json_request, protobuf_request, span_spec

PB = {"Content-Type": "application/x-protobuf"}
JS = {"Content-Type": "application/json"}


def _count(collector, where: str = "TRUE") -> int:
    return collector.query(f"SELECT count(*) FROM spans WHERE {where}")[0][0]


def test_protobuf_export_is_stored_before_the_200_is_sent(collector):
    spans = [span_spec() for _ in range(5)]
    r = requests.post(collector.http_url, data=protobuf_request(spans), headers=PB)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/x-protobuf"
    assert not ExportTraceServiceResponse.FromString(r.content).HasField("partial_success")
    ids = {s["span_id"].hex() for s in spans}
    stored = {row[0] for row in collector.query("SELECT span_id FROM spans")}
    assert stored == ids


def test_json_export_reads_hex_ids_and_string_int64(collector):
    spec = span_spec(attributes={"app.count": 42, "flag": True, "tags": ["a", "b"]})
    r = requests.post(collector.http_url, data=json_request([spec]), headers=JS)
    assert r.status_code == 200, r.text
    assert r.json() == {}
    row = collector.query(
        "SELECT trace_id, span_id, epoch_us(start_time),"
        " attributes->>'$.\"app.count\"', attributes->'$.tags' FROM spans"
    )[0]
    assert row[0] == spec["trace_id"].hex() and row[1] == spec["span_id"].hex()
    assert row[2] == T0 // 1000
    assert row[3] == "42"
    assert json.loads(row[4]) == ["a", "b"]


def test_json_export_accepts_enum_names_numbers_and_ignores_unknown_fields(collector):
    doc = {
        "resourceSpans": [
            {
                "somethingNew": 1,
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": "5B8EFFF798038103D269B633813FC60C",
                                "spanId": "EEE19B7EC3C1B174",
                                "name": "x",
                                "kind": "SPAN_KIND_CLIENT",
                                "startTimeUnixNano": T0,
                                "endTimeUnixNano": T0 + 10**6,
                                "status": {"code": 2, "message": "boom"},
                                "futureField": {"a": 1},
                            }
                        ]
                    }
                ],
            }
        ]
    }
    r = requests.post(collector.http_url, data=json.dumps(doc), headers=JS)
    assert r.status_code == 200, r.text
    assert collector.query(
        "SELECT trace_id, span_id, kind, status_code, status_message FROM spans"
    ) == [("5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174", "CLIENT", "ERROR", "boom")]


def test_the_same_request_sent_three_times_is_stored_once(collector):
    body = protobuf_request(
        [span_spec(attributes={"gen_ai.usage.input_tokens": 7}) for _ in range(20)]
    )
    for _ in range(3):
        assert requests.post(collector.http_url, data=body, headers=PB).status_code == 200
    assert _count(collector) == 20


def test_spans_with_bad_ids_are_rejected_individually_with_partial_success(collector):
    good = span_spec()
    bad = [span_spec(trace_id=b"\x00" * 16), span_spec(span_id=b"\x01\x02"), span_spec(start=0)]
    r = requests.post(collector.http_url, data=protobuf_request([good, *bad]), headers=PB)
    assert r.status_code == 200
    partial = ExportTraceServiceResponse.FromString(r.content).partial_success
    assert partial.rejected_spans == 3
    assert "trace_id" in partial.error_message and "span_id" in partial.error_message
    assert _count(collector) == 1


def test_json_partial_success_is_reported_in_json(collector):
    doc = json.loads(json_request([span_spec()]))
    doc["resourceSpans"][0]["scopeSpans"][0]["spans"].append({"traceId": "zz", "spanId": "00"})
    r = requests.post(collector.http_url, data=json.dumps(doc), headers=JS)
    assert r.status_code == 200
    assert r.json()["partialSuccess"]["rejectedSpans"] == "1"
    assert "traceId" in r.json()["partialSuccess"]["errorMessage"]


def test_undecodable_bodies_get_400_with_a_google_rpc_status_and_the_collector_stays_up(collector):
    r = requests.post(collector.http_url, data=b"\xff\xff\xff\xff garbage", headers=PB)
    assert r.status_code == 400
    status = status_pb2.Status.FromString(r.content)
    assert status.code == 3 and "protobuf" in status.message
    r = requests.post(collector.http_url, data=b"{not json", headers=JS)
    assert r.status_code == 400 and r.json()["code"] == 3
    r = requests.post(collector.http_url, data=b"[1, 2]", headers=JS)
    assert r.status_code == 400
    r = requests.post(collector.http_url, data=b'{"resourceSpans": 5}', headers=JS)
    assert r.status_code == 400 and "resourceSpans" in r.json()["message"]
    r = requests.post(
        collector.http_url, data=b"not gzip", headers={**PB, "Content-Encoding": "gzip"}
    )
    assert r.status_code == 400
    truncated = gzipped(protobuf_request([span_spec()]))[:-12]
    r = requests.post(
        collector.http_url, data=truncated, headers={**PB, "Content-Encoding": "gzip"}
    )
    assert r.status_code == 400
    ok = requests.post(collector.http_url, data=protobuf_request([span_spec()]), headers=PB)
    assert ok.status_code == 200


def test_wrong_content_type_is_415_and_wrong_method_is_405(collector):
    r = requests.post(collector.http_url, data=b"x", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
    r = requests.post(collector.http_url, data=b"x", headers={**PB, "Content-Encoding": "br"})
    assert r.status_code == 415
    r = requests.get(collector.http_url)
    assert r.status_code == 405 and r.headers["Allow"] == "POST"
    r = requests.put(collector.http_url, data=b"")
    assert r.status_code == 405
    r = requests.post(collector.http_url.replace("/v1/traces", "/v1/logs"), data=b"", headers=PB)
    assert r.status_code == 404


def test_gzip_and_deflate_bodies_are_accepted(collector):
    body = protobuf_request([span_spec()])
    r = requests.post(
        collector.http_url, data=gzipped(body), headers={**PB, "Content-Encoding": "gzip"}
    )
    assert r.status_code == 200
    body2 = json_request([span_spec()])
    r = requests.post(
        collector.http_url, data=zlib.compress(body2), headers={**JS, "Content-Encoding": "deflate"}
    )
    assert r.status_code == 200
    assert _count(collector) == 2


def test_body_over_the_limit_after_decompression_is_413(start_collector):
    collector = start_collector(http={"max_request_body_size": 64 * 1024})
    big = protobuf_request([span_spec(attributes={"blob": "x" * 100_000})])
    r = requests.post(collector.http_url, data=big, headers=PB)
    assert r.status_code == 413
    # Compressed it is tiny, but it is the decompressed size that counts.
    small = gzipped(big)
    assert len(small) < 64 * 1024
    r = requests.post(collector.http_url, data=small, headers={**PB, "Content-Encoding": "gzip"})
    assert r.status_code == 413
    ok = requests.post(collector.http_url, data=protobuf_request([span_spec()]), headers=PB)
    assert ok.status_code == 200


def test_gzip_bomb_is_refused_without_inflating_it(collector):
    # 1 GiB of zeros compresses to ~1 MiB; inflating it would need 1 GiB.
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(1 << 20)
    bomb = b"".join(comp.compress(chunk) for _ in range(1024)) + comp.flush()
    from collector.processors.memory_limiter import rss_bytes

    before = rss_bytes()
    r = requests.post(collector.http_url, data=bomb, headers={**PB, "Content-Encoding": "gzip"})
    assert r.status_code == 413
    assert rss_bytes() - before < 200 * 2**20  # far from the 1 GiB the bomb expands to
    assert requests.post(collector.http_url, data=protobuf_request([span_spec()]), headers=PB).ok


def test_chunked_request_body_is_read(collector):
    body = protobuf_request([span_spec(), span_spec()])

    def parts():
        yield body[:10]
        yield body[10:]

    r = requests.post(collector.http_url, data=parts(), headers=PB)
    assert r.status_code == 200
    assert _count(collector) == 2


def test_bearer_token_is_required_when_auth_is_on(start_collector):
    collector = start_collector(auth_token="s3cret")
    body = protobuf_request([span_spec()])
    assert requests.post(collector.http_url, data=body, headers=PB).status_code == 401
    wrong = {**PB, "Authorization": "Bearer nope"}
    assert requests.post(collector.http_url, data=body, headers=wrong).status_code == 401
    right = {**PB, "Authorization": "Bearer s3cret"}
    assert requests.post(collector.http_url, data=body, headers=right).status_code == 200
    assert _count(collector) == 1


def test_full_queue_answers_503_with_retry_after_and_recovers(start_collector):
    collector = start_collector(
        processors=["memory_limiter", "batch"],
        processor_configs={"memory_limiter": {"limit_spans": 10, "limit_mib": 0}},
    )
    exporter = collector.collector.exporters["duckdb"]
    import threading

    first_done: list[int] = []
    # Hold the writer inside its commit so the first request stays in flight.
    exporter._lock.acquire()
    try:
        t = threading.Thread(
            target=lambda: first_done.append(
                requests.post(
                    collector.http_url,
                    data=protobuf_request([span_spec() for _ in range(8)]),
                    headers=PB,
                ).status_code
            )
        )
        t.start()
        pipeline = collector.collector.pipelines[0]
        for _ in range(500):
            if pipeline.limiter.in_flight_spans:
                break
            threading.Event().wait(0.01)
        r = requests.post(
            collector.http_url, data=protobuf_request([span_spec() for _ in range(8)]), headers=PB
        )
        assert r.status_code == 503
        assert int(r.headers["Retry-After"]) >= 1
        assert status_pb2.Status.FromString(r.content).code == 14
    finally:
        exporter._lock.release()
    t.join(30)
    assert first_done == [200]
    r = requests.post(collector.http_url, data=protobuf_request([span_spec()]), headers=PB)
    assert r.status_code == 200
    assert _count(collector) == 9


def test_content_type_with_charset_parameter_is_accepted(collector):
    r = requests.post(
        collector.http_url,
        data=json_request([span_spec()]),
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert r.status_code == 200


def test_gzip_json_export_with_many_spans(collector):
    body = gzip.compress(json_request([span_spec() for _ in range(300)]))
    r = requests.post(collector.http_url, data=body, headers={**JS, "Content-Encoding": "gzip"})
    assert r.status_code == 200
    assert _count(collector) == 300
