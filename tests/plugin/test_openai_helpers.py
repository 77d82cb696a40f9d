"""The SDK's helper methods (parse, stream managers, embeddings) are traced like create."""

from __future__ import annotations

import openai
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_tokens import attributes as attr
from tests.plugin.conftest import client_spans
from tests.support.replay_server import ReplayFactory

CHAT = "openai/test_chat_completion_with_content.yaml"
CHAT_STREAM = "openai/test_chat_completion_streaming.yaml"
RESPONSES = "openai/test_responses_create_basic_content_mode0_.yaml"
RESPONSES_STREAM = "openai/test_responses_create_streaming_content_mode0_.yaml"
MESSAGES = [{"role": "user", "content": "Say this is a test"}]


def client(server: object) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="k", max_retries=0)  # type: ignore[attr-defined]


def tokens(exporter: InMemorySpanExporter) -> tuple[int, int]:
    (span,) = client_spans(exporter)
    attrs = span.attributes or {}
    return attrs[attr.GEN_AI_USAGE_INPUT_TOKENS], attrs[attr.GEN_AI_USAGE_OUTPUT_TOKENS]


def test_chat_parse_records_tokens(
    replay: ReplayFactory, exporter: InMemorySpanExporter, instrumented: None
) -> None:
    completion = client(replay(CHAT)).chat.completions.parse(model="gpt-4o-mini", messages=MESSAGES)
    assert completion.choices[0].message.content
    assert tokens(exporter) == (12, 5)


def test_chat_stream_helper_records_tokens_and_hides_the_usage_chunk(
    replay: ReplayFactory, exporter: InMemorySpanExporter, instrumented: None
) -> None:
    with client(replay(CHAT_STREAM)).chat.completions.stream(
        model="gpt-4", messages=MESSAGES
    ) as stream:
        chunks = [event.chunk for event in stream if event.type == "chunk"]
    assert chunks and all(chunk.choices for chunk in chunks)
    assert tokens(exporter) == (12, 5)


def test_responses_parse_records_tokens(
    replay: ReplayFactory, exporter: InMemorySpanExporter, instrumented: None
) -> None:
    response = client(replay(RESPONSES)).responses.parse(
        model="gpt-4o-mini", input="Say this is a test"
    )
    assert response.output_text
    assert tokens(exporter) == (22, 6)


def test_responses_stream_helper_records_tokens(
    replay: ReplayFactory, exporter: InMemorySpanExporter, instrumented: None
) -> None:
    with client(replay(RESPONSES_STREAM)).responses.stream(
        model="gpt-4o-mini", input="Say this is a test"
    ) as stream:
        final = stream.get_final_response()
    assert final.usage is not None and final.usage.input_tokens == 22
    assert tokens(exporter) == (22, 6)
    (span,) = client_spans(exporter)
    assert span.attributes[attr.GEN_AI_RESPONSE_MODEL] == "gpt-4o-mini-2024-07-18"


def test_with_streaming_response_leaves_the_body_to_the_caller(
    replay: ReplayFactory, exporter: InMemorySpanExporter, instrumented: None
) -> None:
    with client(replay(CHAT)).chat.completions.with_streaming_response.create(
        model="gpt-4o-mini", messages=MESSAGES
    ) as response:
        assert response.parse().usage.prompt_tokens == 12
    (span,) = client_spans(exporter)
    assert attr.GEN_AI_USAGE_INPUT_TOKENS not in (span.attributes or {})
