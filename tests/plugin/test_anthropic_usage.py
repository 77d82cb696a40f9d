"""Anthropic usage extraction: raw counts → semconv Usage (input inclusive of cache), pure."""

from __future__ import annotations

import json
from typing import Any

import pytest

from otel_tokens.instrumentation.anthropic.usage import (
    StreamUsage,
    usage_from_message,
    usage_from_usage_block,
)
from otel_tokens.usage import Usage
from tests.support.replay_server import load_cassette, usage_entries


def sse_events(body: bytes) -> list[dict[str, Any]]:
    events = []
    for line in body.decode().splitlines():
        if line.startswith("data:"):
            events.append(json.loads(line[5:]))
    return events


def expected_usage(entry: dict[str, Any]) -> Usage:
    read, creation = entry["cache_read_tokens"], entry["cache_creation_tokens"]
    return Usage(
        input_tokens=entry["input_tokens"] + (read or 0) + (creation or 0),
        output_tokens=entry["output_tokens"],
        cache_read_tokens=read,
        cache_creation_tokens=creation,
    )


@pytest.mark.parametrize(
    "entry", usage_entries("anthropic", ok=True, streaming=False), ids=lambda e: e["file"]
)
def test_message_body_usage_matches_the_index(entry: dict[str, Any]) -> None:
    body = json.loads(load_cassette(entry["file"])[entry["interaction"]].body)
    assert usage_from_message(body) == expected_usage(entry)


@pytest.mark.parametrize(
    "entry", usage_entries("anthropic", ok=True, streaming=True), ids=lambda e: e["file"]
)
def test_stream_events_accumulate_to_the_index_usage(entry: dict[str, Any]) -> None:
    acc = StreamUsage()
    for event in sse_events(load_cassette(entry["file"])[entry["interaction"]].body):
        acc.observe(event)
    assert acc.usage() == expected_usage(entry)
    assert acc.response_model == entry["model"]
    assert acc.finish_reasons


def test_input_includes_cache_read_and_cache_creation() -> None:
    usage = usage_from_usage_block(
        {
            "input_tokens": 13,
            "cache_read_input_tokens": 4,
            "cache_creation_input_tokens": 5,
            "output_tokens": 10,
        }
    )
    assert usage == Usage(
        input_tokens=22, output_tokens=10, cache_read_tokens=4, cache_creation_tokens=5
    )


def test_thinking_tokens_reported_separately_become_reasoning_tokens() -> None:
    usage = usage_from_usage_block(
        {"input_tokens": 1, "output_tokens": 50, "output_tokens_details": {"thinking_tokens": 30}}
    )
    assert usage is not None
    assert usage.output_tokens == 50 and usage.reasoning_tokens == 30


def test_message_start_output_is_provisional_and_message_delta_wins() -> None:
    acc = StreamUsage()
    acc.observe(
        {
            "type": "message_start",
            "message": {
                "id": "msg_1",
                "model": "claude-x",
                "usage": {"input_tokens": 10, "output_tokens": 1, "cache_read_input_tokens": 2},
            },
        }
    )
    assert acc.usage() == Usage(input_tokens=12, output_tokens=1, cache_read_tokens=2)
    # Older API versions send only output_tokens in message_delta: input/cache counts are kept.
    acc.observe({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {
        "output_tokens": 7, "input_tokens": None}})  # fmt: skip
    assert acc.usage() == Usage(input_tokens=12, output_tokens=7, cache_read_tokens=2)
    assert acc.response_id == "msg_1" and acc.finish_reasons == ["end_turn"]


def test_missing_or_malformed_usage_is_not_reported_rather_than_zero() -> None:
    assert usage_from_message({"id": "x"}) is None
    assert usage_from_usage_block({"input_tokens": "12", "output_tokens": True}) is None
    assert usage_from_usage_block({"input_tokens": -3, "output_tokens": 4}) == Usage(
        output_tokens=4
    )


def test_stream_accumulator_survives_garbage_events() -> None:
    acc = StreamUsage()
    for event in (None, 42, "x", {"type": "message_start", "message": 3}, {"type": "ping"}):
        acc.observe(event)
    assert acc.usage() is None
