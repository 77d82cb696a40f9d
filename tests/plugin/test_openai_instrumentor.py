"""The OpenAI instrumentor, driven through the real openai SDK against recorded responses."""

from __future__ import annotations

import asyncio
import gc
import inspect
from typing import Any

import genai_prices
import openai
import pytest
import wrapt
from openai.resources.chat.completions import Completions
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import otel_tokens
from otel_tokens import attributes as attr
from otel_tokens.pricing import default_price_book
from otel_tokens.usage import Usage
from tests.plugin.conftest import client_spans
from tests.support.replay_server import ReplayFactory, load_cassette, usage_entries

OK_ENTRIES = usage_entries("openai", ok=True)
ERROR_ENTRIES = usage_entries("openai", ok=False)
STREAM = "openai/test_chat_completion_streaming.yaml"
NOT_COMPLETE = "openai/test_chat_completion_streaming_not_complete.yaml"
CHAT = "openai/test_chat_completion_with_content.yaml"

TOKEN_KEYS = {
    "input_tokens": attr.GEN_AI_USAGE_INPUT_TOKENS,
    "output_tokens": attr.GEN_AI_USAGE_OUTPUT_TOKENS,
    "cache_read_tokens": attr.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
    "cache_creation_tokens": attr.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
    "reasoning_tokens": attr.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
}


def _method(client: Any, endpoint: str) -> Any:
    if endpoint.endswith("/chat/completions"):
        return client.chat.completions.create
    if endpoint.endswith("/responses"):
        return client.responses.create
    return client.embeddings.create


def _kwargs(method: Any, body: dict[str, Any]) -> dict[str, Any]:
    """The recorded request body as SDK keyword arguments (unknown keys via extra_body)."""
    params = set(inspect.signature(method).parameters)
    kwargs = {k: v for k, v in body.items() if k in params}
    extra = {k: v for k, v in body.items() if k not in params}
    if extra:
        kwargs["extra_body"] = extra
    return kwargs


def _consume(result: Any) -> list[Any]:
    if isinstance(result, openai.Stream):
        return list(result)
    return [result]


async def _consume_async(result: Any) -> list[Any]:
    if isinstance(result, openai.AsyncStream):
        return [item async for item in result]
    return [result]


def replay_recorded_calls(server: Any, cassette: str, upto: int) -> list[Any]:
    """Make the recorded calls 0..upto with the recorded bodies, sync or async like the file."""
    interactions = load_cassette(cassette)[: upto + 1]
    if "async" in cassette.rsplit("/", 1)[-1]:

        async def run() -> list[Any]:
            client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="k", max_retries=0)
            out = []
            for it in interactions:
                method = _method(client, it.path)
                out.append(await _consume_async(await method(**_kwargs(method, it.request_body))))
            return out

        return asyncio.run(run())
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="k", max_retries=0)
    out = []
    for it in interactions:
        method = _method(client, it.path)
        out.append(_consume(method(**_kwargs(method, it.request_body))))
    return out


class ForeignInstrumentor:
    """Another GenAI instrumentation's shape (as openai-v2 does it): a wrapt wrapper on
    ``Completions.create`` opening a current CLIENT span with ``gen_ai.operation.name``.

    The installed openai-v2 2.4b0 cannot be imported in this environment (it needs
    ``opentelemetry.util.genai.instruments``, absent from the installed util-genai 1.3b0).
    """

    def instrument(self, tracer_provider: Any) -> None:
        tracer = tracer_provider.get_tracer("foreign.openai")

        def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            with tracer.start_as_current_span(
                f"chat {kwargs['model']}",
                kind=SpanKind.CLIENT,
                attributes={attr.GEN_AI_OPERATION_NAME: "chat"},
            ) as span:
                result = wrapped(*args, **kwargs)
                span.set_attribute(attr.GEN_AI_USAGE_INPUT_TOKENS, result.usage.prompt_tokens)
                return result

        wrapt.wrap_function_wrapper(Completions, "create", wrapper)

    def uninstrument(self) -> None:
        current = Completions.__dict__["create"]
        Completions.create = current.__wrapped__  # type: ignore[method-assign]


def sync_client(server: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key="k", max_retries=0)


