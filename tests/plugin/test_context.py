"""Scopes: usage_context, node and background_job stamp every span, across threads and tasks."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import baggage, trace
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

import otel_tokens
from otel_tokens import attributes as attr
from otel_tokens import context as scopes

tracer = trace.get_tracer("test.other.instrumentation")


def attrs_of(exporter: InMemorySpanExporter, name: str) -> dict[str, Any]:
    (span,) = [s for s in exporter.get_finished_spans() if s.name == name]
    return dict(span.attributes or {})


def test_spans_of_any_instrumentation_get_user_ids_and_node(
    exporter: InMemorySpanExporter,
) -> None:
    with otel_tokens.usage_context(
        user_id="u1",
        correlation_id="req-9",
        tenant="acme",
        conversation_id="chat-1",
        session_id="s-1",
    ):
        with otel_tokens.node("retrieve"):
            tracer.start_span("db query").end()
    assert attrs_of(exporter, "db query") == {
        attr.ENDUSER_ID: "u1",
        attr.OTEL_TOKENS_CORRELATION_ID: "req-9",
        attr.OTEL_TOKENS_TENANT: "acme",
        attr.GEN_AI_CONVERSATION_ID: "chat-1",
        attr.SESSION_ID: "s-1",
        attr.OTEL_TOKENS_NODE: "retrieve",
    }


def test_node_opens_an_internal_span_and_the_innermost_node_wins(
    exporter: InMemorySpanExporter,
) -> None:
    with otel_tokens.node("outer"):
        with otel_tokens.node("inner"):
            tracer.start_span("work").end()
        tracer.start_span("after").end()
    assert attrs_of(exporter, "work")[attr.OTEL_TOKENS_NODE] == "inner"
    assert attrs_of(exporter, "after")[attr.OTEL_TOKENS_NODE] == "outer"
    outer = next(s for s in exporter.get_finished_spans() if s.name == "node outer")
    inner = next(s for s in exporter.get_finished_spans() if s.name == "node inner")
    assert outer.kind is SpanKind.INTERNAL and inner.parent.span_id == outer.context.span_id


def test_no_scope_no_attributes(exporter: InMemorySpanExporter) -> None:
    tracer.start_span("plain").end()
    assert attrs_of(exporter, "plain") == {}


def test_node_decorator_on_sync_and_async_functions(exporter: InMemorySpanExporter) -> None:
    @otel_tokens.node("sync_step")
    def step() -> str | None:
        return scopes.current_node()

    @otel_tokens.node("async_step")
    async def astep() -> str | None:
        return scopes.current_node()

    assert step() == "sync_step"
    assert asyncio.run(astep()) == "async_step"
    assert scopes.current_node() is None
    names = {s.name for s in exporter.get_finished_spans()}
    assert {"node sync_step", "node async_step"} <= names


def test_node_decorator_on_a_generator_keeps_scope_inside_and_out_of_the_caller(
    exporter: InMemorySpanExporter,
) -> None:
    @otel_tokens.node("produce")
    def produce() -> Iterator[str | None]:
        for _ in range(2):
            yield scopes.current_node()

    with otel_tokens.node("consume"):
        seen = []
        for value in produce():
            seen.append((value, scopes.current_node()))
    assert seen == [("produce", "consume"), ("produce", "consume")]
    assert "node produce" in {s.name for s in exporter.get_finished_spans()}


def test_exception_in_node_marks_its_span_and_propagates(exporter: InMemorySpanExporter) -> None:
    with pytest.raises(KeyError):
        with otel_tokens.node("boom"):
            raise KeyError("x")
    assert attrs_of(exporter, "node boom")[attr.ERROR_TYPE] == "KeyError"


def test_background_job_stamps_job_type_and_user(exporter: InMemorySpanExporter) -> None:
    with otel_tokens.background_job("ingest_emails", user_id="u7"):
        tracer.start_span("job work").end()
    got = attrs_of(exporter, "job work")
    assert got[attr.OTEL_TOKENS_JOB_TYPE] == "ingest_emails" and got[attr.ENDUSER_ID] == "u7"


async def test_two_asyncio_tasks_never_leak_scope_into_each_other(
    exporter: InMemorySpanExporter,
) -> None:
    async def work(user: str, node: str) -> None:
        with otel_tokens.usage_context(user_id=user), otel_tokens.node(node):
            for i in range(5):
                await asyncio.sleep(0)
                tracer.start_span(f"{user}-{i}").end()

    await asyncio.gather(work("alice", "a_node"), work("bob", "b_node"))
    for span in exporter.get_finished_spans():
        if span.name.startswith(("alice-", "bob-")):
            user = span.name.split("-")[0]
            assert span.attributes[attr.ENDUSER_ID] == user
            assert span.attributes[attr.OTEL_TOKENS_NODE] == f"{user[0]}_node"


def test_two_threads_never_leak_scope_and_copied_context_carries_it(
    exporter: InMemorySpanExporter,
) -> None:
    barrier = threading.Barrier(2)

    def work(user: str) -> None:
        with otel_tokens.usage_context(user_id=user), otel_tokens.node(f"{user}_node"):
            barrier.wait()
            for i in range(5):
                tracer.start_span(f"{user}-{i}").end()
            barrier.wait()

    threads = [threading.Thread(target=work, args=(u,)) for u in ("alice", "bob")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with otel_tokens.usage_context(user_id="carol"):
        ctx = contextvars.copy_context()
    child = threading.Thread(target=ctx.run, args=(lambda: tracer.start_span("carol-0").end(),))
    child.start()
    child.join()
    for span in exporter.get_finished_spans():
        if "-" in span.name:
            user = span.name.split("-")[0]
            assert span.attributes[attr.ENDUSER_ID] == user


def test_baggage_propagation_is_off_by_default_and_carries_scope_when_on(
    exporter: InMemorySpanExporter,
) -> None:
    with otel_tokens.usage_context(user_id="u1"):
        assert baggage.get_all() == {}
    scopes.set_propagate(True)
    try:
        with otel_tokens.usage_context(user_id="u1", tenant="acme"):
            assert baggage.get_baggage(attr.ENDUSER_ID) == "u1"
        # A downstream service: the scope arrives only as baggage in the extracted context.
        upstream = baggage.set_baggage(attr.ENDUSER_ID, "u9")
        token = otel_context.attach(upstream)
        try:
            tracer.start_span("downstream").end()
        finally:
            otel_context.detach(token)
    finally:
        scopes.set_propagate(False)
    assert attrs_of(exporter, "downstream")[attr.ENDUSER_ID] == "u9"


async def test_node_decorator_on_an_async_generator_opens_one_span_and_keeps_scope_inside(
    exporter: InMemorySpanExporter,
) -> None:
    @otel_tokens.node("aproduce")
    async def produce() -> Any:
        for _ in range(3):
            await asyncio.sleep(0)
            tracer.start_span("inside").end()
            yield scopes.current_node()

    seen = [(value, scopes.current_node()) async for value in produce()]
    assert seen == [("aproduce", None)] * 3
    spans = exporter.get_finished_spans()
    assert [s.name for s in spans].count("node aproduce") == 1
    assert all(s.attributes[attr.OTEL_TOKENS_NODE] == "aproduce" for s in spans)
