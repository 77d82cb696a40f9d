"""Manual setup: configure OpenTelemetry in code, call ``otel_tokens.configure()``, make LLM calls.

Use this shape when you own the process start-up (a worker, a notebook, a framework without
``opentelemetry-instrument``). With ``opentelemetry-instrument`` nothing here is needed: see
``examples/zero_code/``.

    otel-tokens collector &                       # OTLP/HTTP on 127.0.0.1:4318
    .venv/bin/python examples/manual_setup.py     # offline: starts a local fake provider
    otel-tokens trace manual-0001

With ``OPENAI_API_KEY`` set (and no ``--fake``) the call goes to the real OpenAI API.
"""

from __future__ import annotations

import argparse
import os
import sys

import openai
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

import otel_tokens


def setup_tracing(endpoint: str) -> TracerProvider:
    """The application's own OpenTelemetry set-up: a provider exporting OTLP/HTTP."""
    provider = TracerProvider(resource=Resource.create({"service.name": "manual-setup-example"}))
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces"))
    )
    trace.set_tracer_provider(provider)
    return provider


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--collector", default=os.environ.get("OTLP_HTTP", "http://127.0.0.1:4318"))
    parser.add_argument("--fake", action="store_true", help="use the local fake provider")
    parser.add_argument("--correlation-id", default="manual-0001")
    args = parser.parse_args()

    fake = None
    if args.fake or not os.environ.get("OPENAI_API_KEY"):
        from otel_tokens.demo.fake_provider import FakeProvider

        fake = FakeProvider().start()
        os.environ.update(fake.sdk_environment())

    provider = setup_tracing(args.collector)
    # Adds the span processor that stamps user / node / ids onto every span, and instruments
    # the installed LLM SDKs (openai, anthropic, google-genai). Call it once, after the
    # tracer provider exists and before the first LLM call.
    otel_tokens.configure(tracer_provider=provider)

    client = openai.OpenAI()
    with otel_tokens.usage_context(
        user_id="frank@example.test",
        tenant="umbrella",
        correlation_id=args.correlation_id,
        session_id="s-42",
    ):
        with otel_tokens.node("draft_reply"):
            reply = client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": "Draft a two-line reply confirming Monday."}],
            )
    print(reply.choices[0].message.content)
    if reply.usage is not None:
        print(f"tokens: {reply.usage.prompt_tokens} in, {reply.usage.completion_tokens} out")

    provider.shutdown()  # flushes the batch: the spans reach the collector before exit
    if fake is not None:
        fake.stop()
    print(f"sent; look it up with: otel-tokens trace {args.correlation_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
