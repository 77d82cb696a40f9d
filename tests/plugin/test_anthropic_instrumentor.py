"""Anthropic instrumentor, driven through the real SDK against the recorded API responses."""

from __future__ import annotations

import asyncio
import gc
import inspect
import json
import warnings
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest
from genai_prices import Usage as PriceUsage
from genai_prices import calc_price
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from otel_tokens import attributes as attr
from otel_tokens.instrumentation.anthropic import AnthropicInstrumentor
from otel_tokens.pricing import default_price_book
from otel_tokens.usage import Usage
from tests.support import fixtures
from tests.support.replay_server import ReplayFactory, ReplayServer, load_cassette, usage_entries

replay = fixtures.replay

SYNTHETIC_CACHE = "anthropic/langchain_test_chat_anthropic_claude_sonnet_cache_token_details.yaml"
STREAM = "anthropic/test_sync_messages_create_streaming.yaml"
MESSAGE = "anthropic/test_sync_messages_create_basic.yaml"
CREATE_PARAMS = set(inspect.signature(anthropic.resources.messages.Messages.create).parameters)
STREAM_PARAMS = set(inspect.signature(anthropic.resources.messages.Messages.stream).parameters)
PARSE_PARAMS = set(inspect.signature(anthropic.resources.messages.Messages.parse).parameters)


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = AnthropicInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    warnings.filterwarnings("ignore", category=DeprecationWarning)  # recorded models are old
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


def recorded_kwargs(cassette: str, params: set[str]) -> dict[str, Any]:
    """The recorded request body as SDK keyword arguments (unknown keys go in extra_body)."""
    body = dict(load_cassette(cassette)[0].request_body)
    body.pop("stream", None)
    kwargs = {k: v for k, v in body.items() if k in params}
    extra = {k: v for k, v in body.items() if k not in params}
    if extra:
        kwargs["extra_body"] = extra
    return kwargs


def request_headers(cassette: str) -> set[str]:
    import yaml

    from tests.support.replay_server import fixtures_dir

    with (fixtures_dir() / cassette).open() as fh:
        request = yaml.safe_load(fh)["interactions"][0]["request"]
    return {h.lower() for h in request["headers"]}


def expected_usage(entry: dict[str, Any]) -> Usage:
    read, creation = entry["cache_read_tokens"], entry["cache_creation_tokens"]
    return Usage(
        input_tokens=entry["input_tokens"] + (read or 0) + (creation or 0),
        output_tokens=entry["output_tokens"],
        cache_read_tokens=read,
        cache_creation_tokens=creation,
    )


def sync_client(server: ReplayServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.url, api_key="test_anthropic_api_key", max_retries=0)


def async_client(server: ReplayServer) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(
        base_url=server.url, api_key="test_anthropic_api_key", max_retries=0
    )


def drive_recorded_call(cassette: str, server: ReplayServer) -> Any:
    """Call the SDK the way the recording was made: sync/async, beta, raw, stream helper, parse."""
    interaction = load_cassette(cassette)[0]
    headers = request_headers(cassette)
    body = interaction.request_body
    is_async = "async" in cassette
    beta = "beta" in cassette
    if "x-stainless-helper-method" in headers:
        style = "stream_helper"
    elif "x-stainless-helper" in headers:
        style = "parse"
    elif body.get("stream"):
        style = "create_stream"
    else:
        style = "create"
    raw = "x-stainless-raw-response" in headers or "raw_response" in cassette

    if not is_async:
        client = sync_client(server)
        messages: Any = client.beta.messages if beta else client.messages
        if style == "stream_helper":
            with messages.stream(**recorded_kwargs(cassette, STREAM_PARAMS)) as stream:
                return stream.get_final_message()
        if style == "parse":
            return messages.parse(**recorded_kwargs(cassette, PARSE_PARAMS))
        target = messages.with_raw_response if raw else messages
        kwargs = recorded_kwargs(cassette, CREATE_PARAMS)
        if style == "create_stream":
            result = target.create(stream=True, **kwargs)
            stream = result.parse() if raw else result
            return [event for event in stream]
        result = target.create(**kwargs)
        return result.parse() if raw else result

    async def run() -> Any:
        client = async_client(server)
        messages: Any = client.beta.messages if beta else client.messages
        if style == "stream_helper":
            async with messages.stream(**recorded_kwargs(cassette, STREAM_PARAMS)) as stream:
                return await stream.get_final_message()
        target = messages.with_raw_response if raw else messages
        result = await target.create(**recorded_kwargs(cassette, CREATE_PARAMS))
        return (await result.parse()) if raw else result

    return asyncio.run(run())


