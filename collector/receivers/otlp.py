"""Receiver ``otlp``: OTLP/gRPC and OTLP/HTTP listeners for traces, sharing one export path.

Both transports hand the request body to ``Consumer.prepare`` (decode and row processors, in a
worker process or the request's own thread), then to the pipelines, and answer only once the
spans are committed (``Consumer.consume``). Status mapping follows the OTLP specification; see
docs/collector.md for the table.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from collector.config import AuthConfig, parse_endpoint
from collector.pipeline import Consumer, ExportFailed, Overloaded, Stats
from collector.workers import Prepared

TYPE = "otlp"

log = logging.getLogger("otel_tokens.collector.otlp")

DEFAULT_MAX_REQUEST_BODY_SIZE = 20 * 2**20


@dataclass
class GrpcConfig:
    endpoint: str = "127.0.0.1:4317"
    max_recv_msg_size_mib: int = 20  # largest request message (after decompression)
    max_concurrent_streams: int = 0  # 0 = grpcio default
    max_workers: int = 16  # threads serving Export calls
    auth: AuthConfig | None = None

    def validate(self) -> None:
        parse_endpoint(self.endpoint, "endpoint")
        if self.max_recv_msg_size_mib <= 0:
            raise ValueError("max_recv_msg_size_mib: must be > 0")
        if self.max_workers <= 0:
            raise ValueError("max_workers: must be > 0")
        if self.max_concurrent_streams < 0:
            raise ValueError("max_concurrent_streams: must be >= 0")


@dataclass
class HttpConfig:
    endpoint: str = "127.0.0.1:4318"
    max_request_body_size: int = DEFAULT_MAX_REQUEST_BODY_SIZE  # bytes, after decompression
    traces_url_path: str = "/v1/traces"
    idle_timeout: float = 60.0  # seconds a keep-alive connection may sit idle
    auth: AuthConfig | None = None

    def validate(self) -> None:
        parse_endpoint(self.endpoint, "endpoint")
        if self.max_request_body_size <= 0:
            raise ValueError("max_request_body_size: must be > 0")
        if not self.traces_url_path.startswith("/"):
            raise ValueError("traces_url_path: must start with /")
        if self.idle_timeout <= 0:
            raise ValueError("idle_timeout: must be > 0")


@dataclass
class Protocols:
    grpc: GrpcConfig | None = None
    http: HttpConfig | None = None


@dataclass
class Config:
    protocols: Protocols = field(default_factory=Protocols)

    def validate(self) -> None:
        if self.protocols.grpc is None and self.protocols.http is None:
            raise ValueError("protocols: enable at least one of grpc, http")


def create_default_config() -> Config:
    return Config()


class Authenticator(Protocol):
    def authenticate(self, authorization: str | None) -> bool: ...


class Host(Protocol):
    """What the service gives a receiver when it starts."""

    consumer: Consumer
    stats: Stats

    def extension(self, component_id: str) -> Any: ...


@dataclass
class Outcome:
    """The answer to one export: HTTP status, rejected spans and a message for the client."""

    status: int
    rejected: int = 0
    message: str = ""
    retry_after: float = 0.0


def export(consumer: Consumer, stats: Stats, prepared: Prepared, nbytes: int) -> Outcome:
    """Store the prepared spans; map the result to an OTLP outcome (never raises)."""
    n, rejected = prepared.spans, prepared.rejected
    stats.add(requests=1, spans_received=n + rejected, spans_rejected=rejected)
    try:
        consumer.consume(prepared, nbytes)
    except Overloaded as exc:
        return Outcome(503, message=str(exc), retry_after=exc.retry_after)
    except ExportFailed as exc:
        # Not the client's fault and maybe transient: 503 so the exporter retries with back-off.
        return Outcome(
            503, message=f"could not store the spans: {exc}", retry_after=consumer.retry_after()
        )
    except Exception as exc:  # a bug here must not take the listener down
        log.exception("unexpected error while exporting")
        return Outcome(500, message=f"internal error: {type(exc).__name__}")
    return Outcome(200, rejected=rejected, message=prepared.message)


class OtlpReceiver:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.http: Any = None
        self.grpc: Any = None

    def start(self, host: Host) -> None:
        protocols = self.config.protocols
        if protocols.grpc is not None:
            from collector.receivers.otlp_grpc import GrpcListener

            auth = (
                host.extension(protocols.grpc.auth.authenticator) if protocols.grpc.auth else None
            )
            self.grpc = GrpcListener(protocols.grpc, host.consumer, host.stats, auth)
            self.grpc.start()
        if protocols.http is not None:
            from collector.receivers.otlp_http import HttpListener

            auth = (
                host.extension(protocols.http.auth.authenticator) if protocols.http.auth else None
            )
            self.http = HttpListener(protocols.http, host.consumer, host.stats, auth)
            self.http.start()

    def stop_accepting(self) -> None:
        """Close the listeners; requests already being served run to completion."""
        if self.grpc is not None:
            self.grpc.stop_accepting()
        if self.http is not None:
            self.http.stop_accepting()

    def wait_idle(self, timeout: float) -> None:
        if self.grpc is not None:
            self.grpc.wait_idle(timeout)
        if self.http is not None:
            self.http.wait_idle(timeout)

    def shutdown(self) -> None:
        self.stop_accepting()

    @property
    def http_address(self) -> tuple[str, int] | None:
        return self.http.address if self.http is not None else None

    @property
    def grpc_address(self) -> tuple[str, int] | None:
        return self.grpc.address if self.grpc is not None else None


def create(config: Config) -> OtlpReceiver:
    return OtlpReceiver(config)
