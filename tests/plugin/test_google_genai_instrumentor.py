"""Google GenAI instrumentor, driven through the real SDK against the recorded API responses."""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import Iterator
from typing import Any

import google.oauth2.credentials
import pytest
from google import genai
from google.genai import errors, types
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from otel_tokens import attributes as attr
from otel_tokens.instrumentation.google_genai import GoogleGenAIInstrumentor
from otel_tokens.pricing import default_price_book
from otel_tokens.usage import Usage
from tests.support import fixtures
from tests.support.replay_server import (
    Interaction,
    ReplayFactory,
    ReplayServer,
    load_cassette,
    usage_entries,
)

replay = fixtures.replay

MODEL = "gemini-2.5-flash"
STREAM = "gemini/test_streaming_logcontent-gemini-2.5-flash-vertexaiapi-sync-default_.yaml"
ONE_SHOT = "gemini/test_non_streaming_logcontent-gemini-2.5-flash-vertexaiapi-sync-default_.yaml"


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = GoogleGenAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        yield exporter
    finally:
        instrumentor.uninstrument()


def llm_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.kind == SpanKind.CLIENT]


def only_span(exporter: InMemorySpanExporter) -> ReadableSpan:
    spans = llm_spans(exporter)
    assert len(spans) == 1, [s.name for s in spans]
    return spans[0]


def vertex_client(server: ReplayServer) -> genai.Client:
    # Offline credentials: a bearer token object never refreshed, so no network is touched.
    return genai.Client(
        vertexai=True,
        project="test-project",
        location="test-location",
        credentials=google.oauth2.credentials.Credentials("test-token"),
        http_options=types.HttpOptions(base_url=server.url),
    )


def gemini_client(server: ReplayServer) -> genai.Client:
    return genai.Client(api_key="test-key", http_options=types.HttpOptions(base_url=server.url))


def recorded_contents(cassette: str) -> Any:
    return load_cassette(cassette)[0].request_body["contents"]


def expected_usage(entry: dict[str, Any]) -> Usage:
    thoughts = entry["reasoning_tokens"]
    return Usage(
        input_tokens=entry["input_tokens"],
        output_tokens=entry["output_tokens"] + (thoughts or 0),
        cache_read_tokens=entry["cache_read_tokens"],
        reasoning_tokens=thoughts,
    )


def drive_recorded_call(cassette: str, client: genai.Client) -> str:
    """Call the SDK as the recording did (sync/async, streaming or not); return the text."""
    contents = recorded_contents(cassette)
    streaming = "/test_streaming_" in cassette  # (not "non_streaming")
    if "-async-" not in cassette:
        if streaming:
            chunks = client.models.generate_content_stream(model=MODEL, contents=contents)
            return "".join(chunk.text or "" for chunk in chunks)
        return client.models.generate_content(model=MODEL, contents=contents).text or ""

    async def run() -> str:
        if streaming:
            stream = await client.aio.models.generate_content_stream(model=MODEL, contents=contents)
            return "".join([chunk.text or "" async for chunk in stream])
        response = await client.aio.models.generate_content(model=MODEL, contents=contents)
        return response.text or ""

    return asyncio.run(run())


