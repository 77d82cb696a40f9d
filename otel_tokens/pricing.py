"""The price of an LLM call: the genai-prices catalogue plus overrides, behind one cached lookup.

Prices are resolved once per (provider, model, price context) and kept as plain floats, so pricing a
call is a dictionary hit and a few multiplications instead of genai-prices' ~90 µs walk over its
catalogue. Only the data bundled with the pinned genai-prices release is used: nothing is fetched
at run time (genai-prices' ``UpdatePrices`` is never started, and a snapshot another library
installed process-wide is ignored, so the ``ref`` always names what was really used).

Token semantics match genai-prices' own: ``input_tokens`` is all input *including* cache reads and
writes, ``output_tokens`` includes reasoning; a cache read/write or reasoning price, when the model
has one, replaces the input/output price for that part (so cached tokens are never charged twice),
and when it has none, that part is charged at the plain input/output price.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import re
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from otel_tokens.usage import Usage

if TYPE_CHECKING:
    from genai_prices.data_snapshot import DataSnapshot
    from genai_prices.types import ModelInfo, ModelPrice, Provider

__all__ = [
    "Cost",
    "PriceBook",
    "PriceInfo",
    "TierInfo",
    "catalogue_ref",
    "default_price_book",
    "load_overrides",
    "provider_id_for",
]

logger = logging.getLogger(__name__)

PRICES_ENV = "OTEL_TOKENS_PRICES"
_PER_MILLION = 1_000_000.0
_MAX_CACHE_ENTRIES = 50_000  # a safety valve: keys grow with (model, day); cleared when exceeded

# gen_ai.provider.name (and old gen_ai.system) values -> genai-prices provider ids. Values not
# listed are tried as a genai-prices id as they are, then the model alone decides (genai-prices'
# model matching), so an unknown provider still gets a price for a well-known model.
_PROVIDER_IDS: dict[str, str] = {
    "openai": "openai",
    "anthropic": "anthropic",
    "gcp.gemini": "google",
    "gcp.vertex_ai": "google",
    "gcp.gen_ai": "google",
    "gemini": "google",
    "vertex_ai": "google",
    "google": "google",
    "azure.ai.openai": "azure",
    "azure.ai.inference": "azure",
    "az.ai.openai": "azure",
    "az.ai.inference": "azure",
    "azure": "azure",
    "aws.bedrock": "aws",
    "bedrock": "aws",
    "aws": "aws",
    "cohere": "cohere",
    "deepseek": "deepseek",
    "groq": "groq",
    "mistral_ai": "mistral",
    "mistralai": "mistral",
    "mistral": "mistral",
    "perplexity": "perplexity",
    "x_ai": "x-ai",
    "xai": "x-ai",
    "x-ai": "x-ai",
    "together_ai": "together",
    "together": "together",
    "fireworks": "fireworks",
    "openrouter": "openrouter",
    "cerebras": "cerebras",
    "moonshot": "moonshotai",
    "moonshotai": "moonshotai",
}

# "gpt-4o-2024-08-06" / "claude-x-20250514": an override for the undated name covers dated
# snapshots of it.
_DATE_SUFFIX = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8})$")
_MISSING = object()
_OVERRIDE_KEYS = frozenset({"input", "output", "cache_read", "cache_write", "provider"})


@dataclass(frozen=True, slots=True)
class Cost:
    """The cost of one call and which price produced it."""

    amount: float  # USD
    ref: str  # value of otel_tokens.pricing.ref, e.g. "genai-prices 0.2.3" / "override:my-llama"


@dataclass(frozen=True, slots=True)
class TierInfo:
    """Prices (USD per million tokens) that apply to every token once input exceeds ``above``."""

    above_input_tokens: int
    input: float | None = None
    output: float | None = None
    cache_read: float | None = None
    cache_write: float | None = None


@dataclass(frozen=True, slots=True)
class PriceInfo:
    """What ``otel-tokens prices MODEL`` shows: the price that would be used for a model."""

    model: str  # as asked
    matched_model: str  # catalogue model id (or the override's name)
    provider: str | None  # genai-prices provider id, or the override's provider
    source: str  # "catalogue" or "override"
    ref: str  # what a priced span's otel_tokens.pricing.ref would say
    input: float | None  # USD per million tokens; None = no price for this kind of token
    output: float | None
    cache_read: float | None
    cache_write: float | None
    reasoning: float | None = None  # only when reasoning has its own price (rare)
    per_request: float | None = None  # USD per call, for the few models priced per request
    tiers: tuple[TierInfo, ...] = ()
    model_name: str | None = None
    context_window: int | None = None
    at: str | None = None  # ISO date the price is valid for

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- resolved rates ---------------------------------------------------------------------------
# A rate is USD per token: a float, or for context-size tiers a tuple ((threshold, rate), ...) in
# descending threshold order ending with (-1, base rate); None means "no separate price".
_Rate = float | tuple[tuple[int, float], ...] | None


@dataclass(frozen=True, slots=True)
class _Rates:
    ref: str
    input: _Rate
    output: _Rate
    cache_read: _Rate
    cache_write: _Rate
    reasoning: _Rate
    per_request: float
    tiered: bool


def _pick(rate: _Rate, total_input: int) -> float:
    """A tiered rate's price for this call: the highest tier whose threshold input exceeds."""
    if rate is None:
        return 0.0
    if isinstance(rate, float):
        return rate
    for threshold, price in rate:
        if total_input > threshold:
            return price
    return rate[-1][1]


