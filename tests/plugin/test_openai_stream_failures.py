"""Streams that fail mid-way or are left by the caller's own exception still end their span."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator

import openai
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from otel_tokens import attributes as attr
from tests.plugin.conftest import client_spans

CHUNK = {
    "id": "chatcmpl-1",
    "object": "chat.completion.chunk",
    "created": 1,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hello there"}}],
}


@pytest.fixture
def cut_off_server() -> Iterator[str]:
    """Answers one streaming request with one SSE event, then drops the connection."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
            while len(body) < length:
                body += conn.recv(65536)
            event = b"data: " + json.dumps(CHUNK).encode() + b"\n\n"
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n%s\r\n" % (len(event), event)
            )
            # No terminating chunk: the connection just ends.

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}/v1"
    thread.join(timeout=5)
    listener.close()


def test_stream_failing_mid_way_ends_span_once_with_error_and_estimate(
    cut_off_server: str, exporter: InMemorySpanExporter, instrumented: None
) -> None:
    client = openai.OpenAI(base_url=cut_off_server, api_key="k", max_retries=0)
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Say hello"}], stream=True
    )
    received = []
    with pytest.raises(openai.APIError):
        for chunk in stream:
            received.append(chunk)
    assert [c.choices[0].delta.content for c in received] == ["Hello there"]
    stream.close()
    (span,) = client_spans(exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[attr.ERROR_TYPE]
    assert span.attributes[attr.OTEL_TOKENS_USAGE_ESTIMATED] is True
    assert span.attributes[attr.GEN_AI_USAGE_OUTPUT_TOKENS] == 3  # "Hello there": 11 chars


def test_exception_in_the_callers_with_block_ends_the_stream_span_with_error(
    replay: object, exporter: InMemorySpanExporter, instrumented: None
) -> None:
    server = replay("openai/test_chat_completion_streaming.yaml")  # type: ignore[operator]
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="k", max_retries=0)
    with pytest.raises(RuntimeError):
        with client.chat.completions.create(
            model="gpt-4", messages=[{"role": "user", "content": "Say this"}], stream=True
        ) as stream:
            next(iter(stream))
            raise RuntimeError("caller gave up")
    (span,) = client_spans(exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[attr.ERROR_TYPE] == "RuntimeError"
