"""Pricing and GenAI-processor speed: cached PriceBook vs raw genai-prices, normalize/cost per span.

    .venv/bin/python bench/pricing.py                 # full run (about a minute)
    .venv/bin/python bench/pricing.py --smoke         # a few seconds
    .venv/bin/python bench/pricing.py --json out.json # also write the results as JSON

Figures are CPU microseconds per call / per span on this machine (best of a few repeats, so a
busy neighbour inflates them less).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import genai_prices  # noqa: E402

from collector.processors import cost, normalize  # noqa: E402
from otel_tokens.pricing import PriceBook  # noqa: E402
from otel_tokens.usage import Usage  # noqa: E402
from queries.store import SPAN_COLUMNS  # noqa: E402

AT = datetime(2026, 5, 1, 12, tzinfo=UTC)
START_NS = int(AT.timestamp()) * 10**9

# (label, model, semconv provider, genai-prices provider id)
MODELS = (
    ("static price (gpt-4o-mini)", "gpt-4o-mini-2024-07-18", "openai", "openai"),
    ("context tiers (claude-sonnet-4-5)", "claude-sonnet-4-5", "anthropic", "anthropic"),
    ("dated price (mistral-medium-latest)", "mistral-medium-latest", "mistral_ai", "mistral"),
    ("time-of-day price (deepseek-chat)", "deepseek-chat", "deepseek", "deepseek"),
)
USAGE = Usage(input_tokens=1200, output_tokens=300, cache_read_tokens=200, reasoning_tokens=0)
RAW_USAGE = genai_prices.Usage(
    input_tokens=1200, output_tokens=300, cache_read_tokens=200, output_reasoning_tokens=0
)

SPANS: dict[str, dict[str, Any]] = {
    "own semconv LLM span": {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.response.id": "chatcmpl-123",
        "gen_ai.response.finish_reasons": ["stop"],
        "gen_ai.usage.input_tokens": 1200,
        "gen_ai.usage.output_tokens": 300,
        "gen_ai.usage.cache_read.input_tokens": 200,
        "gen_ai.usage.reasoning.output_tokens": 0,
        "gen_ai.usage.cost.amount": 0.000345,
        "gen_ai.usage.cost.currency": "USD",
        "gen_ai.usage.cost.source": "local",
        "otel_tokens.pricing.ref": "genai-prices 0.2.3",
        "otel_tokens.node": "intent_classification",
        "otel_tokens.correlation_id": "req-42",
        "enduser.id": "u1",
        "server.address": "api.openai.com",
    },
    "OpenLLMetry LLM span": {
        "gen_ai.system": "Anthropic",
        "llm.request.type": "chat",
        "gen_ai.request.model": "claude-sonnet-4-5",
        "gen_ai.response.model": "claude-sonnet-4-5-20250929",
        "gen_ai.usage.prompt_tokens": 1200,
        "gen_ai.usage.completion_tokens": 300,
        "gen_ai.usage.total_tokens": 1500,
        "gen_ai.usage.cache_read_input_tokens": 200,
        "gen_ai.usage.cache_creation_input_tokens": 0,
        "traceloop.association.properties.user_id": "u1",
        "traceloop.entity.name": "summarise",
        "gen_ai.prompt.0.role": "user",
        "gen_ai.prompt.0.content": "x" * 200,
        "gen_ai.completion.0.content": "y" * 200,
    },
    "OpenInference LLM span": {
        "openinference.span.kind": "LLM",
        "llm.provider": "openai",
        "llm.system": "openai",
        "llm.model_name": "gpt-4o-mini-2024-07-18",
        "llm.token_count.prompt": 1200,
        "llm.token_count.completion": 300,
        "llm.token_count.total": 1500,
        "llm.token_count.prompt_details.cache_read": 200,
        "user.id": "u1",
        "session.id": "s1",
        "input.value": "x" * 200,
        "output.value": "y" * 200,
        "llm.input_messages.0.message.content": "x" * 200,
    },
    "plain span (HTTP server)": {
        "http.request.method": "GET",
        "url.path": "/v1/users/42",
        "url.scheme": "https",
        "http.route": "/v1/users/{id}",
        "http.response.status_code": 200,
        "server.address": "api.example.com",
        "server.port": 443,
        "user_agent.original": "curl/8",
    },
}


# The 8-span trace bench/ingest.py sends: HTTP root, two node spans, three LLM calls, two tools.
INGEST_MIX = [
    {
        "http.request.method": "POST",
        "http.route": "/chat",
        "http.response.status_code": 200,
        "enduser.id": "u1",
        "otel_tokens.correlation_id": "c1",
        "otel_tokens.tenant": "acme",
    },
    *[{"otel_tokens.node": "n1", "enduser.id": "u1", "otel_tokens.correlation_id": "c1"}] * 2,
    *[
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.response.model": "gpt-4o-mini",
            "gen_ai.response.id": "chatcmpl-1",
            "gen_ai.usage.input_tokens": 1000,
            "gen_ai.usage.output_tokens": 200,
            "gen_ai.usage.cache_read.input_tokens": 250,
            "gen_ai.request.temperature": 0.2,
            "gen_ai.response.finish_reasons": "stop",
            "server.address": "api.example.com",
            "otel_tokens.node": "n1",
            "enduser.id": "u1",
            "otel_tokens.correlation_id": "c1",
            "otel_tokens.tenant": "acme",
        }
    ]
    * 3,
    *[{"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"}] * 2,
]


def best_us(fn: Callable[[], None], n: int, repeats: int) -> float:
    """Best per-call time in µs of ``n`` calls of ``fn``, over ``repeats`` rounds."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.process_time()
        for _ in range(n):
            fn()
        best = min(best, (time.process_time() - t0) / n * 1e6)
    return best