def _charge(rates: _Rates, usage: Usage) -> float | None:
    """USD for ``usage`` at ``rates``; None when the counts contradict each other."""
    inp = usage.input_tokens or 0
    out = usage.output_tokens or 0
    cache_read = usage.cache_read_tokens or 0
    cache_write = usage.cache_creation_tokens or 0
    reasoning = usage.reasoning_tokens or 0
    # The parts that have their own price are taken out of the parent count (genai-prices' leaf
    # decomposition); parts without their own price stay in it and pay the parent's price.
    plain_in = inp
    if rates.cache_read is not None:
        plain_in -= cache_read
    if rates.cache_write is not None:
        plain_in -= cache_write
    plain_out = out
    if rates.reasoning is not None:
        plain_out -= reasoning
    if plain_in < 0 or plain_out < 0 or cache_read < 0 or cache_write < 0 or reasoning < 0:
        return None
    if not rates.tiered:  # the common case: every rate is a plain float (or None)
        flat: Any = rates  # (not typing.cast: a function call per rate on every priced call)
        total = plain_in * flat.input + plain_out * flat.output
        if flat.cache_read is not None:
            total += cache_read * flat.cache_read
        if flat.cache_write is not None:
            total += cache_write * flat.cache_write
        if flat.reasoning is not None:
            total += reasoning * flat.reasoning
        return total + flat.per_request
    return (
        plain_in * _pick(rates.input, inp)
        + plain_out * _pick(rates.output, inp)
        + cache_read * _pick(rates.cache_read, inp)
        + cache_write * _pick(rates.cache_write, inp)
        + reasoning * _pick(rates.reasoning, inp)
        + rates.per_request
    )


