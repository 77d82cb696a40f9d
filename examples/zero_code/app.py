"""A plain app with no OpenTelemetry code: only who is asking and which step is running.

Run it under ``opentelemetry-instrument`` (see README.md): the otel_tokens entry point adds the
stamping span processor and instruments openai / anthropic / google-genai, and the standard
OTEL_* environment variables choose the exporter. Remove the wrapper and the app runs the same,
untraced.
"""

from __future__ import annotations

import sys

import anthropic
import openai

import otel_tokens


@otel_tokens.node("summarise_ticket")
def summarise(client: anthropic.Anthropic, ticket: str) -> str:
    message = client.messages.create(
        model="claude-haiku-4-5",
        max_tokens=200,
        messages=[{"role": "user", "content": f"Summarise this support ticket:\n{ticket}"}],
    )
    return "".join(block.text for block in message.content if block.type == "text")


@otel_tokens.node("suggest_reply")
def suggest_reply(client: openai.OpenAI, summary: str) -> str:
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": f"Suggest a short reply to: {summary}"}],
        stream=True,  # usage is still recorded: otel-tokens asks for it and hides the extra chunk
    )
    return "".join(chunk.choices[0].delta.content or "" for chunk in stream)


def main() -> int:
    ticket = "The export to CSV has been failing since Tuesday with error 502."
    with otel_tokens.usage_context(
        user_id="grace@example.test", tenant="hooli", correlation_id="zero-code-0001"
    ):
        summary = summarise(anthropic.Anthropic(), ticket)
        reply = suggest_reply(openai.OpenAI(), summary)
    print(f"summary: {summary}\nreply: {reply}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
