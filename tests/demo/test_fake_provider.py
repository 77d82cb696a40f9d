"""The fake provider answers the real SDKs like the real APIs, with deterministic usage."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anthropic
import openai
import pytest
from google import genai
from google.genai import types as genai_types

from otel_tokens.demo.fake_provider import FakeProvider, load_ledger, reply_for
from otel_tokens.usage import estimate_tokens


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeProvider]:
    with FakeProvider(ledger_path=tmp_path / "ledger.jsonl") as server:
        yield server


def _openai(fake: FakeProvider) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{fake.url}/v1", api_key="k", max_retries=0)


def test_openai_chat_usage_is_derived_from_the_prompt(fake: FakeProvider) -> None:
    prompt = "Classify the intent of: where is my invoice?"
    response = _openai(fake).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}]
    )
    assert response.usage is not None
    assert response.usage.prompt_tokens == estimate_tokens(prompt)
    assert response.choices[0].message.content == reply_for(prompt)
    assert response.usage.completion_tokens == estimate_tokens(reply_for(prompt))
    assert response.model == "gpt-4o-mini-2024-07-18"


def test_openai_stream_sends_usage_chunk_only_when_include_usage_is_set(fake: FakeProvider) -> None:
    client = _openai(fake)
    messages = [{"role": "user", "content": "Tell me about the contract renewal."}]
    plain = list(
        client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True)
    )  # type: ignore[arg-type]
    assert all(c.usage is None for c in plain)
    assert all(c.choices for c in plain)
    with_usage = list(
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=messages,  # type: ignore[arg-type]
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    last = with_usage[-1]
    assert last.choices == [] and last.usage is not None
    text = "".join(c.choices[0].delta.content or "" for c in with_usage if c.choices)
    assert last.usage.completion_tokens == estimate_tokens(text)


def test_openai_embeddings_honour_base64_encoding_used_by_the_sdk(fake: FakeProvider) -> None:
    response = _openai(fake).embeddings.create(
        model="text-embedding-3-small", input=["first email", "second, longer email body"]
    )
    assert len(response.data) == 2 and len(response.data[0].embedding) == 8
    expected = estimate_tokens("first email") + estimate_tokens("second, longer email body")
    assert response.usage.prompt_tokens == expected


def test_anthropic_stream_and_prompt_cache_accounting(fake: FakeProvider, tmp_path: Path) -> None:
    client = anthropic.Anthropic(base_url=fake.url, api_key="k", max_retries=0)
    cached = "You answer from the mailbox. " * 20
    system = [
        {
            "type": "text",
            "text": cached,
            "cache_control": {"type": "ephemeral"},
        }
    ]
    first = client.messages.create(
        model="claude-sonnet-4-20250514",
        max_tokens=300,
        system=system,  # type: ignore[arg-type]
        messages=[{"role": "user", "content": "What did finance ask?"}],
    )
    assert first.usage.cache_creation_input_tokens == estimate_tokens(cached)
    with client.messages.stream(
        model="claude-sonnet-4-20250514",
        max_tokens=300,
        system=system,  # type: ignore[arg-type]
        messages=[{"role": "user", "content": "What did finance ask?"}],
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert final.usage.cache_read_input_tokens == estimate_tokens(cached)
    assert final.usage.output_tokens == estimate_tokens(text)
    ledger = load_ledger(tmp_path / "ledger.jsonl")
    assert [e.stream for e in ledger] == [False, True]
    assert ledger[1].input_tokens == final.usage.input_tokens + estimate_tokens(cached)


def test_gemini_generate_content_reports_thoughts_apart_from_candidates(fake: FakeProvider) -> None:
    client = genai.Client(api_key="k", http_options=genai_types.HttpOptions(base_url=fake.url))
    response = client.models.generate_content(
        model="gemini-2.5-flash", contents="Extract the facts from: invoice paid on 3 May."
    )
    usage = response.usage_metadata
    assert usage is not None and usage.candidates_token_count is not None
    assert usage.thoughts_token_count == usage.candidates_token_count // 2 + 16
    streamed = list(
        client.models.generate_content_stream(
            model="gemini-2.5-flash", contents="Same again, streamed."
        )
    )
    assert streamed[-1].usage_metadata is not None
    assert streamed[-1].usage_metadata.prompt_token_count == estimate_tokens(
        "Same again, streamed."
    )
    assert fake.ledger[-1].stream is True


def test_bad_json_and_unknown_paths_get_provider_shaped_errors(fake: FakeProvider) -> None:
    with pytest.raises(openai.NotFoundError):
        _openai(fake).models.list()
    with pytest.raises(openai.BadRequestError):
        _openai(fake).chat.completions.create(model="gpt-4o-mini", messages=[])
    assert fake.ledger == []


def test_a_classifier_prompt_gets_one_of_the_offered_labels(fake: FakeProvider) -> None:
    response = _openai(fake).chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "system", "content": "Classify the intent as one of: billing, legal, other"},
            {"role": "user", "content": "When does the NDA expire?"},
        ],
    )
    assert response.choices[0].message.content in {"billing", "legal", "other"}
    assert response.usage is not None
    assert response.usage.completion_tokens == estimate_tokens(
        response.choices[0].message.content or ""
    )
