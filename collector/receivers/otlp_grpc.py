"""OTLP/gRPC listener: ``opentelemetry.proto.collector.trace.v1.TraceService/Export`` on grpcio.

grpcio inflates gzip and enforces ``max_recv_msg_size_mib`` on the decompressed message; the
servicer decodes and flattens it, waits for the commit and maps refusals to
``UNAVAILABLE`` with a ``google.rpc.RetryInfo`` detail, which OTLP exporters honour.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent import futures
from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from collector import workers
from collector.config import parse_endpoint
from collector.pipeline import Consumer, Overloaded, Stats
from collector.receivers import decode
from collector.receivers.otlp import GrpcConfig, export

log = logging.getLogger("otel_tokens.collector.otlp_grpc")


class _RichStatus(grpc.Status):
    """A gRPC status carrying a serialized google.rpc.Status (what grpcio-status builds)."""

    def __init__(self, code: grpc.StatusCode, message: str, details: list[Any]) -> None:
        rich = status_pb2.Status(code=code.value[0], message=message)
        for d in details:
            packed = any_pb2.Any()
            packed.Pack(d)
            rich.details.append(packed)
        self.code = code
        self.details = message
        self.trailing_metadata = (("grpc-status-details-bin", rich.SerializeToString()),)


def _unavailable(message: str, retry_after: float) -> _RichStatus:
    delay = duration_pb2.Duration()
    delay.FromNanoseconds(int(max(retry_after, 0.001) * 1e9))
    return _RichStatus(
        grpc.StatusCode.UNAVAILABLE, message, [error_details_pb2.RetryInfo(retry_delay=delay)]
    )


_SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"


class _TraceService:
    """TraceService/Export on raw bytes: the servicer decodes them itself, so a body that is not
    a valid ExportTraceServiceRequest is INVALID_ARGUMENT (grpcio's own deserializer would
    answer INTERNAL)."""

    def __init__(self, listener: GrpcListener) -> None:
        self.listener = listener

    def handler(self) -> grpc.GenericRpcHandler:
        export = grpc.unary_unary_rpc_method_handler(
            self.Export,
            request_deserializer=None,  # raw bytes
            response_serializer=trace_service_pb2.ExportTraceServiceResponse.SerializeToString,
        )
        return grpc.method_handlers_generic_handler(_SERVICE, {"Export": export})

    def Export(self, request: bytes, context: grpc.ServicerContext) -> Any:
        listener = self.listener
        listener.enter()
        try:
            return self._export(request, context)
        finally:
            listener.leave()

    def _export(self, request: bytes, context: grpc.ServicerContext) -> Any:
        listener = self.listener
        if listener.auth is not None:
            metadata = dict(context.invocation_metadata() or ())
            if not listener.auth.authenticate(metadata.get("authorization")):
                listener.stats.response("grpc", 401)
                context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid bearer token")
        if listener.consumer.over_limit():
            listener.stats.add(requests=1)
            listener.stats.response("grpc", 503)
            context.abort_with_status(
                _unavailable(
                    "memory_limiter: too much data in flight", listener.consumer.retry_after()
                )
            )
        try:
            prepared = listener.consumer.prepare(request, workers.PROTOBUF, time.time_ns())
        except decode.DecodeError as exc:
            listener.stats.add(requests=1)
            listener.stats.response("grpc", 400)
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except Overloaded as exc:
            listener.stats.add(requests=1)
            listener.stats.response("grpc", 503)
            context.abort_with_status(_unavailable(str(exc), exc.retry_after))
        outcome = export(listener.consumer, listener.stats, prepared, len(request))
        listener.stats.response("grpc", outcome.status)
        if outcome.status == 503:
            context.abort_with_status(_unavailable(outcome.message, outcome.retry_after))
        if outcome.status != 200:
            context.abort(grpc.StatusCode.INTERNAL, outcome.message)
        response = trace_service_pb2.ExportTraceServiceResponse()
        if outcome.rejected:
            response.partial_success.rejected_spans = outcome.rejected
            response.partial_success.error_message = outcome.message
        return response


class GrpcListener:
    def __init__(self, config: GrpcConfig, consumer: Consumer, stats: Stats, auth: Any) -> None:
        self.config = config
        self.consumer = consumer
        self.stats = stats
        self.auth = auth
        size = config.max_recv_msg_size_mib * 2**20
        options: list[tuple[str, Any]] = [
            ("grpc.max_receive_message_length", size),
            ("grpc.so_reuseport", 0),
        ]
        if config.max_concurrent_streams:
            options.append(("grpc.max_concurrent_streams", config.max_concurrent_streams))
        self._server = grpc.server(
            futures.ThreadPoolExecutor(
                max_workers=config.max_workers, thread_name_prefix="otlp-grpc"
            ),
            options=options,
        )
        self._server.add_generic_rpc_handlers((_TraceService(self).handler(),))
        host, port = parse_endpoint(config.endpoint, "endpoint")
        try:
            bound = self._server.add_insecure_port(f"{host}:{port}")
        except RuntimeError:
            bound = 0
        if not bound:
            raise OSError(f"cannot listen on {config.endpoint}")
        self.address = (host, bound)
        self._active = 0
        self._lock = threading.Lock()
        self._stopped: threading.Event | None = None

    def start(self) -> None:
        self._server.start()
        log.info("OTLP/gRPC listening on %s:%d", *self.address)

    def stop_accepting(self) -> None:
        if self._stopped is None:
            self._stopped = self._server.stop(grace=30)

    def wait_idle(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self._active and time.monotonic() < deadline:
            time.sleep(0.01)

    def enter(self) -> None:
        with self._lock:
            self._active += 1

    def leave(self) -> None:
        with self._lock:
            self._active -= 1
