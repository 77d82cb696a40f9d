"""Processor ``gen_ai_cost``: prices LLM spans that arrive without a cost, and resolves their node.

Runs after ``gen_ai_normalize``. A span that already carries a cost (reported by the provider, by
the sending instrumentation, or computed by the otel-tokens plugin) keeps it. Otherwise the cost
is computed from the span's token columns with the plugin's price book (genai-prices plus
overrides) at the price valid when the span started; a model without a known price gets no cost
(NULL, never 0), so it shows up in ``unpriced_models``. The ``node`` column, when empty, takes
the first attribute of ``node_attributes`` that the span has.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from otel_tokens import attributes as A
from otel_tokens.pricing import PriceBook, default_price_book, load_overrides
from otel_tokens.usage import Usage

TYPE = "gen_ai_cost"

# semconv: the service tier OpenAI actually used; selects genai-prices' price variant.
_SERVICE_TIER_KEYS = (A.OPENAI_RESPONSE_SERVICE_TIER, "gen_ai.openai.response.service_tier")


@dataclass
class Config:
    #: ``{model: {input, output, cache_read, cache_write, provider}}``, USD per million tokens;
    #: wins over ``prices_file``, which wins over the catalogue.
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    prices_file: str | None = None  # YAML / JSON overrides file (same format)
    node_attributes: list[str] = field(default_factory=lambda: list(A.DEFAULT_NODE_ATTRIBUTES))

    def validate(self) -> None:
        if not isinstance(self.overrides, Mapping):
            raise ValueError("overrides: must map model names to prices")
        try:
            PriceBook(self.overrides)
        except ValueError as exc:
            raise ValueError(f"overrides.{exc}") from None
        if self.prices_file is not None and self.prices_file != "":  # "" = ${env:X:-} unset
            if not isinstance(self.prices_file, str):
                raise ValueError("prices_file: must be a file path")
            try:
                load_overrides(self.prices_file)
            except OSError as exc:
                raise ValueError(f"prices_file: cannot read {self.prices_file}: {exc}") from None
            except Exception as exc:  # ValueError naming the model, or a YAML syntax error
                one_line = " ".join(str(exc).split())
                raise ValueError(f"prices_file: {self.prices_file}: {one_line}") from None
        if not isinstance(self.node_attributes, list) or not all(
            isinstance(name, str) and name for name in self.node_attributes
        ):
            raise ValueError("node_attributes: must be a list of attribute names")


def create_default_config() -> Config:
    return Config()


class CostProcessor:
    """The ``gen_ai_cost`` processor (thread-safe; counters are summed per batch)."""

    def __init__(self, config: Config, book: PriceBook | None = None) -> None:
        self.config = config
        if book is None:
            if config.overrides or config.prices_file:
                merged: dict[str, dict[str, Any]] = {}
                if config.prices_file:
                    merged.update(load_overrides(config.prices_file))
                merged.update(config.overrides)
                book = PriceBook(merged)
            else:
                book = default_price_book()  # honours OTEL_TOKENS_PRICES, like the plugin
        self.book = book
        self._node_attributes = tuple(config.node_attributes)
        self._node_attribute_set = frozenset(self._node_attributes)
        self._lock = threading.Lock()
        self._counters = {
            "spans": 0,
            "priced_local": 0,
            "cost_kept": 0,
            "unpriced": 0,
            "node_resolved": 0,
            "span_errors": 0,
        }

    def process(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        counts = dict.fromkeys(self._counters, 0)
        counts["spans"] = len(rows)
        node_keys = self._node_attributes
        node_key_set = self._node_attribute_set
        for row in rows:
            try:
                if row.get("node") is None:
                    attrs = row.get("attributes")
                    # One C-level set check answers the common case: no node attribute at all.
                    if attrs and not node_key_set.isdisjoint(attrs):
                        for key in node_keys:
                            value = attrs.get(key)
                            if type(value) is str and value:
                                row["node"] = value
                                counts["node_resolved"] += 1
                                break
                if row.get("input_tokens") is None and row.get("output_tokens") is None:
                    continue  # not an LLM call (or no usage known): nothing to price
                if row.get("cost_usd") is not None:
                    counts["cost_kept"] += 1
                    continue
                if self._price(row):
                    counts["priced_local"] += 1
                else:
                    counts["unpriced"] += 1
            except Exception:  # a bad row keeps its values; it must not stop the batch
                counts["span_errors"] += 1
        with self._lock:
            for key, value in counts.items():
                self._counters[key] += value
        return rows

    def counters(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counters)

    def _price(self, row: dict[str, Any]) -> bool:
        get = row.get
        # normalize made the counts ints; anything else (a processor before us) counts as unknown
        inp = get("input_tokens")
        out = get("output_tokens")
        cache_read = get("cache_read_tokens")
        cache_creation = get("cache_creation_tokens")
        reasoning = get("reasoning_tokens")
        usage = Usage(
            inp if type(inp) is int and inp >= 0 else None,
            out if type(out) is int and out >= 0 else None,
            cache_read if type(cache_read) is int and cache_read >= 0 else None,
            cache_creation if type(cache_creation) is int and cache_creation >= 0 else None,
            reasoning if type(reasoning) is int and reasoning >= 0 else None,
        )
        provider = get("provider")
        if type(provider) is not str:
            provider = None
        at = _when(get("start_time"))
        tier = None
        attrs = get("attributes")
        if attrs:
            for key in _SERVICE_TIER_KEYS:
                value = attrs.get(key)
                if type(value) is str and value:
                    tier = value
                    break
        # The response model names the exact snapshot that answered; the request model is the
        # fallback (and what an override for an alias like "gpt-4o" is usually written for).
        response_model = get("response_model")
        request_model = get("request_model")
        for model in (response_model, request_model):
            if type(model) is not str or not model:
                continue
            found = self.book.cost(usage, model, provider, at, service_tier=tier)
            if found is not None:
                row["cost_usd"] = found.amount
                row["cost_source"] = A.COST_SOURCE_LOCAL
                row["pricing_ref"] = found.ref  # the cost is ours, so is the ref
                return True
            if model == request_model:
                break
        return False


def _when(start_time: Any) -> datetime | None:
    """The span's start (unix nanoseconds) as the request time; None → now."""
    if type(start_time) is int and start_time > 0:
        try:
            return datetime.fromtimestamp(start_time / 1e9, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    return None


def create(config: Config) -> CostProcessor:
    return CostProcessor(config)