def _to_rate(value: Any) -> _Rate:
    """genai-prices' Decimal / TieredPrices (USD per million) as a per-token rate."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        return float(value) / _PER_MILLION
    tiers = tuple(
        (int(tier.start), float(tier.price) / _PER_MILLION)
        for tier in sorted(value.tiers, key=lambda t: t.start, reverse=True)
    )
    return (*tiers, (-1, float(value.base) / _PER_MILLION))


def _per_million(rate: _Rate, threshold: int | None = None) -> float | None:
    if rate is None:
        return None
    if isinstance(rate, float):
        return round(rate * _PER_MILLION, 9)
    for start, price in rate:
        if start == (threshold if threshold is not None else -1):
            return round(price * _PER_MILLION, 9)
    return _per_million(rate[-1][1])


def _rates_from_model_price(price: ModelPrice, ref: str) -> _Rates | None:
    input_rate = _to_rate(getattr(price, "input_mtok", None))
    output_rate = _to_rate(getattr(price, "output_mtok", None))
    if input_rate is None and output_rate is None:
        # Priced per page, per second, per image...: token counts say nothing about the cost, so
        # "no price" is the honest answer (genai-prices would say $0).
        return None
    requests = getattr(price, "requests_kcount", None)
    rates = (
        input_rate,
        output_rate,
        _to_rate(getattr(price, "cache_read_mtok", None)),
        _to_rate(getattr(price, "cache_write_mtok", None)),
        _to_rate(getattr(price, "output_reasoning_mtok", None)),
    )
    return _Rates(
        ref=ref,
        input=input_rate if input_rate is not None else 0.0,
        output=output_rate if output_rate is not None else 0.0,
        cache_read=rates[2],
        cache_write=rates[3],
        reasoning=rates[4],
        per_request=float(requests) / 1000.0 if requests is not None else 0.0,
        tiered=any(isinstance(r, tuple) for r in rates),
    )


# --- overrides --------------------------------------------------------------------------------
def _override_rates(model: str, spec: Mapping[str, Any]) -> _Rates:
    def rate(key: str) -> float | None:
        value = spec.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
            raise ValueError(f"{model}.{key}: must be a number (USD per million tokens)")
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"{model}.{key}: must be a number (USD per million tokens)") from None
        if not math.isfinite(number) or number < 0:
            raise ValueError(f"{model}.{key}: must be a finite number >= 0")
        return number / _PER_MILLION

    unknown = set(spec) - _OVERRIDE_KEYS
    if unknown:
        raise ValueError(
            f"{model}.{sorted(unknown)[0]}: unknown key (use {sorted(_OVERRIDE_KEYS)})"
        )
    input_rate, output_rate = rate("input"), rate("output")
    if input_rate is None and output_rate is None:
        raise ValueError(f"{model}: needs at least one of input, output")
    return _Rates(
        ref=f"override:{model}",
        input=input_rate or 0.0,
        output=output_rate or 0.0,
        cache_read=rate("cache_read"),
        cache_write=rate("cache_write"),
        reasoning=None,
        per_request=0.0,
        tiered=False,
    )


def load_overrides(path: str | Path) -> dict[str, dict[str, Any]]:
    """Read an overrides file (YAML or JSON): ``{model: {input, output, cache_read, cache_write,
    provider}}`` in USD per million tokens. Raises ``ValueError`` naming the bad key."""
    text = Path(path).read_text(encoding="utf-8")
    if str(path).endswith(".json"):
        data = json.loads(text)
    else:
        import yaml  # YAML is a superset of JSON, so any other extension reads both

        data = yaml.safe_load(text)
    if data is None:
        return {}
    if isinstance(data, Mapping) and isinstance(data.get("prices"), Mapping):
        data = data["prices"]  # allow a top-level "prices:" section
    if not isinstance(data, Mapping):
        raise ValueError(f"{path}: must map model names to prices")
    overrides: dict[str, dict[str, Any]] = {}
    for model, spec in data.items():
        if not isinstance(spec, Mapping):
            raise ValueError(f"{model}: must be a mapping of prices")
        _override_rates(str(model), spec)  # validates
        overrides[str(model)] = dict(spec)
    return overrides


# --- the catalogue ----------------------------------------------------------------------------
_snapshot_lock = threading.Lock()
_snapshot: DataSnapshot | None = None


def _bundled_snapshot() -> DataSnapshot:
    """genai-prices' bundled data, in a snapshot of our own (imported lazily: it takes ~0.4 s)."""
    global _snapshot
    if _snapshot is None:
        with _snapshot_lock:
            if _snapshot is None:
                from genai_prices.data import providers
                from genai_prices.data_snapshot import DataSnapshot

                _snapshot = DataSnapshot(providers=providers, from_auto_update=False)
    return _snapshot


