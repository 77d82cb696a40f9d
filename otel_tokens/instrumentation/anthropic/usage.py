"""Pure functions from Anthropic Messages responses and stream events to :class:`Usage`.

Anthropic counts ``input_tokens`` *exclusive* of cache; SPEC §2 wants input inclusive of cache, so
``input = input_tokens + cache_read_input_tokens + cache_creation_input_tokens``. Thinking tokens
are already inside ``output_tokens``; newer API versions also report them separately in
``usage.output_tokens_details.thinking_tokens``, which becomes ``reasoning_tokens``.

Every function accepts SDK models (attributes) and decoded JSON (dict keys) alike, and never raises
on a malformed value: it treats it as "not reported".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from otel_tokens.usage import Usage


def field_of(obj: Any, name: str) -> Any:
    """``obj.name`` or ``obj[name]``; ``None`` when absent."""
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def count_of(obj: Any, name: str) -> int | None:
    """A token count: a non-negative int, or ``None`` for anything else (bool, str, missing)."""
    value = field_of(obj, name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if value < 0:
        return None
    return int(value)


def _sum(*values: int | None) -> int | None:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def usage_from_counts(
    input_tokens: int | None,
    output_tokens: int | None,
    cache_read: int | None,
    cache_creation: int | None,
    thinking: int | None = None,
) -> Usage | None:
    """Anthropic's raw counts as a semconv :class:`Usage` (input inclusive of cache)."""
    if all(v is None for v in (input_tokens, output_tokens, cache_read, cache_creation)):
        return None
    return Usage(
        input_tokens=_sum(input_tokens, cache_read, cache_creation),
        output_tokens=output_tokens,
        cache_read_tokens=cache_read,
        cache_creation_tokens=cache_creation,
        reasoning_tokens=thinking,
    )


def usage_from_usage_block(usage: Any) -> Usage | None:
    """``message.usage`` (or a stream event's ``usage``) → :class:`Usage`; ``None`` if empty."""
    if usage is None:
        return None
    return usage_from_counts(
        count_of(usage, "input_tokens"),
        count_of(usage, "output_tokens"),
        count_of(usage, "cache_read_input_tokens"),
        count_of(usage, "cache_creation_input_tokens"),
        count_of(field_of(usage, "output_tokens_details"), "thinking_tokens"),
    )


def usage_from_message(message: Any) -> Usage | None:
    """A ``Message`` (or ``ParsedMessage``, ``BetaMessage``, JSON body) → :class:`Usage`."""
    return usage_from_usage_block(field_of(message, "usage"))


def finish_reasons_of(message: Any) -> list[str] | None:
    reason = field_of(message, "stop_reason")
    return [str(reason)] if isinstance(reason, str) else None


_COUNT_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
)


@dataclass
class StreamUsage:
    """Accumulates what a Messages event stream says about the call, event by event.

    ``message_start`` carries the input and cache counts and a *provisional* ``output_tokens``;
    each ``message_delta`` carries *cumulative* counts that replace earlier ones (fields it leaves
    out or sets to null keep their previous value).
    """

    response_id: str | None = None
    response_model: str | None = None
    stop_reason: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    thinking_tokens: int | None = None
    events: int = 0

    def observe(self, event: Any) -> None:
        """Take one raw stream event into account. Never raises."""
        try:
            self._observe(event)
        except Exception:  # a malformed event must not break the application's stream
            pass

    def _observe(self, event: Any) -> None:
        self.events += 1
        kind = field_of(event, "type")
        if kind == "message_start":
            message = field_of(event, "message")
            self.response_id = field_of(message, "id") or self.response_id
            self.response_model = field_of(message, "model") or self.response_model
            self._merge(field_of(message, "usage"))
        elif kind == "message_delta":
            reason = field_of(field_of(event, "delta"), "stop_reason")
            if isinstance(reason, str):
                self.stop_reason = reason
            self._merge(field_of(event, "usage"))

    def _merge(self, usage: Any) -> None:
        if usage is None:
            return
        for name in _COUNT_FIELDS:
            value = count_of(usage, name)
            if value is not None:
                self.counts[name] = value
        thinking = count_of(field_of(usage, "output_tokens_details"), "thinking_tokens")
        if thinking is not None:
            self.thinking_tokens = thinking

    @property
    def finish_reasons(self) -> Sequence[str] | None:
        return [self.stop_reason] if self.stop_reason else None

    def usage(self) -> Usage | None:
        c = self.counts
        return usage_from_counts(
            c.get("input_tokens"),
            c.get("output_tokens"),
            c.get("cache_read_input_tokens"),
            c.get("cache_creation_input_tokens"),
            self.thinking_tokens,
        )