@pytest.mark.parametrize("entry", usage_entries("anthropic", ok=True), ids=lambda e: e["file"])
def test_every_recorded_call_records_the_recorded_usage_and_its_cost(
    exporter: InMemorySpanExporter, replay: ReplayFactory, entry: dict[str, Any]
) -> None:
    server = replay(entry["file"])
    drive_recorded_call(entry["file"], server)
    assert server.unmatched == [] and server.unused == []

    span = only_span(exporter)
    attrs = span.attributes or {}
    usage = expected_usage(entry)
    assert span.name == f"chat {server.requests[0].body['model']}"
    assert attrs[attr.GEN_AI_PROVIDER_NAME] == "anthropic"
    assert attrs[attr.GEN_AI_OPERATION_NAME] == "chat"
    assert attrs[attr.GEN_AI_RESPONSE_MODEL] == entry["model"]
    assert attrs[attr.GEN_AI_USAGE_INPUT_TOKENS] == usage.input_tokens
    assert attrs[attr.GEN_AI_USAGE_OUTPUT_TOKENS] == usage.output_tokens
    assert attrs[attr.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == usage.cache_read_tokens
    assert attrs[attr.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] == usage.cache_creation_tokens
    assert attr.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS not in attrs
    assert attr.OTEL_TOKENS_USAGE_ESTIMATED not in attrs
    assert span.status.status_code == StatusCode.UNSET

    cost = default_price_book().cost(usage, entry["model"], "anthropic")
    assert cost is not None, f"no price for {entry['model']}"
    assert attrs[attr.GEN_AI_USAGE_COST_AMOUNT] == pytest.approx(cost.amount, rel=1e-9)
    assert attrs[attr.GEN_AI_USAGE_COST_SOURCE] == "local"
    assert attrs[attr.OTEL_TOKENS_PRICING_REF] == cost.ref


def test_cache_tokens_count_as_input_and_cost_matches_genai_prices(
    exporter: InMemorySpanExporter, replay: ReplayFactory
) -> None:
    drive_recorded_call(SYNTHETIC_CACHE, replay(SYNTHETIC_CACHE))
    attrs = only_span(exporter).attributes or {}
    # Recorded: input_tokens 13, cache_read 4, cache_creation 5, output 10.
    assert attrs[attr.GEN_AI_USAGE_INPUT_TOKENS] == 22
    assert attrs[attr.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 4
    assert attrs[attr.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] == 5
    assert attrs[attr.GEN_AI_USAGE_OUTPUT_TOKENS] == 10
    # genai-prices, like the semconv, counts input_tokens inclusive of cache reads and writes.
    price = calc_price(
        PriceUsage(input_tokens=22, cache_read_tokens=4, cache_write_tokens=5, output_tokens=10),
        model_ref="claude-sonnet-4-5",
        provider_id="anthropic",
    )
    assert attrs[attr.GEN_AI_USAGE_COST_AMOUNT] == pytest.approx(float(price.total_price))
    assert float(price.total_price) > 0


@pytest.mark.parametrize("entry", usage_entries("anthropic", ok=False), ids=lambda e: e["file"])
def test_api_errors_mark_the_span_failed_and_the_sdk_exception_passes_through(
    exporter: InMemorySpanExporter, replay: ReplayFactory, entry: dict[str, Any]
) -> None:
    server = replay(entry["file"])
    with pytest.raises(anthropic.NotFoundError) as raised:
        drive_recorded_call(entry["file"], server)
    assert raised.value.status_code == 404
    span = only_span(exporter)
    assert span.status.status_code == StatusCode.ERROR
    assert (span.attributes or {})[attr.ERROR_TYPE] == "NotFoundError"
    assert attr.GEN_AI_USAGE_INPUT_TOKENS not in (span.attributes or {})


def _stream_kwargs() -> dict[str, Any]:
    return recorded_kwargs(STREAM, STREAM_PARAMS)


def consume_text_stream(client: anthropic.Anthropic) -> None:
    with client.messages.stream(**_stream_kwargs()) as stream:
        assert "".join(stream.text_stream) == "Hello."


def consume_events_of_stream_helper(client: anthropic.Anthropic) -> None:
    with client.messages.stream(**_stream_kwargs()) as stream:
        assert [e.type for e in stream][-1] == "message_stop"


def consume_beta_stream_helper(client: anthropic.Anthropic) -> None:
    with client.beta.messages.stream(**_stream_kwargs()) as stream:
        assert stream.get_final_text() == "Hello."


def consume_beta_create_stream(client: anthropic.Anthropic) -> None:
    events = list(client.beta.messages.create(stream=True, **_stream_kwargs()))
    assert events[-1].type == "message_stop"


def consume_create_stream_as_context_manager(client: anthropic.Anthropic) -> None:
    with client.messages.create(stream=True, **_stream_kwargs()) as stream:
        assert len(list(stream)) > 3


def consume_with_streaming_response(client: anthropic.Anthropic) -> None:
    with client.messages.with_streaming_response.create(stream=True, **_stream_kwargs()) as r:
        assert [e.type for e in r.parse()][-1] == "message_stop"


@pytest.mark.parametrize(
    "consume",
    [
        consume_text_stream,
        consume_events_of_stream_helper,
        consume_beta_stream_helper,
        consume_beta_create_stream,
        consume_create_stream_as_context_manager,
        consume_with_streaming_response,
    ],
)
def test_every_way_of_reading_a_stream_records_the_same_tokens(
    exporter: InMemorySpanExporter, replay: ReplayFactory, consume: Any
) -> None:
    consume(sync_client(replay(STREAM)))
    attrs = only_span(exporter).attributes or {}
    assert attrs[attr.GEN_AI_USAGE_INPUT_TOKENS] == 13
    assert attrs[attr.GEN_AI_USAGE_OUTPUT_TOKENS] == 5
    assert attrs[attr.GEN_AI_RESPONSE_FINISH_REASONS] == ("end_turn",)


async def test_async_create_stream_records_tokens(
    exporter: InMemorySpanExporter, replay: ReplayFactory
) -> None:
    client = async_client(replay(STREAM))
    stream = await client.messages.create(stream=True, **_stream_kwargs())
    events = [event async for event in stream]
    assert events[-1].type == "message_stop"
    attrs = only_span(exporter).attributes or {}
    assert attrs[attr.GEN_AI_USAGE_INPUT_TOKENS] == 13
    assert attrs[attr.GEN_AI_USAGE_OUTPUT_TOKENS] == 5


async def test_async_stream_helper_text_stream_records_tokens(
    exporter: InMemorySpanExporter, replay: ReplayFactory
) -> None:
    client = async_client(replay(STREAM))
    async with client.beta.messages.stream(**_stream_kwargs()) as stream:
        assert "".join([t async for t in stream.text_stream]) == "Hello."
    assert (only_span(exporter).attributes or {})[attr.GEN_AI_USAGE_OUTPUT_TOKENS] == 5


def test_stream_closed_early_ends_its_span_once_with_the_usage_known_so_far(
    exporter: InMemorySpanExporter, replay: ReplayFactory
) -> None:
    client = sync_client(replay(STREAM))
    stream = client.messages.create(stream=True, **_stream_kwargs())
    first = next(iter(stream))
    assert first.type == "message_start"
    stream.close()
    stream.close()
    del stream
    gc.collect()
    span = only_span(exporter)
    attrs = span.attributes or {}
    assert span.status.status_code == StatusCode.UNSET
    # message_start reported the input and a provisional output count.
    assert attrs[attr.GEN_AI_USAGE_INPUT_TOKENS] == 13
    assert attrs[attr.GEN_AI_USAGE_OUTPUT_TOKENS] == 2


def test_stream_helper_left_early_ends_its_span_once(
    exporter: InMemorySpanExporter, replay: ReplayFactory
) -> None:
    client = sync_client(replay(STREAM))
    with client.messages.stream(**_stream_kwargs()) as stream:
        for _ in stream:
            break
    gc.collect()
    assert (only_span(exporter).attributes or {})[attr.GEN_AI_USAGE_INPUT_TOKENS] == 13


def test_abandoned_stream_ends_its_span_when_dropped(
    exporter: InMemorySpanExporter, replay: ReplayFactory
) -> None:
    client = sync_client(replay(STREAM))
    stream = client.messages.create(stream=True, **_stream_kwargs())
    next(iter(stream))
    assert llm_spans(exporter) == []
    del stream
    gc.collect()
    assert len(llm_spans(exporter)) == 1


def test_stream_failing_mid_way_ends_its_span_with_error_and_known_usage(
    exporter: InMemorySpanExporter, replay: ReplayFactory
) -> None:
    server = replay(STREAM)
    # Cut the recorded stream after message_start: the connection ends mid-stream.
    interaction = server.interactions[0]
    interaction.body = interaction.body.split(b"event: content_block_start")[0] + (
        b'event: error\ndata: {"type": "error", "error": {"type": "overloaded_error", '
        b'"message": "Overloaded"}}\n\n'
    )
    client = sync_client(server)
    with pytest.raises(anthropic.APIStatusError):
        for _ in client.messages.create(stream=True, **_stream_kwargs()):
            pass
    span = only_span(exporter)
    assert span.status.status_code == StatusCode.ERROR
    assert (span.attributes or {})[attr.GEN_AI_USAGE_INPUT_TOKENS] == 13


def test_stream_proxies_still_expose_the_sdk_stream_attributes(
    exporter: InMemorySpanExporter, replay: ReplayFactory
) -> None:
    client = sync_client(replay(STREAM, STREAM))
    with client.messages.stream(**_stream_kwargs()) as stream:
        assert stream.response.status_code == 200
        assert stream.request_id == "req_011CYfQMiWJUo29ePpD2ATbD"
        stream.until_done()
    created = client.messages.create(stream=True, **_stream_kwargs())
    assert isinstance(created, anthropic.Stream)
    assert created.response.headers["request-id"] == "req_011CYfQMiWJUo29ePpD2ATbD"
    created.close()
    assert len(llm_spans(exporter)) == 2


def test_sdk_own_span_is_not_a_second_llm_span(replay: ReplayFactory) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = AnthropicInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        server = replay(MESSAGE)
        # The SDK's own tracing, pointed at the same provider.
        client = anthropic.Anthropic(
            base_url=server.url,
            api_key="k",
            max_retries=0,
            open_telemetry={"tracer_provider": provider},
        )
        client.messages.create(**recorded_kwargs(MESSAGE, CREATE_PARAMS))
    finally:
        instrumentor.uninstrument()
    spans = exporter.get_finished_spans()
    assert [s.name for s in spans] == ["chat claude-sonnet-4-20250514"]


def test_uninstrument_removes_the_spans(replay: ReplayFactory) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = AnthropicInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    instrumentor.uninstrument()
    sync_client(replay(MESSAGE)).messages.create(**recorded_kwargs(MESSAGE, CREATE_PARAMS))
    assert exporter.get_finished_spans() == ()


def test_request_body_reaches_the_api_unchanged(
    exporter: InMemorySpanExporter, replay: ReplayFactory
) -> None:
    server = replay(MESSAGE)
    sync_client(server).messages.create(**recorded_kwargs(MESSAGE, CREATE_PARAMS))
    assert server.requests[0].body == load_cassette(MESSAGE)[0].request_body
    assert json.loads(server.requests[0].raw_body) == server.requests[0].body


def test_request_parameters_become_request_attributes(
    exporter: InMemorySpanExporter, replay: ReplayFactory
) -> None:
    cassette = "anthropic/test_sync_messages_create_with_all_params.yaml"
    drive_recorded_call(cassette, replay(cassette))
    attrs = only_span(exporter).attributes or {}
    assert attrs[attr.GEN_AI_REQUEST_MAX_TOKENS] == 50
    assert attrs[attr.GEN_AI_REQUEST_TEMPERATURE] == 0.7
    assert attrs[attr.GEN_AI_REQUEST_TOP_P] == 0.9
    assert attrs[attr.GEN_AI_REQUEST_TOP_K] == 40
    assert attrs[attr.SERVER_ADDRESS] == "127.0.0.1"


def test_another_instrumentations_span_gets_the_usage_instead_of_a_second_span(
    exporter: InMemorySpanExporter, replay: ReplayFactory
) -> None:
    foreign = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(foreign))
    tracer = provider.get_tracer("some.other.instrumentation")
    client = sync_client(replay(SYNTHETIC_CACHE))
    with tracer.start_as_current_span(
        "anthropic.chat", kind=SpanKind.CLIENT, attributes={attr.OLD_GEN_AI_SYSTEM: "anthropic"}
    ):
        client.messages.create(**recorded_kwargs(SYNTHETIC_CACHE, CREATE_PARAMS))
    assert llm_spans(exporter) == []
    (span,) = foreign.get_finished_spans()
    assert (span.attributes or {})[attr.GEN_AI_USAGE_INPUT_TOKENS] == 22


async def test_async_with_streaming_response_records_tokens(
    exporter: InMemorySpanExporter, replay: ReplayFactory
) -> None:
    client = async_client(replay(STREAM))
    async with client.messages.with_streaming_response.create(
        stream=True, **_stream_kwargs()
    ) as response:
        events = [event async for event in await response.parse()]
    assert events[-1].type == "message_stop"
    assert (only_span(exporter).attributes or {})[attr.GEN_AI_USAGE_OUTPUT_TOKENS] == 5


def test_raw_response_read_without_parse_still_ends_its_span(
    exporter: InMemorySpanExporter, replay: ReplayFactory
) -> None:
    client = sync_client(replay(STREAM))
    with client.messages.with_streaming_response.create(stream=True, **_stream_kwargs()) as r:
        assert b"message_stop" in b"".join(r.iter_bytes())
    attrs = only_span(exporter).attributes or {}
    # The application read the bytes itself: only an estimate of the prompt is possible.
    assert attrs[attr.OTEL_TOKENS_USAGE_ESTIMATED] is True


def test_a_failure_inside_otel_tokens_never_reaches_the_application(
    exporter: InMemorySpanExporter, replay: ReplayFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from otel_tokens.instrumentation.anthropic import patch

    def broken(message: Any) -> Any:
        raise RuntimeError("bug in otel_tokens")

    monkeypatch.setattr(patch, "usage_from_message", broken)
    message = sync_client(replay(MESSAGE)).messages.create(
        **recorded_kwargs(MESSAGE, CREATE_PARAMS)
    )
    assert message.usage.output_tokens == 5
    span = only_span(exporter)  # still ended, exactly once
    assert span.status.status_code == StatusCode.UNSET


async def test_concurrent_streams_in_different_scopes_keep_their_own_user_and_node(
    replay: ReplayFactory,
) -> None:
    import otel_tokens
    from otel_tokens.processor import StampingProcessor

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(StampingProcessor())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = AnthropicInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        client = async_client(replay(STREAM, STREAM, repeat=True))

        async def ask(user: str, node: str) -> None:
            with otel_tokens.usage_context(user_id=user), otel_tokens.node(node):
                async with client.messages.stream(**_stream_kwargs()) as stream:
                    async for _ in stream.text_stream:
                        await asyncio.sleep(0)  # interleave the two streams

        await asyncio.gather(ask("u1", "classify"), ask("u2", "extract"))
    finally:
        instrumentor.uninstrument()
    stamped = {
        ((s.attributes or {})[attr.ENDUSER_ID], (s.attributes or {})[attr.OTEL_TOKENS_NODE])
        for s in llm_spans(exporter)
    }
    assert stamped == {("u1", "classify"), ("u2", "extract")}
    assert all(
        (s.attributes or {})[attr.GEN_AI_USAGE_OUTPUT_TOKENS] == 5 for s in llm_spans(exporter)
    )


def test_claude_on_bedrock_or_vertex_is_reported_with_that_provider(
    exporter: InMemorySpanExporter, replay: ReplayFactory
) -> None:
    server = replay()
    # The recorded Messages reply, served where Vertex AI serves Claude.
    recorded = load_cassette(MESSAGE)[0]
    recorded.path = (
        "/projects/test-project/locations/us-east5/publishers/anthropic/models/"
        "claude-sonnet-4-20250514:rawPredict"
    )
    server.interactions.append(recorded)
    client = anthropic.AnthropicVertex(
        region="us-east5",
        project_id="test-project",
        access_token="test-token",
        base_url=server.url,
        max_retries=0,
    )
    client.messages.create(**recorded_kwargs(MESSAGE, CREATE_PARAMS))
    attrs = only_span(exporter).attributes or {}
    assert attrs[attr.GEN_AI_PROVIDER_NAME] == "gcp.vertex_ai"
    assert attrs[attr.GEN_AI_USAGE_INPUT_TOKENS] == 13
