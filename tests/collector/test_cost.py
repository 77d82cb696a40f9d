"""gen_ai_cost: local prices where the span has none, provider cost kept, unknown → NULL, nodes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import genai_prices
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.components import module_for
from collector.processors import cost, normalize
from otel_tokens import pricing
from queries.store import SPAN_COLUMNS
from tests.collector.test_normalize import span_row

REF = "genai-prices 0.2.3"
MAY_2026 = int(datetime(2026, 5, 1, 12, tzinfo=UTC).timestamp()) * 10**9


def llm_row(attributes: dict[str, Any] | None = None, **columns: Any) -> dict[str, Any]:
    columns.setdefault("start_time", MAY_2026)
    return span_row(attributes or {}, **columns)


def run(rows: list[dict[str, Any]], **config: Any) -> cost.CostProcessor:
    processor = cost.create(cost.Config(**config))
    processor.process(rows)
    return processor


def reference(usage: dict[str, int], model: str, provider_id: str, at: datetime) -> float:
    return float(
        genai_prices.calc_price(
            genai_prices.Usage(**usage), model, provider_id=provider_id, genai_request_timestamp=at
        ).total_price
    )


def test_a_span_without_cost_is_priced_from_its_token_columns() -> None:
    row = llm_row(
        provider="openai",
        request_model="gpt-4o-mini",
        response_model="gpt-4o-mini-2024-07-18",
        input_tokens=12,
        output_tokens=12,
        cache_read_tokens=0,
        reasoning_tokens=0,
    )
    processor = run([row])
    assert row["cost_usd"] == pytest.approx(9.0e-6, rel=1e-12)  # 12*0.15 + 12*0.60 per M
    assert (row["cost_source"], row["pricing_ref"]) == ("local", REF)
    assert processor.counters()["priced_local"] == 1


def test_cached_anthropic_tokens_cost_what_genai_prices_charges() -> None:
    row = llm_row(
        provider="anthropic",
        response_model="claude-sonnet-4-20250514",
        input_tokens=1000,
        output_tokens=100,
        cache_read_tokens=200,
        cache_creation_tokens=300,
    )
    run([row])
    at = datetime(2026, 5, 1, 12, tzinfo=UTC)
    usage = {
        "input_tokens": 1000,
        "output_tokens": 100,
        "cache_read_tokens": 200,
        "cache_write_tokens": 300,
    }
    assert row["cost_usd"] == pytest.approx(0.004185, rel=1e-12)
    assert row["cost_usd"] == pytest.approx(
        reference(usage, "claude-sonnet-4-20250514", "anthropic", at)
    )


def test_provider_reported_cost_is_kept_as_it_is() -> None:
    row = llm_row(
        provider="openai",
        response_model="gpt-4o-mini",
        input_tokens=12,
        output_tokens=12,
        cost_usd=0.5,
        cost_source="provider",
        pricing_ref=None,
    )
    processor = run([row])
    assert (row["cost_usd"], row["cost_source"], row["pricing_ref"]) == (0.5, "provider", None)
    assert processor.counters()["cost_kept"] == 1


def test_unknown_model_gets_no_cost_never_zero() -> None:
    row = llm_row(
        provider="vllm", request_model="my-private-llama", input_tokens=100, output_tokens=10
    )
    processor = run([row])
    assert row["cost_usd"] is None and row["cost_source"] is None and row["pricing_ref"] is None
    assert processor.counters()["unpriced"] == 1


def test_inline_overrides_win_over_the_prices_file_which_wins_over_the_catalogue(
    tmp_path: Path,
) -> None:
    prices = tmp_path / "prices.yaml"
    prices.write_text(
        "my-llama:\n  input: 1.0\n  output: 1.0\ngpt-4o-mini:\n  input: 2.0\n  output: 2.0\n"
    )
    rows = [
        llm_row(request_model="my-llama", input_tokens=1_000_000, output_tokens=0),
        llm_row(request_model="gpt-4o-mini", input_tokens=1_000_000, output_tokens=0),
        llm_row(request_model="gpt-4o", provider="openai", input_tokens=1_000_000, output_tokens=0),
    ]
    run(rows, prices_file=str(prices), overrides={"gpt-4o-mini": {"input": 3.0, "output": 3.0}})
    assert [(r["cost_usd"], r["pricing_ref"]) for r in rows] == [
        (pytest.approx(1.0), "override:my-llama"),
        (pytest.approx(3.0), "override:gpt-4o-mini"),
        (pytest.approx(2.5), REF),  # gpt-4o: $2.50 / M input in the catalogue
    ]


def test_the_price_is_the_one_valid_when_the_span_started() -> None:
    # mistral-medium-latest: $0.40 / M input until 2026-06-15, $1.50 from 2026-06-16.
    def started(day: datetime) -> dict[str, Any]:
        return llm_row(
            provider="mistral_ai",
            request_model="mistral-medium-latest",
            input_tokens=1_000_000,
            output_tokens=0,
            start_time=int(day.timestamp()) * 10**9,
        )

    june, july = (
        started(datetime(2026, 6, 1, tzinfo=UTC)),
        started(datetime(2026, 7, 1, tzinfo=UTC)),
    )
    run([june, july])
    assert june["cost_usd"] == pytest.approx(0.40) and july["cost_usd"] == pytest.approx(1.50)


def test_request_model_prices_the_call_when_the_response_model_is_unknown() -> None:
    row = llm_row(
        provider="openai",
        request_model="gpt-4o-mini",
        response_model="gpt-4o-mini-custom-finetune-xyz",
        input_tokens=12,
        output_tokens=12,
    )
    run([row])
    assert row["cost_usd"] == pytest.approx(9.0e-6)


def test_node_comes_from_the_first_attribute_of_the_resolution_list() -> None:
    rows = [
        llm_row({"graph.node.name": "retrieve", "traceloop.entity.name": "x"}),
        llm_row({"traceloop.entity.name": "summarise"}),
        llm_row({"gen_ai.agent.name": "planner"}),
        llm_row({"graph.node.name": "ignored"}, node="already_set"),
        llm_row({"http.method": "GET"}),
    ]
    processor = run(rows)
    assert [r["node"] for r in rows] == ["retrieve", "summarise", "planner", "already_set", None]
    assert processor.counters()["node_resolved"] == 3


def test_node_resolution_list_is_configurable() -> None:
    rows = [llm_row({"graph.node.name": "retrieve", "app.step": "step-1"})]
    run(rows, node_attributes=["app.step", "graph.node.name"])
    assert rows[0]["node"] == "step-1"


def test_spans_without_tokens_are_not_priced() -> None:
    row = llm_row({"http.method": "GET"}, request_model="gpt-4o-mini")
    processor = run([row])
    assert row["cost_usd"] is None
    assert processor.counters()["priced_local"] == processor.counters()["unpriced"] == 0


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"overrides": {"m": {"input": "cheap"}}}, r"^overrides\.m\.input: "),
        ({"overrides": ["m"]}, r"^overrides: "),
        ({"prices_file": "/nonexistent/prices.yaml"}, r"^prices_file: "),
        ({"node_attributes": "graph.node.name"}, r"^node_attributes: "),
        ({"node_attributes": ["ok", ""]}, r"^node_attributes: "),
    ],
)
def test_bad_config_names_the_key(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cost.Config(**config).validate()


def test_bad_prices_file_names_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "prices.yaml"
    bad.write_text("my-llama:\n  input: lots\n")
    with pytest.raises(ValueError, match=r"^prices_file: .*my-llama\.input"):
        cost.Config(prices_file=str(bad)).validate()


def test_component_interface_and_default_book(monkeypatch: pytest.MonkeyPatch) -> None:
    module = module_for("processors", "gen_ai_cost")
    assert module is cost and cost.TYPE == "gen_ai_cost"
    config = module.create_default_config()
    config.validate()
    assert config.node_attributes == [
        "otel_tokens.node",
        "graph.node.name",
        "traceloop.entity.name",
        "gen_ai.agent.name",
    ]
    monkeypatch.delenv("OTEL_TOKENS_PRICES", raising=False)
    pricing._reset_default_price_book()
    try:
        assert module.create(config).book is pricing.default_price_book()
    finally:
        pricing._reset_default_price_book()


@pytest.mark.parametrize(
    ("attributes", "model", "provider_id", "usage"),
    [
        (  # OpenInference + Anthropic: prompt excludes cache; normalised, then priced inclusive
            {
                "openinference.span.kind": "LLM",
                "llm.provider": "anthropic",
                "llm.model_name": "claude-sonnet-4-5",
                "llm.token_count.prompt": 13,
                "llm.token_count.completion": 10,
                "llm.token_count.prompt_details.cache_read": 4,
                "llm.token_count.prompt_details.cache_write": 5,
            },
            "claude-sonnet-4-5",
            "anthropic",
            {
                "input_tokens": 22,
                "output_tokens": 10,
                "cache_read_tokens": 4,
                "cache_write_tokens": 5,
            },
        ),
        (  # old semconv, Gemini on Vertex with thoughts outside the candidates count
            {
                "gen_ai.system": "vertex_ai",
                "gen_ai.request.model": "gemini-2.5-flash",
                "gen_ai.usage.prompt_tokens": 8,
                "gen_ai.usage.completion_tokens": 404,
                "gen_ai.usage.reasoning_tokens": 1546,
                "gen_ai.usage.total_tokens": 1958,
            },
            "gemini-2.5-flash",
            "google",
            {"input_tokens": 8, "output_tokens": 1950, "output_reasoning_tokens": 1546},
        ),
        (  # OpenLLMetry, OpenAI embeddings
            {
                "gen_ai.system": "openai",
                "llm.request.type": "embedding",
                "gen_ai.request.model": "text-embedding-3-small",
                "gen_ai.usage.prompt_tokens": 7,
                "gen_ai.usage.total_tokens": 7,
            },
            "text-embedding-3-small",
            "openai",
            {"input_tokens": 7},
        ),
    ],
)
def test_normalise_then_price_equals_genai_prices_for_foreign_conventions(
    attributes: dict[str, Any], model: str, provider_id: str, usage: dict[str, int]
) -> None:
    row = llm_row(dict(attributes))
    normalize.create(normalize.create_default_config()).process([row])
    run([row])
    at = datetime(2026, 5, 1, 12, tzinfo=UTC)
    assert row["cost_source"] == "local" and row["pricing_ref"] == REF
    assert row["cost_usd"] == pytest.approx(reference(usage, model, provider_id, at), rel=1e-12)


COLUMN_VALUES = st.one_of(
    st.none(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.sampled_from(["gpt-4o-mini", "claude-sonnet-4-5", "openai", "anthropic", "local"]),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
)


@settings(max_examples=300, deadline=None)
@given(
    columns=st.fixed_dictionaries(
        {},
        optional={
            name: COLUMN_VALUES
            for name in (
                "provider",
                "request_model",
                "response_model",
                "input_tokens",
                "output_tokens",
                "cache_read_tokens",
                "cache_creation_tokens",
                "reasoning_tokens",
                "start_time",
                "node",
            )
        },
    ),
    attrs=st.dictionaries(
        st.sampled_from(["graph.node.name", "gen_ai.agent.name", "openai.response.service_tier"]),
        COLUMN_VALUES,
    ),
)
def test_random_rows_never_raise(columns: dict[str, Any], attrs: dict[str, Any]) -> None:
    row = dict.fromkeys(SPAN_COLUMNS)
    row.update(columns, attributes=attrs)
    processor = PROCESSOR
    before = processor.counters()["span_errors"]
    processor.process([row])
    assert processor.counters()["span_errors"] == before
    assert row["cost_usd"] is None or row["cost_usd"] >= 0


PROCESSOR = cost.create(cost.Config(overrides={"my-llama": {"input": 1, "output": 1}}))


def test_documented_yaml_configures_both_processors(tmp_path: Path) -> None:
    from collector import config as collector_config

    doc: dict[str, Any] = {
        "receivers": {"otlp": {"protocols": {"http": {"endpoint": "127.0.0.1:0"}}}},
        "processors": {
            "gen_ai_normalize": {"capture_content": False},
            "gen_ai_cost": {
                "prices_file": "${env:OTEL_TOKENS_PRICES:-}",
                "overrides": {"my-llama-70b": {"input": 0.20, "output": 0.40}},
                "node_attributes": [
                    "otel_tokens.node",
                    "graph.node.name",
                    "traceloop.entity.name",
                    "gen_ai.agent.name",
                ],
            },
        },
        "exporters": {"duckdb": {"path": str(tmp_path / "t.duckdb")}},
        "service": {
            "pipelines": {
                "traces": {
                    "receivers": ["otlp"],
                    "processors": ["gen_ai_normalize", "gen_ai_cost"],
                    "exporters": ["duckdb"],
                }
            }
        },
    }
    parsed = collector_config.parse(doc, environ={})
    spec = parsed.processors["gen_ai_cost"]
    processor = spec.module.create(spec.config)
    row = llm_row(request_model="my-llama-70b", input_tokens=1_000_000, output_tokens=0)
    processor.process([row])
    assert (row["cost_usd"], row["pricing_ref"]) == (pytest.approx(0.20), "override:my-llama-70b")
    bad = {**doc, "processors": {**doc["processors"], "gen_ai_cost": {"overrides": {"m": {}}}}}
    with pytest.raises(ValueError, match=r"gen_ai_cost.*overrides\.m"):
        collector_config.parse(bad, environ={})
