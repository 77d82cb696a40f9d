"""Pure functions from Google GenAI (Gemini / Vertex AI) responses to :class:`Usage`.

Gemini's ``candidatesTokenCount`` does *not* include thinking: ``thoughtsTokenCount`` is reported
beside it (``totalTokenCount = prompt + candidates + thoughts + toolUsePrompt``). SPEC §2 wants
output inclusive of reasoning, so ``output = candidates + thoughts`` and ``reasoning = thoughts``.
``promptTokenCount`` already includes ``cachedContentTokenCount``; tool results fed back to the
model (``toolUsePromptTokenCount``) are billed as input, so they are added to input.

Every function accepts SDK models (snake_case attributes) and decoded JSON (camelCase keys) alike
and never raises on a malformed value: it treats it as "not reported".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from otel_tokens.usage import Usage


def field_of(obj: Any, snake: str) -> Any:
    """``obj.snake_case``, or ``obj["snake_case"]`` / ``obj["camelCase"]`` for JSON."""
    if obj is None:
        return None
    if isinstance(obj, dict):
        if snake in obj:
            return obj[snake]
        head, *rest = snake.split("_")
        return obj.get(head + "".join(part.title() for part in rest))
    return getattr(obj, snake, None)


def count_of(obj: Any, snake: str) -> int | None:
    value = field_of(obj, snake)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return None
    return int(value)


def _sum(*values: int | None) -> int | None:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def usage_from_metadata(metadata: Any) -> Usage | None:
    """``usage_metadata`` of a ``GenerateContentResponse`` → :class:`Usage`; ``None`` if empty.

    Streaming chunks before the last one carry a ``usageMetadata`` with no counts at all (only
    ``trafficType``): that is "not reported", not zero.
    """
    if metadata is None:
        return None
    prompt = count_of(metadata, "prompt_token_count")
    tool_prompt = count_of(metadata, "tool_use_prompt_token_count")
    candidates = count_of(metadata, "candidates_token_count")
    if candidates is None:  # embeddings' UsageMetadata names it response_token_count
        candidates = count_of(metadata, "response_token_count")
    thoughts = count_of(metadata, "thoughts_token_count")
    cached = count_of(metadata, "cached_content_token_count")
    if all(v is None for v in (prompt, tool_prompt, candidates, thoughts, cached)):
        return None
    return Usage(
        input_tokens=_sum(prompt, tool_prompt),
        output_tokens=_sum(candidates, thoughts),
        cache_read_tokens=cached,
        reasoning_tokens=thoughts,
    )


def usage_from_response(response: Any) -> Usage | None:
    """A ``GenerateContentResponse`` (or its JSON body) → :class:`Usage`."""
    return usage_from_metadata(field_of(response, "usage_metadata"))


def finish_reasons_of(response: Any) -> list[str] | None:
    reasons = []
    for candidate in field_of(response, "candidates") or ():
        reason = field_of(candidate, "finish_reason")
        if reason is None:
            continue
        # The SDK gives an enum (FinishReason.STOP); semconv wants the provider's value, lowercased.
        name = getattr(reason, "value", reason)
        reasons.append(str(name).lower())
    return reasons or None


def usage_from_embed_response(response: Any) -> Usage | None:
    """An ``EmbedContentResponse`` → input-only :class:`Usage`.

    The Gemini API reports ``usage_metadata.prompt_token_count``; Vertex AI reports a
    ``statistics.token_count`` per embedding instead, which are summed.
    """
    usage = usage_from_metadata(field_of(response, "usage_metadata"))
    if usage is not None and usage.input_tokens is not None:
        return Usage(input_tokens=usage.input_tokens)
    counts = [
        count_of(field_of(embedding, "statistics"), "token_count")
        for embedding in field_of(response, "embeddings") or ()
    ]
    total = _sum(*counts)
    return Usage(input_tokens=total) if total is not None else None


@dataclass
class StreamUsage:
    """Accumulates a ``generate_content_stream`` chunk by chunk.

    Gemini sends cumulative counts, in practice only in the last chunk; the latest chunk that has
    any count wins. Model, id and finish reasons are taken from whichever chunk carries them.
    """

    response_id: str | None = None
    response_model: str | None = None
    reasons: list[str] = field(default_factory=list)
    latest: Usage | None = None
    chunks: int = 0

    def observe(self, chunk: Any) -> None:
        """Take one streamed ``GenerateContentResponse`` into account. Never raises."""
        try:
            self.chunks += 1
            usage = usage_from_response(chunk)
            if usage is not None:
                self.latest = usage
            self.response_id = field_of(chunk, "response_id") or self.response_id
            self.response_model = field_of(chunk, "model_version") or self.response_model
            for reason in finish_reasons_of(chunk) or ():
                if reason not in self.reasons:
                    self.reasons.append(reason)
        except Exception:  # a malformed chunk must not break the application's stream
            pass

    @property
    def finish_reasons(self) -> Sequence[str] | None:
        return list(self.reasons) or None

    def usage(self) -> Usage | None:
        return self.latest
