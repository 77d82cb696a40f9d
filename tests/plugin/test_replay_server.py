"""The replay server answers HTTP clients with recorded interactions, streaming SSE for real."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx2 as httpx
import pytest

from tests.support import fixtures
from tests.support.replay_server import (
    NO_MATCH_STATUS,
    ReplayFactory,
    ReplayServer,
    fixtures_dir,
    load_cassette,
    usage_entries,
    usage_index,
)

BASIC = "anthropic/test_sync_messages_create_basic.yaml"
STREAM = "anthropic/test_sync_messages_create_streaming.yaml"
GEMINI_STREAM = "gemini/test_streaming_logcontent-gemini-2.5-flash-vertexaiapi-sync-default_.yaml"


replay = fixtures.replay


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    # One client for the module: building one costs ~0.1 s (TLS context), a request ~1 ms.
    with httpx.Client() as client:
        yield client


def test_fixtures_dir_holds_the_usage_index() -> None:
    assert (fixtures_dir() / "usage_index.json").is_file()
    assert len(usage_index()) >= 100


def test_usage_entries_filter_by_provider_and_status() -> None:
    ok = usage_entries("anthropic", ok=True)
    assert ok and all(e["provider"] == "anthropic" and e["status"] == 200 for e in ok)
    errors = usage_entries("anthropic", ok=False)
    assert errors and all(e["status"] >= 400 for e in errors)
    assert len(ok) + len(errors) == len(usage_entries("anthropic"))


def test_every_cassette_loads_including_the_binary_header_one() -> None:
    for entry in usage_index():
        interactions = load_cassette(entry["file"])
        assert interactions[entry["interaction"]].status == entry["status"]


def test_replays_status_content_type_and_body_and_records_the_request(
    replay: ReplayFactory,
) -> None:
    server = replay(BASIC)
    recorded = load_cassette(BASIC)[0]
    response = httpx.post(f"{server.url}/v1/messages?x=1", json={"model": "m", "n": 1})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.content == recorded.body
    assert server.requests[0].body == {"model": "m", "n": 1}
    assert server.requests[0].query == "x=1"
    assert server.unused == []


def test_each_interaction_is_served_once_then_unmatched_requests_get_a_clear_error(
    replay: ReplayFactory,
) -> None:
    server = replay(BASIC)
    assert httpx.post(f"{server.url}/v1/messages", content=b"{}").status_code == 200
    second = httpx.post(f"{server.url}/v1/messages", content=b"{}")
    assert second.status_code == NO_MATCH_STATUS
    assert "no recorded interaction" in second.json()["error"]["message"]
    assert len(server.unmatched) == 1


def test_repeat_mode_serves_the_cassette_again(replay: ReplayFactory) -> None:
    server = replay(BASIC, repeat=True)
    for _ in range(3):
        assert httpx.post(f"{server.url}/v1/messages", content=b"{}").status_code == 200


def test_method_must_match(replay: ReplayFactory) -> None:
    server = replay(BASIC)
    assert httpx.get(f"{server.url}/v1/messages").status_code == NO_MATCH_STATUS


def test_sse_body_arrives_event_by_event_and_byte_identical(replay: ReplayFactory) -> None:
    server = replay(STREAM)
    recorded = load_cassette(STREAM)[0]
    with (
        httpx.Client() as client,
        client.stream("POST", f"{server.url}/v1/messages", content=b"{}") as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        chunks = list(response.iter_raw())
    assert b"".join(chunks) == recorded.body
    # One HTTP chunk per SSE event: the stream is not delivered as a single blob.
    assert len(chunks) > 3
    assert chunks[0].startswith(b"event: message_start")


def test_gemini_sse_with_crlf_separators_and_vertex_path(replay: ReplayFactory) -> None:
    server = replay(GEMINI_STREAM)
    recorded = load_cassette(GEMINI_STREAM)[0]
    path = (
        recorded.path
    )  # /v1beta1/projects/test-project/.../gemini-2.5-flash:streamGenerateContent
    with (
        httpx.Client() as client,
        client.stream("POST", f"{server.url}{path}?alt=sse", content=b"{}") as response,
    ):
        chunks = list(response.iter_raw())
    assert b"".join(chunks) == recorded.body
    events = [json.loads(c.decode().removeprefix("data: ")) for c in chunks]
    assert events[-1]["usageMetadata"]["promptTokenCount"] == 8


def test_path_falls_back_to_the_last_segment(replay: ReplayFactory) -> None:
    server = replay(GEMINI_STREAM)
    url = f"{server.url}/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    assert httpx.post(url, content=b"{}").status_code == 200


def test_client_closing_a_stream_early_does_not_break_the_server(replay: ReplayFactory) -> None:
    server = replay(STREAM, BASIC)
    with (
        httpx.Client() as client,
        client.stream("POST", f"{server.url}/v1/messages", content=b"{}") as response,
    ):
        next(response.iter_raw())
    assert httpx.post(f"{server.url}/v1/messages", content=b"{}").status_code == 200


def test_server_is_usable_as_a_context_manager() -> None:
    with ReplayServer([BASIC]) as server:
        assert httpx.post(f"{server.url}/v1/messages", content=b"{}").status_code == 200


@pytest.mark.parametrize("entry", usage_entries(), ids=lambda e: f"{e['file']}#{e['interaction']}")
def test_every_recorded_interaction_replays_with_its_status(
    replay: ReplayFactory, http: httpx.Client, entry: dict
) -> None:
    interactions = load_cassette(entry["file"])
    server = replay(entry["file"])
    for interaction in interactions:
        response = http.request(interaction.method, server.url + interaction.path, content=b"{}")
        assert response.status_code == interaction.status
        assert response.content == interaction.body
