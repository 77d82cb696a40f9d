"""gen_ai_normalize: every attribute convention of SPEC §2 lands in the same columns."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.components import module_for
from collector.processors import normalize
from queries.store import SPAN_COLUMNS

FILLED = (
    "operation",
    "provider",
    "request_model",
    "response_model",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_creation_tokens",
    "reasoning_tokens",
    "cost_usd",
    "cost_source",
    "usage_estimated",
    "pricing_ref",
    "node",
    "user_id",
    "tenant",
    "session_id",
    "conversation_id",
    "correlation_id",
    "job_type",
)


def span_row(attributes: dict[str, Any], **columns: Any) -> dict[str, Any]:
    """A row as the receiver hands it over: structural keys set, processor columns None."""
    row: dict[str, Any] = dict.fromkeys(SPAN_COLUMNS)
    row.update(
        trace_id="0af7651916cd43dd8448eb211c80319c",
        span_id="b7ad6b7169203331",
        name="chat gpt-4o-mini",
        kind="CLIENT",
        service_name="svc",
        start_time=1_767_225_600_000_000_000,
        end_time=1_767_225_601_000_000_000,
        attributes=attributes,
        resource_attributes={"service.name": "svc"},
    )
    row.update(columns)
    return row


def normalised(
    attributes: dict[str, Any], capture_content: bool = False
) -> tuple[dict[str, Any], dict[str, Any], dict[str, int]]:
    """(filled columns, remaining attributes, counters) after the processor ran on one span."""
    processor = normalize.create(normalize.Config(capture_content=capture_content))
    [row] = processor.process([span_row(dict(attributes))])
    columns = {c: row[c] for c in FILLED if row[c] is not None}
    return columns, row["attributes"], processor.counters()


def test_our_own_semconv_span_fills_every_column_and_keeps_nothing_twice() -> None:
    columns, attrs, counters = normalised(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "anthropic",
            "gen_ai.request.model": "claude-sonnet-4-5",
            "gen_ai.response.model": "claude-sonnet-4-5-20250929",
            "gen_ai.response.id": "msg_01",
            "gen_ai.usage.input_tokens": 22,
            "gen_ai.usage.output_tokens": 10,
            "gen_ai.usage.cache_read.input_tokens": 4,
            "gen_ai.usage.cache_creation.input_tokens": 5,
            "gen_ai.conversation.id": "conv-1",
            "gen_ai.usage.cost.amount": 0.00018195,
            "gen_ai.usage.cost.currency": "USD",
            "gen_ai.usage.cost.source": "local",
            "enduser.id": "u1",
            "session.id": "s1",
            "otel_tokens.node": "intent_classification",
            "otel_tokens.correlation_id": "req-42",
            "otel_tokens.tenant": "acme",
            "otel_tokens.job_type": "ingest_emails",
            "otel_tokens.usage.estimated": False,
            "otel_tokens.pricing.ref": "genai-prices 0.2.3",
            "server.address": "api.anthropic.com",
        }
    )
    assert columns == {
        "operation": "chat",
        "provider": "anthropic",
        "request_model": "claude-sonnet-4-5",
        "response_model": "claude-sonnet-4-5-20250929",
        "input_tokens": 22,
        "output_tokens": 10,
        "cache_read_tokens": 4,
        "cache_creation_tokens": 5,
        "cost_usd": 0.00018195,
        "cost_source": "local",
        "usage_estimated": False,
        "pricing_ref": "genai-prices 0.2.3",
        "node": "intent_classification",
        "user_id": "u1",
        "tenant": "acme",
        "session_id": "s1",
        "conversation_id": "conv-1",
        "correlation_id": "req-42",
        "job_type": "ingest_emails",
    }
    # Only what has no column is left: the row stays small.
    assert attrs == {"gen_ai.response.id": "msg_01", "server.address": "api.anthropic.com"}
    assert counters["coerced_values"] == counters["dropped_values"] == 0


@pytest.mark.parametrize(
    ("system", "provider"),
    [
        ("openai", "openai"),
        ("anthropic", "anthropic"),
        ("vertex_ai", "gcp.vertex_ai"),
        ("gemini", "gcp.gemini"),
        ("az.ai.openai", "azure.ai.openai"),
        ("aws.bedrock", "aws.bedrock"),
        ("Mistral_AI", "mistral_ai"),
    ],
)
def test_old_semconv_system_and_prompt_completion_tokens(system: str, provider: str) -> None:
    raw = {
        "gen_ai.system": system,
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "m",
        "gen_ai.usage.prompt_tokens": 12,
        "gen_ai.usage.completion_tokens": 5,
    }
    columns, attrs, _ = normalised(raw)
    assert columns == {
        "operation": "chat",
        "provider": provider,
        "request_model": "m",
        "input_tokens": 12,
        "output_tokens": 5,
    }
    # foreign-convention attributes are kept as they came
    assert attrs == {
        "gen_ai.system": system,
        "gen_ai.usage.prompt_tokens": 12,
        "gen_ai.usage.completion_tokens": 5,
    }


def test_openllmetry_anthropic_span_with_cache_and_association_properties() -> None:
    # OpenLLMetry's Anthropic instrumentation already adds cache reads/writes to prompt_tokens.
    columns, attrs, counters = normalised(
        {
            "gen_ai.system": "Anthropic",
            "llm.request.type": "chat",
            "gen_ai.request.model": "claude-sonnet-4-5",
            "gen_ai.response.model": "claude-sonnet-4-5-20250929",
            "gen_ai.usage.prompt_tokens": 22,
            "gen_ai.usage.completion_tokens": 10,
            "gen_ai.usage.total_tokens": 32,
            "gen_ai.usage.cache_read_input_tokens": 4,
            "gen_ai.usage.cache_creation_input_tokens": 5,
            "traceloop.association.properties.user_id": "u7",
            "traceloop.association.properties.session_id": "s7",
            "traceloop.association.properties.correlation_id": "req-7",
            "traceloop.association.properties.tenant_id": "globex",
            "traceloop.association.properties.color": "blue",
            "traceloop.entity.name": "summarise",
            "gen_ai.prompt.0.role": "user",
            "gen_ai.prompt.0.content": "secret prompt",
            "gen_ai.completion.0.content": "secret answer",
        }
    )
    assert columns == {
        "operation": "chat",
        "provider": "anthropic",
        "request_model": "claude-sonnet-4-5",
        "response_model": "claude-sonnet-4-5-20250929",
        "input_tokens": 22,
        "output_tokens": 10,
        "cache_read_tokens": 4,
        "cache_creation_tokens": 5,
        "user_id": "u7",
        "session_id": "s7",
        "correlation_id": "req-7",
        "tenant": "globex",
    }
    assert "gen_ai.prompt.0.content" not in attrs and "gen_ai.completion.0.content" not in attrs
    assert attrs["traceloop.entity.name"] == "summarise"  # node comes from gen_ai_cost's list
    assert attrs["traceloop.association.properties.color"] == "blue"
    assert counters["content_attributes_dropped"] == 3
    assert counters["cache_exclusive_input_normalised"] == 0


def test_openllmetry_reasoning_tokens() -> None:
    columns, _, _ = normalised(
        {
            "gen_ai.system": "openai",
            "gen_ai.request.model": "o3-mini",
            "gen_ai.usage.prompt_tokens": 44,
            "gen_ai.usage.completion_tokens": 288,
            "gen_ai.usage.reasoning_tokens": 9,
            "gen_ai.usage.total_tokens": 332,
        }
    )
    assert (columns["input_tokens"], columns["output_tokens"], columns["reasoning_tokens"]) == (
        44,
        288,
        9,
    )


def test_openinference_openai_span() -> None:
    columns, attrs, counters = normalised(
        {
            "openinference.span.kind": "LLM",
            "llm.provider": "openai",
            "llm.system": "openai",
            "llm.model_name": "gpt-4o-mini-2024-07-18",
            "llm.token_count.prompt": 1200,
            "llm.token_count.completion": 30,
            "llm.token_count.total": 1230,
            "llm.token_count.prompt_details.cache_read": 1024,
            "llm.token_count.completion_details.reasoning": 0,
            "user.id": "u3",
            "session.id": "s3",
            "graph.node.name": "retrieve",
            "input.value": '{"messages": "secret"}',
            "input.mime_type": "application/json",
            "output.value": "secret",
            "llm.input_messages.0.message.role": "user",
            "llm.input_messages.0.message.content": "secret",
            "llm.output_messages.0.message.content": "secret",
        }
    )
    assert columns == {
        "operation": "chat",
        "provider": "openai",
        "request_model": "gpt-4o-mini-2024-07-18",
        "response_model": "gpt-4o-mini-2024-07-18",
        "input_tokens": 1200,
        "output_tokens": 30,
        "cache_read_tokens": 1024,
        "reasoning_tokens": 0,
        "user_id": "u3",
        "session_id": "s3",
    }
    assert counters["cache_exclusive_input_normalised"] == 0
    assert counters["content_attributes_dropped"] == 5
    assert attrs["graph.node.name"] == "retrieve" and attrs["user.id"] == "u3"
    assert "session.id" not in attrs  # same name as the general semconv attribute: in the column
    assert not any("secret" in str(v) for v in attrs.values())


def test_openinference_anthropic_prompt_count_excludes_cache_and_is_made_inclusive() -> None:
    # openinference-instrumentation-anthropic records Anthropic's own usage.input_tokens.
    columns, attrs, counters = normalised(
        {
            "openinference.span.kind": "LLM",
            "llm.provider": "anthropic",
            "llm.system": "anthropic",
            "llm.model_name": "claude-sonnet-4-20250514",
            "llm.token_count.prompt": 1300,  # more than the cached part: only the source tells
            "llm.token_count.completion": 10,
            "llm.token_count.prompt_details.cache_read": 400,
            "llm.token_count.prompt_details.cache_write": 500,
        }
    )
    assert columns["input_tokens"] == 1300 + 400 + 500
    assert columns["cache_read_tokens"] == 400 and columns["cache_creation_tokens"] == 500
    assert attrs["llm.token_count.prompt"] == 1300  # the raw value stays for the record
    assert counters["cache_exclusive_input_normalised"] == 1


def test_a_total_that_only_adds_up_with_cache_reveals_exclusive_input() -> None:
    columns, _, counters = normalised(
        {
            "openinference.span.kind": "LLM",
            "llm.system": "bedrock",
            "llm.token_count.prompt": 4299,
            "llm.token_count.completion": 631,
            "llm.token_count.total": 58291,
            "llm.token_count.prompt_details.cache_read": 35574,
            "llm.token_count.prompt_details.cache_write": 17787,
        }
    )
    assert columns["input_tokens"] == 4299 + 35574 + 17787
    assert columns["provider"] == "aws.bedrock"
    assert counters["cache_exclusive_input_normalised"] == 1


def test_gemini_thoughts_outside_the_candidates_count_are_added_to_output() -> None:
    # Gemini: totalTokenCount = prompt + candidates + thoughts; candidates exclude thoughts.
    columns, attrs, counters = normalised(
        {
            "gen_ai.system": "gemini",
            "gen_ai.usage.prompt_tokens": 8,
            "gen_ai.usage.completion_tokens": 404,
            "gen_ai.usage.reasoning_tokens": 1546,
            "gen_ai.usage.total_tokens": 1958,
        }
    )
    assert columns["output_tokens"] == 404 + 1546 and columns["reasoning_tokens"] == 1546
    assert attrs["gen_ai.usage.completion_tokens"] == 404
    assert counters["reasoning_exclusive_output_normalised"] == 1


def test_semconv_input_below_its_cached_part_must_have_excluded_it() -> None:
    columns, attrs, counters = normalised(
        {
            "gen_ai.provider.name": "anthropic",
            "gen_ai.usage.input_tokens": 13,
            "gen_ai.usage.output_tokens": 5,
            "gen_ai.usage.cache_read.input_tokens": 400,
        }
    )
    assert columns["input_tokens"] == 413
    assert attrs == {"gen_ai.usage.input_tokens": 13}  # changed, so the raw value is kept
    assert counters["cache_exclusive_input_normalised"] == 1


def test_openlit_span_cost_user_and_session() -> None:
    columns, attrs, _ = normalised(
        {
            "telemetry.sdk.name": "openlit",
            "gen_ai.system": "openai",
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": 12,
            "gen_ai.usage.output_tokens": 12,
            "gen_ai.usage.cost": 0.000009,
            "gen_ai.user.id": "u9",
            "gen_ai.session.id": "s9",
        }
    )
    assert columns == {
        "operation": "chat",
        "provider": "openai",
        "request_model": "gpt-4o-mini",
        "input_tokens": 12,
        "output_tokens": 12,
        "cost_usd": 0.000009,
        "cost_source": "provider",
        "pricing_ref": "openlit",
        "user_id": "u9",
        "session_id": "s9",
    }
    assert attrs["gen_ai.usage.cost"] == 0.000009 and attrs["gen_ai.user.id"] == "u9"


def test_openlit_zero_cost_means_unknown_model_not_free() -> None:
    columns, _, _ = normalised(
        {"gen_ai.system": "openai", "gen_ai.usage.input_tokens": 5, "gen_ai.usage.cost": 0}
    )
    assert "cost_usd" not in columns and "cost_source" not in columns


def test_openlit_anthropic_input_excludes_cache() -> None:
    columns, _, _ = normalised(
        {
            "telemetry.sdk.name": "openlit",
            "gen_ai.system": "anthropic",
            "gen_ai.usage.input_tokens": 13,
            "gen_ai.usage.output_tokens": 5,
            "gen_ai.usage.cache_read_input_tokens": 7,
        }
    )
    assert columns["input_tokens"] == 20


def test_openlit_recognised_by_its_resource_sdk_name() -> None:
    processor = normalize.create(normalize.create_default_config())
    row = span_row(
        {
            "gen_ai.system": "anthropic",
            "gen_ai.usage.input_tokens": 100,
            "gen_ai.usage.output_tokens": 5,
            "gen_ai.usage.cache_creation_input_tokens": 30,
        },
        resource_attributes={"service.name": "svc", "telemetry.sdk.name": "openlit"},
    )
    processor.process([row])
    assert row["input_tokens"] == 130


def test_cost_in_another_currency_is_not_stored_as_usd() -> None:
    columns, attrs, counters = normalised(
        {
            "gen_ai.usage.input_tokens": 5,
            "gen_ai.usage.cost.amount": 1.5,
            "gen_ai.usage.cost.currency": "EUR",
        }
    )
    assert "cost_usd" not in columns
    assert attrs["gen_ai.usage.cost.amount"] == 1.5  # kept, not lost
    assert counters["cost_not_usd_dropped"] == 1


def test_wrong_types_are_coerced_or_dropped_and_counted_never_lost() -> None:
    columns, attrs, counters = normalised(
        {
            "gen_ai.usage.input_tokens": "120",  # numeric string -> 120
            "gen_ai.usage.output_tokens": 7.0,  # integral float -> 7
            "gen_ai.usage.cache_read.input_tokens": -3,  # negative -> dropped
            "gen_ai.usage.reasoning.output_tokens": float("nan"),  # NaN -> dropped
            "gen_ai.usage.cache_creation.input_tokens": True,  # bool -> dropped
            "enduser.id": 42,  # number -> "42"
            "session.id": ["a", "b"],  # list -> dropped
            "otel_tokens.usage.estimated": "true",  # -> True
            "gen_ai.request.model": "",  # empty -> dropped
        }
    )
    assert columns == {
        "input_tokens": 120,
        "output_tokens": 7,
        "user_id": "42",
        "usage_estimated": True,
    }
    assert counters["coerced_values"] == 4
    assert counters["dropped_values"] == 5
    # Dropped values stay in attributes (bad input never loses data); coerced ones too, since
    # the column holds a different value than the raw attribute.
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == -3
    assert math.isnan(attrs["gen_ai.usage.reasoning.output_tokens"])
    assert attrs["session.id"] == ["a", "b"]
    assert attrs["gen_ai.usage.input_tokens"] == "120"


def test_capture_content_true_keeps_prompts_and_completions() -> None:
    raw = {
        "gen_ai.operation.name": "chat",
        "gen_ai.input.messages": '[{"role": "user", "parts": []}]',
        "gen_ai.output.messages": "[]",
        "gen_ai.system_instructions": "be brief",
        "gen_ai.prompt.0.content": "hi",
        "traceloop.entity.input": "{}",
    }
    _, kept, counters = normalised(raw, capture_content=True)
    assert {k: kept[k] for k in raw if k != "gen_ai.operation.name"} == {
        k: v for k, v in raw.items() if k != "gen_ai.operation.name"
    }
    assert counters["content_attributes_dropped"] == 0
    _, dropped, counters = normalised(raw, capture_content=False)
    assert dropped == {}
    assert counters["content_attributes_dropped"] == 5


def test_a_span_without_genai_attributes_is_left_exactly_as_it_came() -> None:
    processor = normalize.create(normalize.create_default_config())
    attrs = {
        "http.request.method": "GET",
        "url.path": "/v1/users",
        "http.response.status_code": 200,
    }
    row = span_row(dict(attrs))
    before = dict(row)
    processor.process([row])
    assert row == before
    assert processor.counters()["spans"] == 1 and processor.counters()["genai_spans"] == 0


def test_node_spans_get_their_scope_columns() -> None:
    # node() spans carry no tokens but do carry the scope: the views need them on every span.
    columns, attrs, _ = normalised(
        {"otel_tokens.node": "fact_extraction", "enduser.id": "u1", "otel_tokens.tenant": "acme"}
    )
    assert columns == {"node": "fact_extraction", "user_id": "u1", "tenant": "acme"}
    assert attrs == {}


def test_columns_already_set_are_not_overwritten() -> None:
    processor = normalize.create(normalize.create_default_config())
    row = span_row({"gen_ai.usage.input_tokens": 5, "enduser.id": "u2"}, user_id="u1")
    processor.process([row])
    assert row["user_id"] == "u1" and row["input_tokens"] == 5
    assert row["attributes"] == {"enduser.id": "u2"}


def test_component_interface() -> None:
    module = module_for("processors", "gen_ai_normalize")
    assert module is normalize and normalize.TYPE == "gen_ai_normalize"
    config = module.create_default_config()
    assert config.capture_content is False
    config.validate()
    with pytest.raises(ValueError, match=r"^capture_content: "):
        normalize.Config(capture_content="yes").validate()  # type: ignore[arg-type]


KEYS = [
    *sorted(normalize._INTERESTING),
    "traceloop.association.properties.user_id",
    "traceloop.association.properties.tenant",
    "gen_ai.prompt.0.content",
    "llm.input_messages.0.message.content",
    "http.method",
    "gen_ai.usage.cost.currency",
    "gen_ai.usage.cost.source",
    "telemetry.sdk.name",
]
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["12", " 7 ", "1e3", "-4", "NaN", "inf", "USD", "anthropic", "LLM", "chat"]),
    st.lists(st.integers(), max_size=3),
    st.lists(st.text(max_size=5), max_size=3),
    st.binary(max_size=5),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@settings(max_examples=400, deadline=None)
@given(attrs=st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=20), VALUES, max_size=25))
def test_random_attributes_never_raise_and_columns_have_their_types(
    attrs: dict[str, Any],
) -> None:
    processor = normalize.create(normalize.create_default_config())
    original = dict(attrs)
    [row] = processor.process([span_row(attrs)])
    counters = processor.counters()
    assert counters["span_errors"] == 0
    for column in (
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_creation_tokens",
        "reasoning_tokens",
    ):
        value = row[column]
        assert value is None or (type(value) is int and 0 <= value < 2**63)
    for column in ("provider", "request_model", "user_id", "session_id", "tenant", "node"):
        assert row[column] is None or (type(row[column]) is str and row[column])
    assert row["cost_usd"] is None or (math.isfinite(row["cost_usd"]) and row["cost_usd"] >= 0)
    assert row["usage_estimated"] in (None, True, False)
    # Nothing disappears except content and standard values now held by a column.
    for key in original:
        if key not in row["attributes"]:
            assert (
                key in normalize._STANDARD
                or key.startswith(("gen_ai.usage.cost.", *normalize._CONTENT_PREFIXES))
                or key in normalize._CONTENT_KEYS
            ), key
    if (
        row["input_tokens"] is not None
        and row["cache_read_tokens"] is not None
        and row["cache_creation_tokens"] is not None
    ):
        assert row["input_tokens"] >= row["cache_read_tokens"] + row["cache_creation_tokens"]


@pytest.mark.parametrize("remembered", [True, False])
def test_attribute_names_are_classified_the_same_once_too_many_were_seen(
    monkeypatch: pytest.MonkeyPatch, remembered: bool
) -> None:
    """Names are remembered up to a limit (a sender making up names must not grow memory);
    past it they are classified each time, with the same result."""
    if not remembered:
        monkeypatch.setattr(normalize, "_MAX_ACTIONS", 0)
    raw = {
        "gen_ai.usage.input_tokens": 10,
        "traceloop.association.properties.user_id": "u-new",
        "gen_ai.prompt.0.content": "hi",
        "llm.input_messages.0.message.content": "hi",
        f"made.up.name.{remembered}": "x",  # a name no other test has shown the processor
    }
    for _ in range(2):  # the second pass reads what the first remembered
        row, kept, counters = normalised(dict(raw))
        assert row["input_tokens"] == 10 and row["user_id"] == "u-new"
        assert kept == {
            "traceloop.association.properties.user_id": "u-new",
            f"made.up.name.{remembered}": "x",
        }
        assert counters["content_attributes_dropped"] == 2
    assert (f"made.up.name.{remembered}" in normalize._ACTIONS) is remembered