@pytest.mark.parametrize(
    "entry", OK_ENTRIES, ids=lambda e: f"{e['file'].split('/')[1]}#{e['interaction']}"
)
def test_every_recorded_call_records_the_recorded_usage_and_its_price(
    entry: dict[str, Any],
    replay: ReplayFactory,
    exporter: InMemorySpanExporter,
    instrumented: None,
) -> None:
    server = replay(entry["file"])
    replay_recorded_calls(server, entry["file"], entry["interaction"])
    spans = client_spans(exporter)
    assert len(spans) == entry["interaction"] + 1
    span = spans[entry["interaction"]]
    attrs = dict(span.attributes or {})
    assert attrs[attr.GEN_AI_PROVIDER_NAME] == "openai"
    if entry["input_tokens"] is None:
        # Recorded stream that never sent its usage chunk: estimated, and said so.
        assert attrs[attr.OTEL_TOKENS_USAGE_ESTIMATED] is True
        assert attrs[attr.GEN_AI_USAGE_INPUT_TOKENS] > 0
        return
    assert attr.OTEL_TOKENS_USAGE_ESTIMATED not in attrs
    for key, name in TOKEN_KEYS.items():
        assert attrs.get(name) == entry[key], name
    assert attrs[attr.GEN_AI_RESPONSE_MODEL] == entry["model"]
    usage = Usage(**{k: entry[k] for k in TOKEN_KEYS})
    expected = default_price_book().cost(usage, entry["model"], "openai")
    assert expected is not None, f"no price for {entry['model']}"
    assert attrs[attr.GEN_AI_USAGE_COST_AMOUNT] == pytest.approx(expected.amount)
    assert attrs[attr.GEN_AI_USAGE_COST_SOURCE] == "local"
    assert attrs[attr.OTEL_TOKENS_PRICING_REF] == expected.ref
    independent = genai_prices.calc_price(
        genai_prices.Usage(
            input_tokens=entry["input_tokens"],
            output_tokens=entry["output_tokens"] or 0,
            cache_read_tokens=entry["cache_read_tokens"] or 0,
        ),
        model_ref=entry["model"],
        provider_id="openai",
    )
    assert attrs[attr.GEN_AI_USAGE_COST_AMOUNT] == pytest.approx(float(independent.total_price))


@pytest.mark.parametrize("entry", ERROR_ENTRIES, ids=lambda e: e["file"].split("/")[1])
def test_api_errors_mark_the_span_failed_and_the_sdk_exception_passes_through(
    entry: dict[str, Any],
    replay: ReplayFactory,
    exporter: InMemorySpanExporter,
    instrumented: None,
) -> None:
    server = replay(entry["file"])
    with pytest.raises(openai.APIStatusError) as raised:
        replay_recorded_calls(server, entry["file"], entry["interaction"])
    assert raised.value.status_code == entry["status"]
    (span,) = client_spans(exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[attr.ERROR_TYPE] == type(raised.value).__qualname__


def test_streaming_call_without_include_usage_still_records_tokens_and_hides_usage_chunk(
    replay: ReplayFactory, exporter: InMemorySpanExporter, instrumented: None
) -> None:
    server = replay(STREAM)
    stream = sync_client(server).chat.completions.create(
        model="gpt-4", messages=[{"role": "user", "content": "Say this is a test"}], stream=True
    )
    chunks = list(stream)
    assert chunks and all(chunk.choices for chunk in chunks)
    assert server.requests[0].body["stream_options"] == {"include_usage": True}
    (span,) = client_spans(exporter)
    assert span.attributes[attr.GEN_AI_USAGE_INPUT_TOKENS] == 12
    assert span.attributes[attr.GEN_AI_USAGE_OUTPUT_TOKENS] == 5
    assert attr.OTEL_TOKENS_USAGE_ESTIMATED not in span.attributes


def test_caller_who_asked_for_usage_still_gets_the_usage_chunk(
    replay: ReplayFactory, exporter: InMemorySpanExporter, instrumented: None
) -> None:
    server = replay(STREAM)
    chunks = list(
        sync_client(server).chat.completions.create(
            model="gpt-4",
            messages=[{"role": "user", "content": "Say this is a test"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens == 12


async def test_async_stream_helper_records_tokens_without_a_choiceless_chunk(
    replay: ReplayFactory, exporter: InMemorySpanExporter, instrumented: None
) -> None:
    server = replay(STREAM)
    client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="k", max_retries=0)
    async with client.chat.completions.stream(
        model="gpt-4", messages=[{"role": "user", "content": "Say this is a test"}]
    ) as stream:
        chunks = [event.chunk async for event in stream if event.type == "chunk"]
    assert chunks and all(chunk.choices for chunk in chunks)
    (span,) = client_spans(exporter)
    assert span.attributes[attr.GEN_AI_USAGE_INPUT_TOKENS] == 12


def test_incomplete_stream_gets_an_estimate_flagged_as_such(
    replay: ReplayFactory, exporter: InMemorySpanExporter, instrumented: None
) -> None:
    server = replay(NOT_COMPLETE)
    list(
        sync_client(server).chat.completions.create(
            model="gpt-4", messages=[{"role": "user", "content": "Say this is a test"}], stream=True
        )
    )
    (span,) = client_spans(exporter)
    assert span.attributes[attr.OTEL_TOKENS_USAGE_ESTIMATED] is True
    assert span.attributes[attr.GEN_AI_USAGE_INPUT_TOKENS] == 5  # 18 characters / 4


def test_stream_closed_early_ends_its_span_exactly_once(
    replay: ReplayFactory, exporter: InMemorySpanExporter, instrumented: None
) -> None:
    server = replay(STREAM)
    stream = sync_client(server).chat.completions.create(
        model="gpt-4", messages=[{"role": "user", "content": "Say this is a test"}], stream=True
    )
    next(iter(stream))
    stream.close()
    stream.close()
    (span,) = client_spans(exporter)
    assert span.status.status_code is StatusCode.UNSET
    assert span.attributes[attr.OTEL_TOKENS_USAGE_ESTIMATED] is True


def test_abandoned_stream_ends_its_span_when_collected(
    replay: ReplayFactory, exporter: InMemorySpanExporter, instrumented: None
) -> None:
    server = replay(STREAM)
    stream = sync_client(server).chat.completions.create(
        model="gpt-4", messages=[{"role": "user", "content": "Say this is a test"}], stream=True
    )
    next(iter(stream))
    del stream
    gc.collect()
    assert len(client_spans(exporter)) == 1


def test_with_raw_response_records_usage_and_returns_the_raw_response(
    replay: ReplayFactory, exporter: InMemorySpanExporter, instrumented: None
) -> None:
    server = replay(CHAT)
    raw = sync_client(server).chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Say this is a test"}]
    )
    assert raw.http_response.status_code == 200
    assert raw.parse().usage.prompt_tokens == 12
    (span,) = client_spans(exporter)
    assert span.attributes[attr.GEN_AI_USAGE_INPUT_TOKENS] == 12


def test_azure_client_is_reported_as_azure_openai(
    replay: ReplayFactory, exporter: InMemorySpanExporter, instrumented: None
) -> None:
    server = replay(CHAT)
    client = openai.AzureOpenAI(
        azure_endpoint=server.url, api_key="k", api_version="2024-06-01", max_retries=0
    )
    server.repeat = True
    try:
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Say this is a test"}]
        )
    except openai.APIStatusError:
        pass  # the Azure path differs from the recorded one; the span is what matters
    (span,) = client_spans(exporter)
    assert span.attributes[attr.GEN_AI_PROVIDER_NAME] == "azure.ai.openai"


def test_call_inside_scopes_is_stamped_with_user_node_and_ids(
    replay: ReplayFactory, exporter: InMemorySpanExporter, instrumented: None
) -> None:
    server = replay(CHAT)
    with otel_tokens.usage_context(user_id="u1", correlation_id="req-1", tenant="acme"):
        with otel_tokens.node("intent_classification"):
            sync_client(server).chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "Say this is a test"}]
            )
    (span,) = client_spans(exporter)
    assert span.attributes[attr.ENDUSER_ID] == "u1"
    assert span.attributes[attr.OTEL_TOKENS_NODE] == "intent_classification"
    assert span.attributes[attr.OTEL_TOKENS_CORRELATION_ID] == "req-1"
    assert span.attributes[attr.OTEL_TOKENS_TENANT] == "acme"
    node_span = next(s for s in exporter.get_finished_spans() if s.name.startswith("node "))
    assert span.parent is not None and span.parent.span_id == node_span.context.span_id


