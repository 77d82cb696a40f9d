"""Pricing: the cached PriceBook charges what genai-prices does; overrides win; unknown is None."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import genai_prices
import pytest
from genai_prices import data_snapshot
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_tokens import pricing
from otel_tokens.pricing import Cost, PriceBook, load_overrides
from otel_tokens.usage import Usage
from tests.support.bench import run_smoke
from tests.support.replay_server import usage_entries

REF = "genai-prices 0.2.3"
AT = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
GENAI_PROVIDER = {"openai": "openai", "anthropic": "anthropic", "gemini": "google"}
SEMCONV_PROVIDER = {"openai": "openai", "anthropic": "anthropic", "gemini": "gcp.vertex_ai"}


def genai_price(
    usage: Usage,
    model: str,
    provider_id: str | None,
    at: datetime = AT,
    context: dict[str, str] | None = None,
) -> float:
    """The reference: genai-prices itself, with our Usage mapped to its usage keys."""
    values = {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_read_tokens": usage.cache_read_tokens,
        "cache_write_tokens": usage.cache_creation_tokens,
        "output_reasoning_tokens": usage.reasoning_tokens,
    }
    reference = genai_prices.Usage(**{k: v for k, v in values.items() if v is not None})
    calc = genai_prices.calc_price(
        reference,
        model,
        provider_id=provider_id,
        genai_request_timestamp=at,
        price_context=context,
    )
    return float(calc.total_price)


def semconv_usage(entry: dict[str, Any]) -> Usage:
    """A usage_index.json entry in our semantics (input incl. cache, output incl. reasoning)."""
    read, creation = entry["cache_read_tokens"], entry["cache_creation_tokens"]
    inp, out, reasoning = entry["input_tokens"], entry["output_tokens"], entry["reasoning_tokens"]
    if entry["provider"] == "anthropic":  # Anthropic's input_tokens excludes cached input
        inp += (read or 0) + (creation or 0)
    if entry["provider"] == "gemini" and out is not None:  # candidates exclude thoughts
        out += reasoning or 0
    return Usage(inp, out, read, creation, reasoning)


def assert_cost(cost: Cost | None, amount: float, ref: str) -> None:
    assert cost is not None
    assert cost.amount == pytest.approx(amount, rel=1e-12)
    assert cost.ref == ref


RECORDED = [e for e in usage_entries(ok=True) if e["input_tokens"] is not None]


@pytest.fixture
def book() -> PriceBook:
    return PriceBook()


@pytest.mark.parametrize("entry", RECORDED, ids=lambda e: f"{e['file']}#{e['interaction']}")
def test_every_recorded_call_costs_what_genai_prices_charges(
    book: PriceBook, entry: dict[str, Any]
) -> None:
    usage = semconv_usage(entry)
    cost = book.cost(usage, entry["model"], SEMCONV_PROVIDER[entry["provider"]], AT)
    expected = genai_price(usage, entry["model"], GENAI_PROVIDER[entry["provider"]])
    assert cost is not None
    assert cost.ref == REF
    assert cost.amount == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_gpt_4o_mini_12_in_12_out_costs_nine_millionths_of_a_dollar(book: PriceBook) -> None:
    # $0.15 / M input, $0.60 / M output: 12 * 0.15e-6 + 12 * 0.60e-6 = 9.0e-6 (hand-checked)
    cost = book.cost(Usage(12, 12, 0, None, 0), "gpt-4o-mini-2024-07-18", "openai", AT)
    assert_cost(cost, 9.0e-6, REF)


def test_cached_input_is_charged_at_the_cache_price_not_twice(book: PriceBook) -> None:
    # claude-sonnet-4: input $3, cache read $0.30, cache write $3.75, output $15 per M.
    # 1000 input tokens of which 200 read from and 300 written to cache:
    # 500 * 3 + 200 * 0.3 + 300 * 3.75 + 100 * 15 = 4185 µ$ (hand-checked)
    usage = Usage(input_tokens=1000, output_tokens=100, cache_read_tokens=200,
                  cache_creation_tokens=300)  # fmt: skip
    cost = book.cost(usage, "claude-sonnet-4-20250514", "anthropic", AT)
    assert cost is not None
    assert cost.amount == pytest.approx(0.004185, rel=1e-12)
    assert cost.amount == pytest.approx(genai_price(usage, "claude-sonnet-4-20250514", None))


def test_gemini_thinking_tokens_are_paid_as_output(book: PriceBook) -> None:
    # gemini-2.5-flash: input $0.30, output $2.50 per M; 404 candidates + 1546 thoughts.
    usage = Usage(input_tokens=8, output_tokens=404 + 1546, reasoning_tokens=1546)
    cost = book.cost(usage, "gemini-2.5-flash", "gcp.gemini", AT)
    assert cost is not None
    assert cost.amount == pytest.approx((8 * 0.30 + 1950 * 2.50) / 1e6, rel=1e-12)


def test_embeddings_have_input_tokens_only(book: PriceBook) -> None:
    cost = book.cost(Usage(input_tokens=7), "text-embedding-3-small", "openai", AT)
    assert cost is not None
    assert cost.amount == pytest.approx(7 * 0.02 / 1e6, rel=1e-12)


def test_context_size_tier_applies_to_every_token_above_the_threshold(book: PriceBook) -> None:
    small = Usage(input_tokens=199_000, output_tokens=1000)
    large = Usage(input_tokens=250_000, output_tokens=1000)
    at_threshold = Usage(input_tokens=200_000, output_tokens=1000)  # tiers start *above* 200k
    just_above = Usage(input_tokens=200_001, output_tokens=1000)
    for usage in (small, large, at_threshold, just_above):
        cost = book.cost(usage, "claude-sonnet-4-5", "anthropic", AT)
        assert cost is not None
        assert cost.amount == pytest.approx(genai_price(usage, "claude-sonnet-4-5", "anthropic"))
    cost = book.cost(large, "claude-sonnet-4-5", "anthropic", AT)
    assert cost is not None
    assert cost.amount == pytest.approx((250_000 * 6.0 + 1000 * 22.5) / 1e6, rel=1e-12)
    cost = book.cost(at_threshold, "claude-sonnet-4-5", "anthropic", AT)
    assert cost is not None
    assert cost.amount == pytest.approx((200_000 * 3.0 + 1000 * 15.0) / 1e6, rel=1e-12)


def test_price_is_the_one_valid_on_the_request_date(book: PriceBook) -> None:
    # mistral-medium-latest: $0.40 / M input until 2026-06-15, $1.50 from 2026-06-16.
    usage = Usage(input_tokens=1_000_000, output_tokens=0)
    before = book.cost(usage, "mistral-medium-latest", "mistral_ai", datetime(2026, 6, 15, 23))
    after = book.cost(usage, "mistral-medium-latest", "mistral_ai", datetime(2026, 6, 16, 0, 1))
    assert before is not None and after is not None
    assert before.amount == pytest.approx(0.40)
    assert after.amount == pytest.approx(1.50)


def test_historic_tiers_follow_the_request_date(book: PriceBook) -> None:
    # claude-sonnet-4-6 had long-context tiers until 2026-03-12.
    usage = Usage(input_tokens=300_000, output_tokens=10)
    for day in (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)):
        cost = book.cost(usage, "claude-sonnet-4-6", "anthropic", day)
        assert cost is not None
        assert cost.amount == pytest.approx(
            genai_price(usage, "claude-sonnet-4-6", "anthropic", day), rel=1e-12
        )
    march = book.cost(usage, "claude-sonnet-4-6", "anthropic", datetime(2026, 3, 1, tzinfo=UTC))
    april = book.cost(usage, "claude-sonnet-4-6", "anthropic", datetime(2026, 4, 1, tzinfo=UTC))
    assert march is not None and april is not None and march.amount > april.amount


def test_off_peak_prices_follow_the_time_of_day(book: PriceBook) -> None:
    usage = Usage(input_tokens=10_000, output_tokens=2000, cache_read_tokens=3000)
    costs = []
    for hour in (2, 20):
        at = datetime(2026, 5, 1, hour, 15, tzinfo=UTC)
        cost = book.cost(usage, "deepseek-chat", "deepseek", at)
        assert cost is not None
        assert cost.amount == pytest.approx(genai_price(usage, "deepseek-chat", "deepseek", at))
        costs.append(cost.amount)
    assert costs[0] != costs[1]


def test_service_tier_selects_the_catalogue_price_variant(book: PriceBook) -> None:
    usage = Usage(input_tokens=1000, output_tokens=1000)
    flex = book.cost(usage, "gpt-4o-mini", "openai", AT, service_tier="flex")
    assert flex is not None
    expected = genai_price(usage, "gpt-4o-mini", "openai", context={"service_tier": "flex"})
    assert flex.amount == pytest.approx(expected, rel=1e-12)


def test_cache_hit_returns_the_same_cost_as_the_first_lookup(book: PriceBook) -> None:
    usage = Usage(input_tokens=500, output_tokens=50, cache_read_tokens=100)
    first = book.cost(usage, "gpt-4o-mini-2024-07-18", "openai", AT)
    again = [book.cost(usage, "gpt-4o-mini-2024-07-18", "openai", AT) for _ in range(3)]
    assert again == [first] * 3
    assert book.cache_info() == {"models": 1, "rates": 1}
    assert first is not None
    assert first.amount == pytest.approx(genai_price(usage, "gpt-4o-mini-2024-07-18", "openai"))


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("azure.ai.openai", "gpt-4o-mini"),
        ("aws.bedrock", "anthropic.claude-3-5-sonnet-20241022-v2:0"),
        ("gcp.vertex_ai", "gemini-2.5-flash"),
        ("gcp.gemini", "models/gemini-2.5-flash"),
        ("my-llm-gateway", "gpt-4o-mini"),  # unknown provider: the model decides
        (None, "claude-sonnet-4-20250514"),
    ],
)
def test_semconv_provider_names_find_a_catalogue_price(
    book: PriceBook, provider: str | None, model: str
) -> None:
    cost = book.cost(Usage(input_tokens=100, output_tokens=10), model, provider, AT)
    assert cost is not None and cost.amount > 0


def test_unknown_model_has_no_cost_never_zero(
    book: PriceBook, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="otel_tokens.pricing"):
        assert book.cost(Usage(10, 10), "my-private-llama-70b", "openai", AT) is None
    assert "my-private-llama-70b" in caplog.text
    assert book.describe("my-private-llama-70b") is None


def test_no_model_or_no_tokens_has_no_cost(book: PriceBook) -> None:
    assert book.cost(Usage(10, 10), None, "openai", AT) is None
    assert book.cost(Usage(), "gpt-4o-mini", "openai", AT) is None


def test_contradictory_counts_are_not_priced(book: PriceBook) -> None:
    # More cache reads than input: the counts cannot be right, so no cost rather than a wrong one.
    assert book.cost(Usage(10, 10, cache_read_tokens=50), "gpt-4o-mini", "openai", AT) is None


def test_override_wins_over_the_catalogue_and_names_itself_in_the_ref() -> None:
    book = PriceBook({"gpt-4o-mini": {"input": 1.0, "output": 2.0, "cache_read": 0.5}})
    usage = Usage(input_tokens=1000, output_tokens=100, cache_read_tokens=400)
    cost = book.cost(usage, "gpt-4o-mini", "openai", AT)
    assert_cost(cost, (600 * 1 + 400 * 0.5 + 100 * 2) / 1e6, "override:gpt-4o-mini")
    dated = book.cost(usage, "gpt-4o-mini-2024-07-18", "openai", AT)  # dated snapshot
    assert dated is not None and dated.ref == "override:gpt-4o-mini"


def test_override_prices_a_model_the_catalogue_does_not_know() -> None:
    book = PriceBook({"my-llama": {"input": 0.2, "output": 0.4}})
    cost = book.cost(Usage(input_tokens=1000, output_tokens=500, cache_read_tokens=200),
                     "my-llama", "vllm", AT)  # fmt: skip
    # no cache_read price: cached tokens pay the input price
    assert_cost(cost, (1000 * 0.2 + 500 * 0.4) / 1e6, "override:my-llama")


def test_override_restricted_to_a_provider_leaves_other_providers_alone() -> None:
    book = PriceBook({"gpt-4o-mini": {"input": 9.0, "output": 9.0, "provider": "azure.ai.openai"}})
    usage = Usage(input_tokens=1000, output_tokens=0)
    azure = book.cost(usage, "gpt-4o-mini", "azure.ai.openai", AT)
    openai = book.cost(usage, "gpt-4o-mini", "openai", AT)
    assert azure is not None and azure.ref == "override:gpt-4o-mini"
    assert openai is not None and openai.ref == REF


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"input": "cheap"}, "m.input"),
        ({"input": -1}, "m.input"),
        ({"input": float("nan")}, "m.input"),
        ({"input": 1, "outptu": 2}, "m.outptu"),
        ({"cache_read": 1}, "m: needs"),
        ({"input": True}, "m.input"),
    ],
)
def test_bad_override_is_a_value_error_naming_the_key(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PriceBook({"m": spec})


def test_overrides_load_from_yaml_and_json(tmp_path: Path) -> None:
    yaml_file = tmp_path / "prices.yaml"
    yaml_file.write_text("my-llama:\n  input: 0.2\n  output: 0.4\n  provider: vllm\n")
    json_file = tmp_path / "prices.json"
    json_file.write_text(json.dumps({"my-llama": {"input": 0.2, "output": 0.4}}))
    assert load_overrides(yaml_file) == {
        "my-llama": {"input": 0.2, "output": 0.4, "provider": "vllm"}
    }
    assert load_overrides(json_file) == {"my-llama": {"input": 0.2, "output": 0.4}}
    bad = tmp_path / "bad.yaml"
    bad.write_text("my-llama:\n  input: lots\n")
    with pytest.raises(ValueError, match=r"my-llama\.input"):
        load_overrides(bad)


def test_default_price_book_reads_the_prices_file_named_by_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text("my-llama:\n  input: 1\n  output: 1\n")
    monkeypatch.setenv("OTEL_TOKENS_PRICES", str(path))
    pricing._reset_default_price_book()
    try:
        book = pricing.default_price_book()
        assert pricing.default_price_book() is book
        cost = book.cost(Usage(1_000_000, 0), "my-llama", None, AT)
        assert_cost(cost, 1.0, "override:my-llama")
    finally:
        pricing._reset_default_price_book()


def test_a_broken_prices_file_is_ignored_not_fatal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text("my-llama: [unclosed\n")
    monkeypatch.setenv("OTEL_TOKENS_PRICES", str(path))
    pricing._reset_default_price_book()
    try:
        book = pricing.default_price_book()
        assert book.cost(Usage(10, 10), "my-llama", None, AT) is None
        assert book.cost(Usage(10, 10), "gpt-4o-mini", "openai", AT) is not None
    finally:
        pricing._reset_default_price_book()


def test_describe_shows_per_million_prices_and_tiers(book: PriceBook) -> None:
    info = book.describe("claude-sonnet-4-5", "anthropic", AT)
    assert info is not None
    assert (info.matched_model, info.provider, info.source, info.ref) == (
        "claude-sonnet-4-5",
        "anthropic",
        "catalogue",
        REF,
    )
    assert (info.input, info.output, info.cache_read, info.cache_write) == (3.0, 15.0, 0.3, 3.75)
    assert [(t.above_input_tokens, t.input, t.output) for t in info.tiers] == [(200_000, 6.0, 22.5)]
    assert info.as_dict()["tiers"][0]["cache_read"] == 0.6


def test_describe_shows_an_override() -> None:
    book = PriceBook({"my-llama": {"input": 0.2, "output": 0.4, "provider": "vllm"}})
    info = book.describe("my-llama")
    assert info is not None
    assert (info.source, info.ref, info.provider, info.input, info.output, info.cache_read) == (
        "override",
        "override:my-llama",
        "vllm",
        0.2,
        0.4,
        None,
    )


def test_a_process_wide_genai_prices_snapshot_is_not_used(book: PriceBook) -> None:
    # Another library may start genai-prices' auto-updater (which downloads a new snapshot); our
    # prices stay the pinned, bundled ones that the ref names.
    data_snapshot.set_custom_snapshot(data_snapshot.DataSnapshot([], from_auto_update=True))
    try:
        assert book.cost(Usage(12, 12), "gpt-4o-mini", "openai", AT) is not None
    finally:
        data_snapshot.set_custom_snapshot(None)


MODELS = [
    ("openai", "gpt-4o-mini-2024-07-18"),
    ("openai", "gpt-5.4"),
    ("anthropic", "claude-sonnet-4-20250514"),
    ("anthropic", "claude-sonnet-4-5"),
    ("anthropic", "claude-opus-4-6"),
    ("google", "gemini-2.5-pro"),
    ("google", "gemini-2.5-flash"),
    ("deepseek", "deepseek-chat"),
    ("mistral", "mistral-large-4"),
]


@settings(max_examples=200, deadline=None)
@given(
    model=st.sampled_from(MODELS),
    inp=st.integers(0, 600_000),
    out=st.integers(0, 50_000),
    read_share=st.floats(0, 1),
    write_share=st.floats(0, 1),
    reasoning_share=st.floats(0, 1),
    when=st.datetimes(datetime(2025, 1, 1), datetime(2027, 6, 1), timezones=st.just(UTC)),
)
def test_any_consistent_usage_costs_what_genai_prices_charges(
    model: tuple[str, str],
    inp: int,
    out: int,
    read_share: float,
    write_share: float,
    reasoning_share: float,
    when: datetime,
) -> None:
    read = int(inp * read_share)
    write = int((inp - read) * write_share)
    usage = Usage(inp, out, read, write, int(out * reasoning_share))
    cost = BOOK.cost(usage, model[1], model[0], when)
    assert cost is not None
    expected = genai_price(usage, model[1], model[0], when)
    assert Decimal(cost.amount) == pytest.approx(Decimal(expected), rel=Decimal("1e-12"))


BOOK = PriceBook()  # shared by the property test, so cached and uncached paths both run


def test_pricing_benchmark_smoke_run_prints_and_writes_its_json(tmp_path: Path) -> None:
    results, printed = run_smoke("pricing.py", tmp_path, timeout=120)
    assert "price lookup" in printed
    assert results["smoke"] is True
    assert results["cached_lookup_us"] > 0 and results["raw_lookup_us"] > 0
    assert set(results["ingest_mix_us_per_span"]) == {"gen_ai_normalize", "gen_ai_cost"}