@pytest.mark.parametrize("entry", usage_entries("gemini", ok=True), ids=lambda e: e["file"])
def test_every_recorded_call_records_the_recorded_usage_and_its_cost(
    exporter: InMemorySpanExporter, replay: ReplayFactory, entry: dict[str, Any]
) -> None:
    server = replay(entry["file"])
    text = drive_recorded_call(entry["file"], vertex_client(server))
    assert text
    assert server.unmatched == [] and server.unused == []

    span = only_span(exporter)
    attrs = span.attributes or {}
    usage = expected_usage(entry)
    assert span.name == f"generate_content {MODEL}"
    assert attrs[attr.GEN_AI_PROVIDER_NAME] == "gcp.vertex_ai"
    assert attrs[attr.GEN_AI_OPERATION_NAME] == "generate_content"
    assert attrs[attr.GEN_AI_RESPONSE_MODEL] == entry["model"]
    assert attrs[attr.GEN_AI_USAGE_INPUT_TOKENS] == usage.input_tokens
    # Output includes the thinking tokens Gemini reports beside the candidates.
    assert attrs[attr.GEN_AI_USAGE_OUTPUT_TOKENS] == usage.output_tokens
    assert attrs[attr.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == entry["reasoning_tokens"]
    assert attr.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS not in attrs  # not in the response
    assert attr.OTEL_TOKENS_USAGE_ESTIMATED not in attrs
    assert attrs[attr.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert span.status.status_code == StatusCode.UNSET

    cost = default_price_book().cost(usage, entry["model"], "gcp.vertex_ai")
    assert cost is not None, f"no price for {entry['model']}"
    assert attrs[attr.GEN_AI_USAGE_COST_AMOUNT] == pytest.approx(cost.amount, rel=1e-9)
    assert attrs[attr.OTEL_TOKENS_PRICING_REF] == cost.ref


def test_cost_counts_thinking_tokens_at_the_output_price(
    exporter: InMemorySpanExporter, replay: ReplayFactory
) -> None:
    from genai_prices import Usage as PriceUsage
    from genai_prices import calc_price

    drive_recorded_call(ONE_SHOT, vertex_client(replay(ONE_SHOT)))
    attrs = only_span(exporter).attributes or {}
    # Recorded: prompt 8, candidates 433, thoughts 1477.
    price = calc_price(
        PriceUsage(input_tokens=8, output_tokens=433 + 1477),
        model_ref=MODEL,
        provider_id="google",
    )
    assert attrs[attr.GEN_AI_USAGE_COST_AMOUNT] == pytest.approx(float(price.total_price))


def test_gemini_api_client_is_reported_as_gcp_gemini(
    exporter: InMemorySpanExporter, replay: ReplayFactory
) -> None:
    server = replay(ONE_SHOT)
    drive_recorded_call(ONE_SHOT, gemini_client(server))
    attrs = only_span(exporter).attributes or {}
    assert attrs[attr.GEN_AI_PROVIDER_NAME] == "gcp.gemini"
    assert attrs[attr.GEN_AI_USAGE_INPUT_TOKENS] == 8
    assert attrs[attr.SERVER_ADDRESS] == "127.0.0.1"
    assert attrs[attr.SERVER_PORT] == server.port


def test_stream_closed_early_ends_its_span_once(
    exporter: InMemorySpanExporter, replay: ReplayFactory
) -> None:
    client = vertex_client(replay(STREAM))
    stream = client.models.generate_content_stream(model=MODEL, contents="x")
    first = next(iter(stream))
    assert first.text
    stream.close()  # type: ignore[attr-defined]  # typed Iterator, really a generator
    del stream
    gc.collect()
    span = only_span(exporter)
    assert span.status.status_code == StatusCode.UNSET
    # Gemini reports the counts only in the last chunk: none are known after the first.
    assert (span.attributes or {})[attr.OTEL_TOKENS_USAGE_ESTIMATED] is True


def test_abandoned_stream_ends_its_span_when_dropped(
    exporter: InMemorySpanExporter, replay: ReplayFactory
) -> None:
    client = vertex_client(replay(STREAM))
    stream = client.models.generate_content_stream(model=MODEL, contents="x")
    next(iter(stream))
    assert llm_spans(exporter) == []
    del stream
    gc.collect()
    assert len(llm_spans(exporter)) == 1


def test_stream_failing_mid_way_ends_its_span_with_error(
    exporter: InMemorySpanExporter, replay: ReplayFactory
) -> None:
    server = replay(STREAM)
    interaction = server.interactions[0]
    first_event = interaction.body.split(b"\r\n\r\n")[0]
    interaction.body = first_event + b"\r\n\r\ndata: {not json\r\n\r\n"
    client = vertex_client(server)
    with pytest.raises(Exception) as raised:
        for _ in client.models.generate_content_stream(model=MODEL, contents="x"):
            pass
    span = only_span(exporter)
    assert span.status.status_code == StatusCode.ERROR
    assert (span.attributes or {})[attr.ERROR_TYPE] == type(raised.value).__qualname__


def _error_interaction(path: str) -> Interaction:
    body = {"error": {"code": 404, "message": "Publisher model not found.", "status": "NOT_FOUND"}}
    return Interaction(
        cassette="(synthetic)",
        index=0,
        method="POST",
        path=path,
        status=404,
        reason="Not Found",
        headers=[("Content-Type", "application/json; charset=UTF-8")],
        body=json.dumps(body).encode(),
    )


@pytest.mark.parametrize("mode", ["sync", "async", "stream", "async_stream"])
def test_api_errors_mark_the_span_failed_and_the_sdk_exception_passes_through(
    exporter: InMemorySpanExporter, replay: ReplayFactory, mode: str
) -> None:
    # No Gemini error was recorded: a 404 in the API's documented error shape.
    server = replay()
    method = "streamGenerateContent" if "stream" in mode else "generateContent"
    server.interactions.append(_error_interaction(f"/v1beta1/x/models/nope:{method}"))
    client = vertex_client(server)

    async def call_async() -> None:
        if mode == "async":
            await client.aio.models.generate_content(model="nope", contents="x")
        else:
            async for _ in await client.aio.models.generate_content_stream(
                model="nope", contents="x"
            ):
                pass

    with pytest.raises(errors.ClientError) as raised:
        if mode == "sync":
            client.models.generate_content(model="nope", contents="x")
        elif mode == "stream":
            list(client.models.generate_content_stream(model="nope", contents="x"))
        else:
            asyncio.run(call_async())
    assert raised.value.code == 404
    span = only_span(exporter)
    assert span.status.status_code == StatusCode.ERROR
    assert (span.attributes or {})[attr.ERROR_TYPE] == "ClientError"
    assert attr.GEN_AI_USAGE_INPUT_TOKENS not in (span.attributes or {})


def _json_interaction(path: str, body: dict[str, Any]) -> Interaction:
    return Interaction(
        cassette="(synthetic)",
        index=0,
        method="POST",
        path=path,
        status=200,
        reason="OK",
        headers=[("Content-Type", "application/json; charset=UTF-8")],
        body=json.dumps(body).encode(),
    )


def test_vertex_embeddings_sum_the_per_embedding_token_counts(
    exporter: InMemorySpanExporter, replay: ReplayFactory
) -> None:
    # No embedding call was recorded: Vertex AI's documented predict response shape.
    server = replay()
    prediction = {"embeddings": {"values": [0.1, 0.2], "statistics": {"token_count": 3}}}
    server.interactions.append(
        _json_interaction(
            "/v1beta1/x/models/text-embedding-005:predict",
            {"predictions": [prediction, prediction], "metadata": {"billableCharacterCount": 9}},
        )
    )
    client = vertex_client(server)  # keep a reference: a dropped Client closes its connection
    result = client.models.embed_content(model="text-embedding-005", contents=["hello", "world"])
    assert result.embeddings and len(result.embeddings) == 2
    span = only_span(exporter)
    attrs = span.attributes or {}
    assert span.name == "embeddings text-embedding-005"
    assert attrs[attr.GEN_AI_OPERATION_NAME] == "embeddings"
    assert attrs[attr.GEN_AI_USAGE_INPUT_TOKENS] == 6
    assert attr.GEN_AI_USAGE_OUTPUT_TOKENS not in attrs


async def test_gemini_embeddings_without_usage_are_estimated_and_flagged(
    exporter: InMemorySpanExporter, replay: ReplayFactory
) -> None:
    server = replay()
    server.interactions.append(
        _json_interaction(
            "/v1beta/models/text-embedding-004:batchEmbedContents",
            {"embeddings": [{"values": [0.1]}]},
        )
    )
    client = gemini_client(server)
    await client.aio.models.embed_content(model="text-embedding-004", contents="sixteen chars!!!")
    attrs = only_span(exporter).attributes or {}
    assert attrs[attr.GEN_AI_PROVIDER_NAME] == "gcp.gemini"
    assert attrs[attr.OTEL_TOKENS_USAGE_ESTIMATED] is True
    assert attrs[attr.GEN_AI_USAGE_INPUT_TOKENS] == 4


def test_request_config_becomes_request_attributes(
    exporter: InMemorySpanExporter, replay: ReplayFactory
) -> None:
    client = vertex_client(replay(ONE_SHOT))
    client.models.generate_content(
        model=MODEL,
        contents="x",
        config=types.GenerateContentConfig(temperature=0.2, top_p=0.5, max_output_tokens=64),
    )
    attrs = only_span(exporter).attributes or {}
    assert attrs[attr.GEN_AI_REQUEST_TEMPERATURE] == 0.2
    assert attrs[attr.GEN_AI_REQUEST_TOP_P] == 0.5
    assert attrs[attr.GEN_AI_REQUEST_MAX_TOKENS] == 64


def test_uninstrument_removes_the_spans(replay: ReplayFactory) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = GoogleGenAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    instrumentor.uninstrument()
    drive_recorded_call(ONE_SHOT, vertex_client(replay(ONE_SHOT)))
    assert exporter.get_finished_spans() == ()


def test_automatic_function_calling_records_every_billed_request(
    exporter: InMemorySpanExporter, replay: ReplayFactory
) -> None:
    # Synthetic: one public call, two API requests (function call, then the final answer).
    server = replay()
    path = "/v1beta1/x/models/gemini-2.5-flash:generateContent"
    call = {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}
    server.interactions += [
        _json_interaction(
            path,
            {
                "candidates": [{"content": {"role": "model", "parts": [call]}}],
                "usageMetadata": {"promptTokenCount": 20, "candidatesTokenCount": 5},
                "modelVersion": MODEL,
            },
        ),
        _json_interaction(
            path,
            {
                "candidates": [
                    {
                        "content": {"role": "model", "parts": [{"text": "Sunny."}]},
                        "finishReason": "STOP",
                    }
                ],
                "usageMetadata": {
                    "promptTokenCount": 40,
                    "candidatesTokenCount": 7,
                    "thoughtsTokenCount": 3,
                },
                "modelVersion": MODEL,
            },
        ),
    ]

    def get_weather(city: str) -> str:
        """Weather of a city."""
        return "sunny"

    client = vertex_client(server)
    response = client.models.generate_content(
        model=MODEL,
        contents="Weather in Paris?",
        config=types.GenerateContentConfig(tools=[get_weather]),
    )
    assert response.text == "Sunny."
    spans = llm_spans(exporter)
    assert [(s.attributes or {})[attr.GEN_AI_USAGE_INPUT_TOKENS] for s in spans] == [20, 40]
    assert [(s.attributes or {})[attr.GEN_AI_USAGE_OUTPUT_TOKENS] for s in spans] == [5, 10]


async def test_async_stream_closed_early_ends_its_span_once(
    exporter: InMemorySpanExporter, replay: ReplayFactory
) -> None:
    client = vertex_client(replay(STREAM))
    stream = await client.aio.models.generate_content_stream(model=MODEL, contents="x")
    async for _ in stream:
        break
    await stream.aclose()  # type: ignore[attr-defined]  # typed AsyncIterator, an async generator
    # The SDK's own generator sits outside ours; Python closes an abandoned async generator
    # through the event loop's finalizer, so give the loop a turn.
    del stream
    gc.collect()
    for _ in range(200):  # the finalizer's aclose() also closes the HTTP response
        if llm_spans(exporter):
            break
        await asyncio.sleep(0.01)
    assert len(llm_spans(exporter)) == 1
    assert only_span(exporter).status.status_code == StatusCode.UNSET


def test_another_instrumentations_span_gets_the_usage_instead_of_a_second_span(
    exporter: InMemorySpanExporter, replay: ReplayFactory
) -> None:
    foreign = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(foreign))
    tracer = provider.get_tracer("some.other.instrumentation")
    client = vertex_client(replay(ONE_SHOT))
    with tracer.start_as_current_span(
        "chat gemini",
        kind=SpanKind.CLIENT,
        attributes={attr.GEN_AI_OPERATION_NAME: "chat", attr.OLD_GEN_AI_SYSTEM: "Gemini"},
    ):
        client.models.generate_content(model=MODEL, contents="x")
    assert llm_spans(exporter) == []
    (span,) = foreign.get_finished_spans()
    assert (span.attributes or {})[attr.GEN_AI_USAGE_INPUT_TOKENS] == 8
    cost = (span.attributes or {})[attr.GEN_AI_USAGE_COST_AMOUNT]
    assert isinstance(cost, float) and cost > 0


def test_a_failure_inside_otel_tokens_never_reaches_the_application(
    exporter: InMemorySpanExporter, replay: ReplayFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from otel_tokens.instrumentation.google_genai import patch, stream

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("bug in otel_tokens")

    monkeypatch.setattr(patch, "usage_from_response", broken)
    monkeypatch.setattr(stream.StreamUsage, "usage", broken)
    server = replay(ONE_SHOT, STREAM)
    client = vertex_client(server)
    assert client.models.generate_content(model=MODEL, contents="x").text
    assert "".join(
        c.text or "" for c in client.models.generate_content_stream(model=MODEL, contents="x")
    )
    assert len(llm_spans(exporter)) == 2


def test_calls_inside_an_agent_span_get_their_own_spans(
    exporter: InMemorySpanExporter, replay: ReplayFactory
) -> None:
    tracer = TracerProvider().get_tracer("agents")
    client = vertex_client(replay(ONE_SHOT, ONE_SHOT))
    agent = {attr.GEN_AI_OPERATION_NAME: "invoke_agent", attr.GEN_AI_PROVIDER_NAME: "gcp.gemini"}
    with tracer.start_as_current_span(
        "invoke_agent helper", kind=SpanKind.CLIENT, attributes=agent
    ):
        client.models.generate_content(model=MODEL, contents="x")
        client.models.generate_content(model=MODEL, contents="x")
    assert len(llm_spans(exporter)) == 2