@functools.cache
def catalogue_ref() -> str:
    """``genai-prices <version>``: the catalogue named in otel_tokens.pricing.ref."""
    from importlib.metadata import version

    return f"genai-prices {version('genai-prices')}"


def provider_id_for(provider: str | None) -> str | None:
    """The genai-prices provider id for a ``gen_ai.provider.name`` value (None if unknown)."""
    if not provider:
        return None
    return _PROVIDER_IDS.get(provider.strip().lower())


def _same_provider(wanted: str | None, provider: str | None) -> bool:
    """Does an override restricted to ``wanted`` apply to a call from ``provider``?"""
    if not wanted or not provider:
        return True
    asked = provider.strip().lower()
    if wanted == asked:
        return True
    wanted_id = provider_id_for(wanted)
    return wanted_id is not None and wanted_id == provider_id_for(asked)


def _time_key(model: ModelInfo, at: datetime, with_variants: bool) -> Any:
    """The part of ``at`` that can change this model's price: none, the UTC day, or the minute."""
    kind = _time_kinds.get((id(model), with_variants))
    if kind is None:
        kind = _time_kind(model, with_variants)
        _time_kinds[(id(model), with_variants)] = kind
    if kind == "static":
        return None
    tz = at.tzinfo
    utc = at if tz is None or tz is UTC else at.astimezone(UTC)
    if kind == "date":
        return utc.date()
    if kind == "minute":
        return (utc.year, utc.month, utc.day, utc.hour, utc.minute)
    return utc  # constraints with seconds: exact timestamp (still cached, rarely reused)


_time_kinds: dict[tuple[int, bool], str] = {}


def _time_kind(model: ModelInfo, with_variants: bool) -> str:
    from genai_prices.types import StartDateConstraint, TimeOfDateConstraint

    constraints = [c.constraint for c in model.prices] if isinstance(model.prices, list) else []
    if with_variants:  # variants (service tiers) only matter when the call names one
        constraints += [v.constraint for v in model.price_variants or ()]
    constraints = [c for c in constraints if c is not None]
    if not constraints:
        return "static"
    times = [c for c in constraints if isinstance(c, TimeOfDateConstraint)]
    if not times:
        return "date" if all(isinstance(c, StartDateConstraint) for c in constraints) else "exact"
    on_minutes = all(
        t.second == 0 and t.microsecond == 0 for c in times for t in (c.start_time, c.end_time)
    )
    return "minute" if on_minutes else "exact"


