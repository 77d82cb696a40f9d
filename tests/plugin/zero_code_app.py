"""An app with no OpenTelemetry code, run under ``opentelemetry-instrument`` by a test."""

from __future__ import annotations

import sys

import openai

import otel_tokens
from tests.support.replay_server import ReplayServer

with ReplayServer(["openai/test_chat_completion_with_content.yaml"]) as server:
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="k", max_retries=0)
    with otel_tokens.usage_context(user_id="zero-user", correlation_id="req-0"):
        with otel_tokens.node("zero_node"):
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "Say this is a test"}]
            )
print("app done", file=sys.stderr)
