"""Processor ``gen_ai_normalize``: every GenAI attribute convention → the typed span columns.

Reads our own / current OpenTelemetry GenAI semconv, the old semconv, OpenLLMetry, OpenInference
and OpenLIT (SPEC §2) and fills ``operation``, ``provider``, models, token counts (input inclusive
of cache, output inclusive of reasoning), provider-reported cost, ``usage_estimated``,
``pricing_ref``, ``node``, user / tenant / session / conversation / correlation id and job type.

What lands in a column under its current standard name is removed from ``attributes`` (the column
is the one place for that fact, which keeps rows small); foreign-convention attributes are kept
as they came. Prompt and completion content is dropped unless ``capture_content: true``. Values
of the wrong type are coerced (``"12"`` → 12) or dropped (``-3``, ``NaN``, ``true``, lists), and
counted; a span never makes this processor raise.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from otel_tokens import attributes as A

TYPE = "gen_ai_normalize"

_MAX_INT64 = 2**63 - 1
_MAX_TEXT = 4096  # longer ids / names are garbage for grouping; dropped rather than stored


@dataclass
class Config:
    capture_content: bool = False

    def validate(self) -> None:
        if not isinstance(self.capture_content, bool):
            raise ValueError("capture_content: must be true or false")


def create_default_config() -> Config:
    return Config()


# --- value coercion ---------------------------------------------------------------------------
# Each coercer returns (value, state): state 0 = taken as it is, 1 = coerced, 2 = dropped.
_OK, _COERCED, _DROPPED = 0, 1, 2


def _count(value: Any) -> tuple[int | None, int]:
    """A token count: a non-negative int64."""
    kind = type(value)
    if kind is int:
        return (value, _OK) if 0 <= value <= _MAX_INT64 else (None, _DROPPED)
    if kind is float:
        if math.isfinite(value) and value >= 0 and value.is_integer() and value <= _MAX_INT64:
            return int(value), _COERCED
        return None, _DROPPED
    if kind is str:
        text = value.strip()
        if text.isdigit():  # ASCII check below keeps "١٢" (Arabic digits) out
            if text.isascii() and len(text) < 19:
                return int(text), _COERCED
            return None, _DROPPED
        try:
            number = float(text)
        except ValueError:
            return None, _DROPPED
        if math.isfinite(number) and number >= 0 and number.is_integer() and number <= _MAX_INT64:
            return int(number), _COERCED
    return None, _DROPPED  # bool, list, bytes, None, negative, fractional, NaN


def _text(value: Any) -> tuple[str | None, int]:
    """An id / name: a non-empty string; numbers become their decimal text."""
    kind = type(value)
    if kind is str:
        if value and len(value) <= _MAX_TEXT:
            return value, _OK
        return None, _DROPPED
    if kind is int:
        return str(value), _COERCED
    if kind is float and math.isfinite(value):
        return (str(int(value)) if value.is_integer() else repr(value)), _COERCED
    return None, _DROPPED


def _usd(value: Any) -> tuple[float | None, int]:
    """An amount of money: a finite, non-negative number."""
    kind = type(value)
    if kind is float or kind is int:
        if math.isfinite(value) and value >= 0:
            return float(value), (_OK if kind is float else _COERCED)
        return None, _DROPPED
    if kind is str:
        try:
            number = float(value.strip())
        except ValueError:
            return None, _DROPPED
        if math.isfinite(number) and number >= 0:
            return number, _COERCED
    return None, _DROPPED


_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})


def _flag(value: Any) -> tuple[bool | None, int]:
    kind = type(value)
    if kind is bool:
        return value, _OK
    if kind is str:
        text = value.strip().lower()
        if text in _TRUE:
            return True, _COERCED
        if text in _FALSE:
            return False, _COERCED
    elif kind is int and value in (0, 1):
        return bool(value), _COERCED
    return None, _DROPPED


# --- value mapping for provider / operation ---------------------------------------------------
# Old semconv ``gen_ai.system`` and OpenInference ``llm.provider`` / ``llm.system`` values →
# ``gen_ai.provider.name`` values. Unknown values pass through lower-cased.
_PROVIDER_VALUES = {
    "vertex_ai": "gcp.vertex_ai",
    "vertexai": "gcp.vertex_ai",
    "gemini": "gcp.gemini",
    "google": "gcp.gen_ai",
    "az.ai.openai": "azure.ai.openai",
    "azure_openai": "azure.ai.openai",
    "azure": "azure.ai.openai",
    "az.ai.inference": "azure.ai.inference",
    "aws": "aws.bedrock",
    "bedrock": "aws.bedrock",
    "aws_bedrock": "aws.bedrock",
    "mistralai": "mistral_ai",
    "mistral": "mistral_ai",
    "xai": "x_ai",
    "watsonx": "ibm.watsonx.ai",
    "ibm": "ibm.watsonx.ai",
}


def _provider(value: Any) -> tuple[str | None, int]:
    text, state = _text(value)
    if text is None:
        return None, state
    low = text.strip().lower()
    mapped = _PROVIDER_VALUES.get(low, low)
    return mapped, (state if mapped == text else _COERCED)


# OpenLLMetry ``llm.request.type`` and OpenInference ``openinference.span.kind`` → operation.
_OPERATION_VALUES = {
    "chat": "chat",
    "completion": "text_completion",
    "embedding": "embeddings",
    "LLM": "chat",
    "EMBEDDING": "embeddings",
}


def _operation(value: Any) -> tuple[str | None, int]:
    if type(value) is str and value in _OPERATION_VALUES:
        return _OPERATION_VALUES[value], _COERCED
    return None, _OK  # a span kind like CHAIN / TOOL: not an LLM operation, nothing to count


# --- where each column is read from, best source first ----------------------------------------
OPENLLMETRY_REQUEST_TYPE = A.OPENLLMETRY_REQUEST_TYPE
OPENINFERENCE_SPAN_KIND = A.OPENINFERENCE_SPAN_KIND
OPENINFERENCE_COST_TOTAL = A.OPENINFERENCE_COST_TOTAL
TELEMETRY_SDK_NAME = A.TELEMETRY_SDK_NAME

Coercer = Callable[[Any], tuple[Any, int]]

# (column, coercer, candidate keys in priority order). A key in _STANDARD is the column's own
# current name: removed from ``attributes`` once its value is in the column.
_COLUMNS: tuple[tuple[str, Coercer, tuple[str, ...]], ...] = (
    (
        "operation",
        _text,
        (A.GEN_AI_OPERATION_NAME,),
    ),
    ("provider", _text, (A.GEN_AI_PROVIDER_NAME,)),
    (
        "provider",
        _provider,
        (A.OLD_GEN_AI_SYSTEM, A.OPENINFERENCE_PROVIDER, A.OPENINFERENCE_SYSTEM),
    ),
    ("request_model", _text, (A.GEN_AI_REQUEST_MODEL, A.OPENINFERENCE_MODEL_NAME)),
    ("response_model", _text, (A.GEN_AI_RESPONSE_MODEL, A.OPENINFERENCE_MODEL_NAME)),
    (
        "input_tokens",
        _count,
        (
            A.GEN_AI_USAGE_INPUT_TOKENS,
            A.OLD_GEN_AI_USAGE_PROMPT_TOKENS,
            A.OPENINFERENCE_PROMPT_TOKENS,
        ),
    ),
    (
        "output_tokens",
        _count,
        (
            A.GEN_AI_USAGE_OUTPUT_TOKENS,
            A.OLD_GEN_AI_USAGE_COMPLETION_TOKENS,
            A.OPENINFERENCE_COMPLETION_TOKENS,
        ),
    ),
    (
        "cache_read_tokens",
        _count,
        (
            A.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
            A.OPENLLMETRY_CACHE_READ_INPUT_TOKENS,
            A.OPENINFERENCE_CACHE_READ,
        ),
    ),
    (
        "cache_creation_tokens",
        _count,
        (
            A.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
            A.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS,
            A.OPENLLMETRY_CACHE_CREATION_INPUT_TOKENS,
            A.OPENINFERENCE_CACHE_WRITE,
        ),
    ),
    (
        "reasoning_tokens",
        _count,
        (
            A.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
            A.OPENLLMETRY_REASONING_TOKENS,
            A.OPENINFERENCE_REASONING,
        ),
    ),
    ("usage_estimated", _flag, (A.OTEL_TOKENS_USAGE_ESTIMATED,)),
    ("pricing_ref", _text, (A.OTEL_TOKENS_PRICING_REF,)),
    ("node", _text, (A.OTEL_TOKENS_NODE,)),
    ("user_id", _text, (A.ENDUSER_ID, A.OPENLIT_USER_ID, A.OPENINFERENCE_USER_ID)),
    ("tenant", _text, (A.OTEL_TOKENS_TENANT,)),
    ("session_id", _text, (A.SESSION_ID, A.OPENLIT_SESSION_ID)),
    ("conversation_id", _text, (A.GEN_AI_CONVERSATION_ID,)),
    ("correlation_id", _text, (A.OTEL_TOKENS_CORRELATION_ID,)),
    ("job_type", _text, (A.OTEL_TOKENS_JOB_TYPE,)),
)

# The SPEC §2 names whose value, once in a column, is not kept twice.
_STANDARD = frozenset(
    {
        A.GEN_AI_OPERATION_NAME,
        A.GEN_AI_PROVIDER_NAME,
        A.GEN_AI_REQUEST_MODEL,
        A.GEN_AI_RESPONSE_MODEL,
        A.GEN_AI_USAGE_INPUT_TOKENS,
        A.GEN_AI_USAGE_OUTPUT_TOKENS,
        A.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
        A.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
        A.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS,
        A.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
        A.GEN_AI_CONVERSATION_ID,
        A.ENDUSER_ID,
        A.SESSION_ID,
        A.OTEL_TOKENS_NODE,
        A.OTEL_TOKENS_CORRELATION_ID,
        A.OTEL_TOKENS_TENANT,
        A.OTEL_TOKENS_JOB_TYPE,
        A.OTEL_TOKENS_USAGE_ESTIMATED,
        A.OTEL_TOKENS_PRICING_REF,
    }
)

# traceloop.association.properties.<key> → column (OpenLLMetry's way of attaching ids).
_ASSOCIATION_COLUMNS = {
    "user_id": "user_id",
    "userid": "user_id",
    "user": "user_id",
    "enduser_id": "user_id",
    "session_id": "session_id",
    "sessionid": "session_id",
    "conversation_id": "conversation_id",
    "thread_id": "conversation_id",
    "chat_id": "conversation_id",
    "correlation_id": "correlation_id",
    "request_id": "correlation_id",
    "tenant": "tenant",
    "tenant_id": "tenant",
    "organization_id": "tenant",
    "org_id": "tenant",
    "customer_id": "tenant",
    "job_type": "job_type",
    "node": "node",
}
_ASSOCIATION_PREFIX_LEN = len(A.TRACELOOP_ASSOCIATION_PREFIX)

# Prompt / completion content (dropped unless capture_content). Exact names and name prefixes.
_CONTENT_KEYS = frozenset(
    {
        A.GEN_AI_INPUT_MESSAGES,
        A.GEN_AI_OUTPUT_MESSAGES,
        A.GEN_AI_SYSTEM_INSTRUCTIONS,
        "gen_ai.prompt",
        "gen_ai.completion",
        "gen_ai.content.prompt",
        "gen_ai.content.completion",
        "gen_ai.tool.call.arguments",
        "gen_ai.tool.call.result",
        "input.value",
        "output.value",
        "llm.prompts",
        "llm.prompt_template.variables",
        "traceloop.entity.input",
        "traceloop.entity.output",
    }
)
_CONTENT_PREFIXES = (
    "gen_ai.prompt.",
    "gen_ai.completion.",
    "llm.input_messages.",
    "llm.output_messages.",
    "llm.prompts.",
    "embedding.embeddings.",
    "retrieval.documents.",
    "reranker.input_documents.",
    "reranker.output_documents.",
)
_PREFIXES = (A.TRACELOOP_ASSOCIATION_PREFIX, *_CONTENT_PREFIXES)

# Any of these on a span means it is worth a closer look; a span with none (HTTP, DB, ...) is
# passed through after one C-level set check.
_INTERESTING = frozenset(
    {key for _, _, keys in _COLUMNS for key in keys}
    | _CONTENT_KEYS
    | {
        A.GEN_AI_USAGE_COST_AMOUNT,
        A.OPENLIT_COST,
        OPENINFERENCE_COST_TOTAL,
        A.OPENLLMETRY_TOTAL_TOKENS,
        A.OPENINFERENCE_TOTAL_TOKENS,
        OPENLLMETRY_REQUEST_TYPE,
        OPENINFERENCE_SPAN_KIND,
        A.TRACELOOP_ENTITY_NAME,
        A.OPENINFERENCE_GRAPH_NODE_NAME,
        A.GEN_AI_AGENT_NAME,
        "traceloop.span.kind",
        "traceloop.workflow.name",
    }
)


# Markers in _KEY_INFO for attributes read after the pass (bit flags, so the pass can note them).
_CONTENT, _COST, _TOTAL, _OPERATION = 1, 2, 4, 8


def _key_info() -> dict[str, Any]:
    """attribute name -> ((column, rank, coercer), ...) or a marker; rank orders sources."""
    info: dict[str, list[tuple[str, int, Coercer]]] = {}
    ranks: dict[str, int] = {}
    for column, coerce, keys in _COLUMNS:
        for key in keys:
            rank = ranks.get(column, 0)
            ranks[column] = rank + 1
            info.setdefault(key, []).append((column, rank, coerce))
    table: dict[str, Any] = {key: tuple(entries) for key, entries in info.items()}
    for key in _CONTENT_KEYS:
        table[key] = _CONTENT
    for key in (A.GEN_AI_USAGE_COST_AMOUNT, A.OPENLIT_COST, OPENINFERENCE_COST_TOTAL):
        table[key] = _COST
    for key in (A.OPENLLMETRY_TOTAL_TOKENS, A.OPENINFERENCE_TOTAL_TOKENS):
        table[key] = _TOTAL
    for key in (OPENLLMETRY_REQUEST_TYPE, OPENINFERENCE_SPAN_KIND):
        table[key] = _OPERATION
    return table


_KEY_INFO = _key_info()
# column -> its sources in rank order, for when the best-ranked value is unusable
_CANDIDATES: dict[str, list[tuple[int, str, Coercer]]] = {}
for _key, _entries in _KEY_INFO.items():
    if type(_entries) is tuple:
        for _column, _rank, _coerce in _entries:
            _CANDIDATES.setdefault(_column, []).append((_rank, _key, _coerce))
for _list in _CANDIDATES.values():
    _list.sort(key=lambda entry: entry[0])


_KINDS = {_count: int, _text: str, _flag: bool}

# What the per-span pass does with an attribute, by name, found with one dict lookup.
#  - a tuple ``(column, python type, sources)``: a column source. ``column`` is set for a
#    standard name whose value, when of that type, goes straight to the column (``None``
#    otherwise); ``sources`` are its ((column, rank, coercer), ...) entries.
#  - an int: kept as it is (_PLAIN), a marker bit (_CONTENT .. _OPERATION), an OpenLLMetry
#    association property (_ASSOCIATION) or content under a content prefix (_CONTENT_PREFIXED).
_PLAIN, _ASSOCIATION, _CONTENT_PREFIXED = 0, 16, 32


def _actions() -> dict[str, Any]:
    fast = {
        key: (column, _KINDS[coerce])
        for column, coerce, keys in _COLUMNS
        for key in keys
        if key in _STANDARD and coerce in _KINDS
    }
    table: dict[str, Any] = {}
    for key, info in _KEY_INFO.items():
        if type(info) is tuple:
            column, kind = fast.get(key, (None, None))
            table[key] = (column, kind, info)
        else:
            table[key] = info
    return table


_ACTIONS = _actions()
# Other attribute names are classified by their prefix when first seen, and remembered in
# _ACTIONS up to this many entries (past it, a sender making up names: classified every time).
_MAX_ACTIONS = len(_ACTIONS) + 100_000


def _action_of(key: str) -> int:
    """How to treat an attribute that is no column source nor marker: by its name's prefix."""
    if key.startswith(_PREFIXES):
        action = (
            _ASSOCIATION if key.startswith(A.TRACELOOP_ASSOCIATION_PREFIX) else _CONTENT_PREFIXED
        )
    else:
        action = _PLAIN
    if len(_ACTIONS) < _MAX_ACTIONS:
        _ACTIONS[key] = action
    return action