@pytest.mark.parametrize("official_first", [True, False])
def test_coexisting_with_another_instrumentation_enriches_its_span_instead_of_adding_one(
    official_first: bool,
    replay: ReplayFactory,
    provider: Any,
    exporter: InMemorySpanExporter,
) -> None:

    from otel_tokens.instrumentation.openai import OpenAIInstrumentor

    ours, official = OpenAIInstrumentor(), ForeignInstrumentor()
    first, second = (official, ours) if official_first else (ours, official)
    first.instrument(tracer_provider=provider)
    second.instrument(tracer_provider=provider)
    try:
        server = replay(CHAT)
        with otel_tokens.usage_context(user_id="u2"):
            sync_client(server).chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "Say this is a test"}]
            )
    finally:
        second.uninstrument()
        first.uninstrument()
    (span,) = client_spans(exporter)
    assert span.instrumentation_scope.name == "foreign.openai"
    assert span.attributes[attr.ENDUSER_ID] == "u2"
    assert span.attributes[attr.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 0
    assert span.attributes[attr.GEN_AI_USAGE_COST_AMOUNT] > 0


def test_uninstrument_restores_the_sdk(
    replay: ReplayFactory, exporter: InMemorySpanExporter, provider: Any
) -> None:
    from otel_tokens.instrumentation.openai import OpenAIInstrumentor

    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    instrumentor.uninstrument()
    server = replay(CHAT)
    sync_client(server).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Say this is a test"}]
    )
    assert client_spans(exporter) == []


def test_metrics_record_tokens_duration_and_cost_with_node(
    replay: ReplayFactory,
    exporter: InMemorySpanExporter,
    instrumented: None,
    metric_reader: Any,
) -> None:
    server = replay(CHAT)
    with otel_tokens.node("summarise"):
        sync_client(server).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Say this is a test"}]
        )
    data = metric_reader.get_metrics_data()
    points: dict[str, list[Any]] = {}
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                points.setdefault(metric.name, []).extend(metric.data.data_points)
    tokens = {
        p.attributes[attr.GEN_AI_TOKEN_TYPE]: p.sum for p in points["gen_ai.client.token.usage"]
    }
    assert tokens == {"input": 12, "output": 5}
    assert all(
        p.attributes[attr.OTEL_TOKENS_NODE] == "summarise"
        for p in points["gen_ai.client.token.usage"]
    )
    assert points["gen_ai.client.operation.duration"][0].count == 1
    assert points["otel_tokens.cost"][0].value > 0