def per_span_us(
    process: Callable[[list[dict[str, Any]]], Any], rows: Callable[[], list[dict[str, Any]]]
) -> float:
    """µs per span of one processor over fresh batches (rows are built outside the timing)."""
    best = float("inf")
    for _ in range(3):
        batch = rows()
        t0 = time.process_time()
        process(batch)
        best = min(best, (time.process_time() - t0) / len(batch) * 1e6)
    return best


def mix_rows(n: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    while len(rows) < n:
        for attrs in INGEST_MIX:
            rows.extend(make_rows(attrs, 1))
    return rows


def make_rows(attrs: dict[str, Any], n: int) -> list[dict[str, Any]]:
    template = dict.fromkeys(SPAN_COLUMNS)
    template.update(start_time=START_NS, kind="CLIENT", name="chat")
    rows = []
    for _ in range(n):
        row = dict(template)
        row["attributes"] = dict(attrs)
        rows.append(row)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny run, a few seconds")
    parser.add_argument("--json", metavar="PATH", help="write the results as a JSON object")
    args = parser.parse_args()
    n_raw, n_cached, n_spans = (200, 5_000, 2_000) if args.smoke else (2_000, 200_000, 50_000)

    results: dict[str, Any] = {"smoke": args.smoke, "lookup_us": {}, "normalize_us_per_span": {}}
    book = PriceBook()
    for label, model, provider, provider_id in MODELS:
        raw = best_us(
            lambda m=model, p=provider_id: genai_prices.calc_price(
                RAW_USAGE, m, provider_id=p, genai_request_timestamp=AT
            ),
            n_raw,
            3,
        )

        def first_lookup(m: str = model, p: str = provider) -> None:
            PriceBook().cost(USAGE, m, p, AT)  # a new book: nothing cached yet

        uncached = best_us(first_lookup, max(20, n_raw // 10), 3)
        book.cost(USAGE, model, provider, AT)
        cached = best_us(lambda m=model, p=provider: book.cost(USAGE, m, p, AT), n_cached, 3)
        results["lookup_us"][label] = {
            "raw_genai_prices": round(raw, 2),
            "price_book_first_call": round(uncached, 2),
            "price_book_cached": round(cached, 2),
        }

    normalizer = normalize.create(normalize.create_default_config())
    coster = cost.create(cost.Config())
    both: dict[str, float] = {}
    for label, attrs in SPANS.items():
        results["normalize_us_per_span"][label] = round(
            per_span_us(normalizer.process, lambda a=attrs: make_rows(a, n_spans)), 2
        )

        def normalised_rows(a: dict[str, Any] = attrs) -> list[dict[str, Any]]:
            rows = make_rows(a, n_spans)
            normalizer.process(rows)
            for row in rows:  # make the cost processor do the pricing, not keep a cost
                row["cost_usd"] = row["cost_source"] = None
            return rows

        both[label] = round(per_span_us(coster.process, normalised_rows), 2)
    results["cost_us_per_span"] = both

    def normalised_mix() -> list[dict[str, Any]]:
        rows = mix_rows(n_spans)
        normalizer.process(rows)
        return rows

    results["ingest_mix_us_per_span"] = {
        "gen_ai_normalize": round(per_span_us(normalizer.process, lambda: mix_rows(n_spans)), 2),
        "gen_ai_cost": round(per_span_us(coster.process, normalised_mix), 2),
    }
    static = results["lookup_us"][MODELS[0][0]]
    results["cached_lookup_us"] = static["price_book_cached"]
    results["raw_lookup_us"] = static["raw_genai_prices"]
    results["normalize_llm_span_us"] = results["normalize_us_per_span"]["own semconv LLM span"]
    results["normalize_plain_span_us"] = results["normalize_us_per_span"][
        "plain span (HTTP server)"
    ]

    print("price lookup, µs per call (CPU):")
    print(f"  {'':38} {'genai-prices':>13} {'first call*':>11} {'cached':>8}")
    for label, row in results["lookup_us"].items():
        print(
            f"  {label:38} {row['raw_genai_prices']:>13.1f} {row['price_book_first_call']:>11.1f}"
            f" {row['price_book_cached']:>8.2f}"
        )
    print("  * a new PriceBook (our cache empty; genai-prices' own model lookup cache warm)")
    print("collector processors, µs per span (CPU):")
    print(f"  {'':38} {'gen_ai_normalize':>16} {'gen_ai_cost':>12}")
    for label in SPANS:
        print(
            f"  {label:38} {results['normalize_us_per_span'][label]:>16.2f}"
            f" {results['cost_us_per_span'][label]:>12.2f}"
        )
    mix = results["ingest_mix_us_per_span"]
    print(
        f"  {'bench/ingest.py span mix (3 of 8 LLM)':38} {mix['gen_ai_normalize']:>16.2f}"
        f" {mix['gen_ai_cost']:>12.2f}"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