def _next_candidate(
    column: str, tried_rank: int, attrs: dict[str, Any], counts: dict[str, int]
) -> tuple[Any, str, int]:
    """The best usable value for ``column`` among its sources ranked after ``tried_rank``."""
    for rank, key, coerce in _CANDIDATES[column]:
        if rank <= tried_rank:
            continue
        raw = attrs.get(key)
        if raw is None:
            continue
        value, state = coerce(raw)
        if state == _COERCED:
            counts["coerced_values"] += 1
        elif state == _DROPPED:
            counts["dropped_values"] += 1
        if value is not None:
            return value, key, state
    return None, "", _DROPPED


class Normalizer:
    """The ``gen_ai_normalize`` processor (thread-safe; counters are summed per batch)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._counters = {
            "spans": 0,
            "genai_spans": 0,
            "coerced_values": 0,
            "dropped_values": 0,
            "content_attributes_dropped": 0,
            "cache_exclusive_input_normalised": 0,
            "reasoning_exclusive_output_normalised": 0,
            "cost_not_usd_dropped": 0,
            "span_errors": 0,
        }

    def process(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        counts = dict.fromkeys(self._counters, 0)
        counts["spans"] = len(rows)
        interesting = _INTERESTING
        normalise = self._normalise
        genai = 0
        for row in rows:
            attrs = row.get("attributes")
            if not attrs or interesting.isdisjoint(attrs):
                continue
            try:
                if normalise(row, attrs, counts):
                    genai += 1
            except Exception:  # never lose a span to a bug here: store it as it came
                genai += 1
                counts["span_errors"] += 1
        counts["genai_spans"] += genai
        with self._lock:
            for key, value in counts.items():
                self._counters[key] += value
        return rows

    def counters(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counters)

    # -- one span --------------------------------------------------------------------------------
    def _normalise(
        self, row: dict[str, Any], attrs: dict[str, Any], counts: dict[str, int]
    ) -> bool:
        """Normalise one span; False when its attributes are not a dict (left as they are)."""
        if not isinstance(attrs, dict):
            return False
        # One pass over the span's own attributes (a dozen or two), building the attributes that
        # stay. A standard attribute of the right type goes straight to its column and is not
        # kept; anything else keeps the best-ranked candidate per column, coerced afterwards.
        kept: dict[str, Any] = {}
        best: dict[str, tuple[int, str, Any, Coercer]] | None = None
        associations: list[tuple[str, Any]] | None = None
        markers = dropped = 0
        capture = self.config.capture_content
        action_for = _ACTIONS.get
        for key, raw in attrs.items():
            action: Any = action_for(key)
            if action is None:
                action = _action_of(key)
            if type(action) is int:
                if action == _PLAIN:
                    kept[key] = raw
                elif action == _ASSOCIATION:
                    if associations is None:
                        associations = []
                    associations.append((key, raw))
                    kept[key] = raw
                elif action == _CONTENT_PREFIXED:
                    if capture:
                        kept[key] = raw
                    else:
                        dropped += 1
                else:
                    markers |= action
                    if action == _CONTENT and not capture:
                        dropped += 1
                    else:
                        kept[key] = raw
                continue
            column, kind, info = action
            if type(raw) is kind and row.get(column) is None:  # kind None: no fast path
                if kind is str:
                    if raw and len(raw) <= _MAX_TEXT:
                        row[column] = raw
                        continue
                elif kind is bool or 0 <= raw <= _MAX_INT64:
                    row[column] = raw
                    continue
            if best is None:
                best = {}
            for column, rank, coerce in info:
                current = best.get(column)
                if current is None or rank < current[0]:
                    best[column] = (rank, key, raw, coerce)
            kept[key] = raw

        for column, (rank, key, raw, coerce) in best.items() if best else ():
            if row.get(column) is not None:
                continue
            value, state = coerce(raw)
            if state == _COERCED:
                counts["coerced_values"] += 1
            elif state == _DROPPED:
                counts["dropped_values"] += 1
                value, key, state = _next_candidate(column, rank, attrs, counts)
            if value is None:
                continue
            row[column] = value
            if state == _OK and key in _STANDARD:
                kept.pop(key, None)

        if markers & _OPERATION and row.get("operation") is None:
            for key in (OPENLLMETRY_REQUEST_TYPE, OPENINFERENCE_SPAN_KIND):
                raw = attrs.get(key)
                if raw is not None:
                    row["operation"], _ = _operation(raw)
                    if row["operation"] is not None:
                        break

        # OpenLLMetry association properties: the ids it attaches to every span of a workflow.
        for key, raw in associations or ():
            target = _ASSOCIATION_COLUMNS.get(key[_ASSOCIATION_PREFIX_LEN:].lower())
            if target is not None and row.get(target) is None:
                value, state = _text(raw)
                if state == _COERCED:
                    counts["coerced_values"] += 1
                elif state == _DROPPED:
                    counts["dropped_values"] += 1
                if value is not None:
                    row[target] = value
        if dropped:
            counts["content_attributes_dropped"] += dropped

        if row.get("input_tokens") is not None or row.get("output_tokens") is not None:
            self._tokens(row, attrs, kept, counts, markers & _TOTAL)
        if markers & _COST:
            self._cost(row, attrs, kept, counts)
        row["attributes"] = kept
        return True

    def _tokens(
        self,
        row: dict[str, Any],
        attrs: dict[str, Any],
        kept: dict[str, Any],
        counts: dict[str, int],
        has_total: int,
    ) -> None:
        """Make input inclusive of cache and output inclusive of reasoning (SPEC §2)."""
        inp = row.get("input_tokens")
        out = row.get("output_tokens")
        if inp is None and out is None:
            return
        cache = (row.get("cache_read_tokens") or 0) + (row.get("cache_creation_tokens") or 0)
        reasoning = row.get("reasoning_tokens") or 0
        total = None
        if has_total:
            for key in (A.OPENLLMETRY_TOTAL_TOKENS, A.OPENINFERENCE_TOTAL_TOKENS):
                raw = attrs.get(key)
                if raw is not None:
                    total, _ = _count(raw)
                    if total is not None:
                        break
        elif not cache and not reasoning:
            return  # nothing to reconcile

        input_exclusive = False
        output_exclusive = False
        if inp is not None and out is not None and total is not None and total != inp + out:
            # A reported total that only adds up with cache / reasoning added tells us the parts
            # were counted without them (Gemini: totalTokenCount = prompt + candidates +
            # thoughts, and candidates exclude thoughts).
            if reasoning and total == inp + out + reasoning:
                output_exclusive = True
            elif cache and total == inp + out + cache:
                input_exclusive = True
            elif cache and reasoning and total == inp + out + cache + reasoning:
                input_exclusive = output_exclusive = True
        # An inclusive count can never be below its cached part; some instrumentations are known
        # to record Anthropic's cache-exclusive input.
        if (
            inp is not None
            and cache
            and (
                inp < cache
                or _counts_anthropic_input_without_cache(attrs, row.get("resource_attributes"))
            )
        ):
            input_exclusive = True
        if out is not None and reasoning and out < reasoning:
            output_exclusive = True

        if input_exclusive and inp is not None:
            row["input_tokens"] = inp + cache
            counts["cache_exclusive_input_normalised"] += 1
            _keep_raw(kept, attrs, _source("input_tokens", attrs))
        if output_exclusive and out is not None:
            row["output_tokens"] = out + reasoning
            counts["reasoning_exclusive_output_normalised"] += 1
            _keep_raw(kept, attrs, _source("output_tokens", attrs))
        if (
            row.get("output_tokens") is None
            and total is not None
            and inp is not None
            and total >= inp
            and row.get("operation") != "embeddings"
        ):
            row["output_tokens"] = total - inp  # only prompt and total were reported

    def _cost(
        self,
        row: dict[str, Any],
        attrs: dict[str, Any],
        kept: dict[str, Any],
        counts: dict[str, int],
    ) -> None:
        """Cost reported with the span: ours / semconv #443, else OpenLIT's or OpenInference's."""
        if row.get("cost_usd") is not None:
            return
        raw = attrs.get(A.GEN_AI_USAGE_COST_AMOUNT)
        if raw is not None:
            amount, state = _usd(raw)
            currency = attrs.get(A.GEN_AI_USAGE_COST_CURRENCY, "USD")
            if amount is not None and isinstance(currency, str) and currency.upper() == "USD":
                cost_source = attrs.get(A.GEN_AI_USAGE_COST_SOURCE)
                if cost_source not in (A.COST_SOURCE_LOCAL, A.COST_SOURCE_PROVIDER):
                    cost_source = A.COST_SOURCE_PROVIDER  # reported by whoever sent the span
                row["cost_usd"] = amount
                row["cost_source"] = cost_source
                if state == _OK:
                    for key in (
                        A.GEN_AI_USAGE_COST_AMOUNT,
                        A.GEN_AI_USAGE_COST_CURRENCY,
                        A.GEN_AI_USAGE_COST_SOURCE,
                    ):
                        kept.pop(key, None)
                elif state == _COERCED:
                    counts["coerced_values"] += 1
                return
            if amount is None:
                counts["dropped_values"] += 1
            else:
                counts["cost_not_usd_dropped"] += 1
        for key, ref in ((A.OPENLIT_COST, "openlit"), (OPENINFERENCE_COST_TOTAL, "openinference")):
            raw = attrs.get(key)
            if raw is None:
                continue
            amount, state = _usd(raw)
            if state == _COERCED:
                counts["coerced_values"] += 1
            elif state == _DROPPED:
                counts["dropped_values"] += 1
            # OpenLIT writes 0 for models missing from its own price list: that is "unknown",
            # not "free", so leave it to gen_ai_cost rather than store a false $0.
            if amount:
                row["cost_usd"] = amount
                row["cost_source"] = A.COST_SOURCE_PROVIDER
                if row.get("pricing_ref") is None:
                    row["pricing_ref"] = ref
                return


