"""Google GenAI usage extraction: output = candidates + thoughts, reasoning = thoughts, pure."""

from __future__ import annotations

import json
from typing import Any

import pytest

from otel_tokens.instrumentation.google_genai.usage import (
    StreamUsage,
    finish_reasons_of,
    usage_from_embed_response,
    usage_from_metadata,
    usage_from_response,
)
from otel_tokens.usage import Usage
from tests.support.replay_server import load_cassette, usage_entries


def expected_usage(entry: dict[str, Any]) -> Usage:
    thoughts = entry["reasoning_tokens"]
    return Usage(
        input_tokens=entry["input_tokens"],
        output_tokens=entry["output_tokens"] + (thoughts or 0),
        cache_read_tokens=entry["cache_read_tokens"],
        reasoning_tokens=thoughts,
    )


@pytest.mark.parametrize(
    "entry", usage_entries("gemini", ok=True, streaming=False), ids=lambda e: e["file"]
)
def test_response_body_usage_matches_the_index(entry: dict[str, Any]) -> None:
    body = json.loads(load_cassette(entry["file"])[entry["interaction"]].body)
    assert usage_from_response(body) == expected_usage(entry)
    assert finish_reasons_of(body) == ["stop"]


@pytest.mark.parametrize(
    "entry", usage_entries("gemini", ok=True, streaming=True), ids=lambda e: e["file"]
)
def test_stream_chunks_accumulate_to_the_index_usage(entry: dict[str, Any]) -> None:
    body = load_cassette(entry["file"])[entry["interaction"]].body.decode()
    acc = StreamUsage()
    chunks = [json.loads(c.strip()[5:]) for c in body.split("\r\n\r\n") if c.strip()]
    for chunk in chunks:
        acc.observe(chunk)
    assert acc.usage() == expected_usage(entry)
    assert acc.response_model == entry["model"]
    assert acc.finish_reasons == ["stop"]


def test_chunk_metadata_without_counts_is_not_reported() -> None:
    assert usage_from_metadata({"trafficType": "ON_DEMAND"}) is None


def test_cached_and_tool_use_prompt_tokens() -> None:
    usage = usage_from_metadata(
        {
            "promptTokenCount": 100,
            "cachedContentTokenCount": 60,
            "toolUsePromptTokenCount": 5,
            "candidatesTokenCount": 7,
        }
    )
    assert usage == Usage(input_tokens=105, output_tokens=7, cache_read_tokens=60)


def test_embeddings_usage_from_usage_metadata_or_vertex_statistics() -> None:
    assert usage_from_embed_response({"usageMetadata": {"promptTokenCount": 9}}) == Usage(
        input_tokens=9
    )
    stats = [{"statistics": {"tokenCount": 4.0}}, {"statistics": {"tokenCount": 3}}]
    vertex = {"embeddings": stats}
    assert usage_from_embed_response(vertex) == Usage(input_tokens=7)
    assert usage_from_embed_response({"embeddings": [{"values": [0.1]}]}) is None


def test_stream_accumulator_survives_garbage_chunks() -> None:
    acc = StreamUsage()
    for chunk in (None, 1, {"candidates": 5}, {"usageMetadata": "x"}):
        acc.observe(chunk)
    assert acc.usage() is None