class PriceBook:
    """Prices calls. Overrides (USD per million tokens) win over the genai-prices catalogue."""

    def __init__(self, overrides: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self._overrides: dict[str, tuple[str | None, _Rates, Mapping[str, Any]]] = {}
        for model, spec in (overrides or {}).items():
            if not isinstance(spec, Mapping):
                raise ValueError(f"{model}: must be a mapping of prices")
            provider = spec.get("provider")
            if provider is not None and not isinstance(provider, str):
                raise ValueError(f"{model}.provider: must be a string")
            self._overrides[str(model).lower()] = (
                provider.lower() if provider else None,
                _override_rates(str(model), spec),
                dict(spec),
            )
        self._ref: str | None = None
        # (provider, model) -> (ModelInfo, Provider) | override _Rates | None (unknown)
        self._models: dict[tuple[str | None, str], Any] = {}
        # (provider, model, service tier) -> _Rates, for prices that do not change over time
        self._timeless: dict[tuple[str | None, str, str | None], _Rates] = {}
        # (id(ModelInfo), time key, service tier) -> _Rates | None
        self._rates: dict[tuple[int, Any, str | None], _Rates | None] = {}
        self._lock = threading.Lock()

    # -- public ---------------------------------------------------------------------------------
    def cost(
        self,
        usage: Usage,
        model: str | None,
        provider: str | None = None,
        at: datetime | None = None,
        *,
        service_tier: str | None = None,
    ) -> Cost | None:
        """The cost of one call; None when no price is known (or the counts are inconsistent).

        ``at`` is the request time (prices change; default now); ``service_tier`` selects
        genai-prices' price variants (e.g. OpenAI "flex" / "priority") where they exist.
        """
        if not model or (usage.input_tokens is None and usage.output_tokens is None):
            return None  # (usage.is_empty, without a property call on every priced call)
        try:
            # Fast path: prices that do not depend on the request time (most models, overrides).
            rates = self._timeless.get((provider, model, service_tier))
            if rates is None:
                rates = self._rates_for(model, provider, at, service_tier)
            if rates is None:
                return None
            amount = _charge(rates, usage)
        except Exception:  # a pricing bug must never reach the caller
            logger.debug("pricing %r failed", model, exc_info=True)
            return None
        if amount is None:
            logger.debug("inconsistent usage for %r, not priced: %r", model, usage)
            return None
        return Cost(amount, rates.ref)

    def describe(
        self, model: str, provider: str | None = None, at: datetime | None = None
    ) -> PriceInfo | None:
        """The price that ``cost`` would use for ``model``, in USD per million tokens."""
        when = at or datetime.now(UTC)
        found = self._lookup(model, provider)
        if found is None:
            return None
        day = (when.astimezone(UTC) if when.tzinfo else when).date().isoformat()
        if isinstance(found, _Rates):
            prov, _, spec = self._override_entry(model, provider)  # type: ignore[misc]
            return PriceInfo(
                model=model,
                matched_model=found.ref.removeprefix("override:"),
                provider=prov,
                source="override",
                ref=found.ref,
                input=_per_million(found.input) if spec.get("input") is not None else None,
                output=_per_million(found.output) if spec.get("output") is not None else None,
                cache_read=_per_million(found.cache_read),
                cache_write=_per_million(found.cache_write),
                at=day,
            )
        info, prov_obj = found
        rates = self._catalogue_rates(info, prov_obj, when, None)
        if rates is None:
            return None
        thresholds = sorted(
            {
                start
                for r in (rates.input, rates.output, rates.cache_read, rates.cache_write)
                if isinstance(r, tuple)
                for start, _ in r
                if start >= 0
            }
        )
        tiers = tuple(
            TierInfo(
                above_input_tokens=t,
                input=_per_million(rates.input, t),
                output=_per_million(rates.output, t),
                cache_read=_per_million(rates.cache_read, t),
                cache_write=_per_million(rates.cache_write, t),
            )
            for t in thresholds
        )
        return PriceInfo(
            model=model,
            matched_model=info.id,
            provider=prov_obj.id,
            source="catalogue",
            ref=rates.ref,
            input=_per_million(rates.input),
            output=_per_million(rates.output),
            cache_read=_per_million(rates.cache_read),
            cache_write=_per_million(rates.cache_write),
            reasoning=_per_million(rates.reasoning),
            per_request=rates.per_request or None,
            tiers=tiers,
            model_name=info.name,
            context_window=info.context_window,
            at=day,
        )

    def cache_info(self) -> dict[str, int]:
        """Sizes of the resolution caches (for tests and benchmarks)."""
        return {"models": len(self._models), "rates": len(self._rates)}

    # -- resolution -----------------------------------------------------------------------------
    @property
    def ref(self) -> str:
        if self._ref is None:
            self._ref = catalogue_ref()
        return self._ref

    def _rates_for(
        self, model: str, provider: str | None, at: datetime | None, service_tier: str | None
    ) -> _Rates | None:
        found = self._models.get((provider, model), _MISSING)
        if found is _MISSING:
            found = self._lookup(model, provider)
        if not found:  # None / False: no price known
            return None
        if isinstance(found, _Rates):
            self._remember(self._timeless, (provider, model, service_tier), found)
            return found
        info, prov_obj = found
        when = at or datetime.now(UTC)
        time_key = _time_key(info, when, service_tier is not None)
        key = (id(info), time_key, service_tier)
        try:
            return self._rates[key]
        except KeyError:
            rates = self._catalogue_rates(info, prov_obj, when, service_tier)
            self._remember(self._rates, key, rates)
            if time_key is None and rates is not None:
                self._remember(self._timeless, (provider, model, service_tier), rates)
            return rates

    def _remember(self, cache: dict[Any, Any], key: Any, value: Any) -> None:
        with self._lock:
            if len(cache) >= _MAX_CACHE_ENTRIES:
                cache.clear()
            cache[key] = value

    def _override_entry(
        self, model: str, provider: str | None
    ) -> tuple[str | None, _Rates, Mapping[str, Any]] | None:
        if not self._overrides:
            return None
        name = model.lower()
        for candidate in (name, _DATE_SUFFIX.sub("", name)):
            entry = self._overrides.get(candidate)
            if entry is None:
                continue
            if not _same_provider(entry[0], provider):
                continue
            return entry
        return None

    def _lookup(self, model: str, provider: str | None) -> Any:
        """Resolve (provider, model) once: an override's rates, (ModelInfo, Provider), or None."""
        key = (provider, model)
        if key in self._models:
            cached = self._models[key]
            return None if cached is False else cached
        override = self._override_entry(model, provider)
        found: Any = override[1] if override else self._catalogue_model(model, provider)
        self._remember(self._models, key, found if found is not None else False)
        if found is None:
            logger.debug("no price for model %r (provider %r)", model, provider)
        return found

    def _catalogue_model(self, model: str, provider: str | None) -> Any:
        snapshot = _bundled_snapshot()
        ref = model.strip()
        if ref.startswith("models/"):  # google-genai's resource names
            ref = ref[len("models/") :]
        provider_id = provider_id_for(provider)
        if provider_id is None and provider:
            provider_id = provider.strip().lower()  # maybe already a genai-prices id
        attempts: list[str | None] = [provider_id] if provider_id else []
        # Unknown provider, or a provider serving a model it has no own price for (proxies,
        # OpenAI-compatible gateways): fall back to the model's home provider.
        attempts.append(None)
        for attempt in attempts:
            try:
                prov_obj, info = snapshot.find_provider_model(ref, None, attempt, None)
            except LookupError:
                continue
            return info, prov_obj
        return None

    def _catalogue_rates(
        self, info: ModelInfo, prov_obj: Provider, when: datetime, service_tier: str | None
    ) -> _Rates | None:
        context = {"service_tier": service_tier} if service_tier else None
        if context and not any(info is m for m in prov_obj.models):
            context = None  # as genai-prices: variants only apply to the provider's own models
        price = info.get_prices(when, context)
        return _rates_from_model_price(price, self.ref)


_default_book: PriceBook | None = None
_default_lock = threading.Lock()


def default_price_book() -> PriceBook:
    """The process-wide book; overrides come from the file named by ``OTEL_TOKENS_PRICES`` (read
    once). A bad file is logged and ignored rather than breaking the application."""
    global _default_book
    if _default_book is None:
        with _default_lock:
            if _default_book is None:
                overrides: dict[str, dict[str, Any]] = {}
                path = os.environ.get(PRICES_ENV)
                if path:
                    try:
                        overrides = load_overrides(path)
                    except Exception as exc:  # missing file, bad value, YAML syntax error
                        logger.warning("%s=%s ignored: %s", PRICES_ENV, path, exc)
                _default_book = PriceBook(overrides)
    return _default_book


def _reset_default_price_book() -> None:
    """Forget the process-wide book (tests, and ``configure(prices=...)``)."""
    global _default_book
    with _default_lock:
        _default_book = None