def _counts_anthropic_input_without_cache(attrs: dict[str, Any], resource: Any = None) -> bool:
    """Instrumentations known to record Anthropic's own ``usage.input_tokens`` (which excludes
    cache reads and writes) as the span's whole input:

    - OpenInference: ``openinference-instrumentation-anthropic`` yields
      ``llm.token_count.prompt = usage.input_tokens`` (Arize-ai/openinference,
      python/instrumentation/openinference-instrumentation-anthropic/.../_wrappers.py,
      ``_get_llm_token_counts``), and the Bedrock instrumentor does the same for Claude.
      OpenInference's own spec treats ``prompt_details.cache_*`` as parts of the prompt
      (its Strands processor asserts "prompt aggregate includes cached tokens"), which is why
      only the Anthropic provider is corrected.
    - OpenLIT: ``gen_ai.usage.input_tokens = usage.input_tokens`` for Anthropic
      (openlit/openlit, sdk/python/src/openlit/instrumentation/anthropic/utils.py).

    OpenLLMetry already adds the cache counts (traceloop/openllmetry,
    opentelemetry-instrumentation-anthropic ``_set_token_usage``: ``input_tokens = prompt_tokens
    + cache_read_tokens + cache_creation_tokens``), as do we and the current semconv.
    """
    sdk = attrs.get(TELEMETRY_SDK_NAME)
    if sdk is None and isinstance(resource, dict):
        sdk = resource.get(TELEMETRY_SDK_NAME)  # where OpenLIT's SDK normally says so
    if sdk != "openlit" and A.OPENINFERENCE_PROMPT_TOKENS not in attrs:
        return False  # neither case can apply: skip finding which attribute gave the input
    input_key = _source("input_tokens", attrs)
    if input_key == A.OPENINFERENCE_PROMPT_TOKENS:
        for key in (A.OPENINFERENCE_PROVIDER, A.OPENINFERENCE_SYSTEM):
            value = attrs.get(key)
            if isinstance(value, str) and value.lower() == "anthropic":
                return True
        return False
    if input_key == A.GEN_AI_USAGE_INPUT_TOKENS and sdk == "openlit":
        system = attrs.get(A.OLD_GEN_AI_SYSTEM) or attrs.get(A.GEN_AI_PROVIDER_NAME)
        return isinstance(system, str) and system.lower() == "anthropic"
    return False


def _source(column: str, attrs: dict[str, Any]) -> str | None:
    """Which attribute filled ``column``: its best-ranked source with a usable value."""
    for _rank, key, coerce in _CANDIDATES[column]:
        raw = attrs.get(key)
        if raw is not None and coerce(raw)[0] is not None:
            return key
    return None


def _keep_raw(kept: dict[str, Any], attrs: dict[str, Any], key: str | None) -> None:
    """The column now differs from the raw attribute: keep the raw one for the record."""
    if key is not None and key in attrs:
        kept[key] = attrs[key]


def create(config: Config) -> Normalizer:
    return Normalizer(config)
