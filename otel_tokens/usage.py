"""Token usage of one LLM call, as every part of otel-tokens counts it (SPEC §2)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens of one call in the semconv sense.

    ``input_tokens`` includes cached input (read and creation); ``output_tokens`` includes
    reasoning. ``None`` means "not reported", which is different from 0. ``estimated`` is true when
    the counts were estimated locally because the API returned none.
    """

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_creation_tokens: int | None = None
    reasoning_tokens: int | None = None
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        return (self.input_tokens or 0) + (self.output_tokens or 0)

    @property
    def is_empty(self) -> bool:
        return self.input_tokens is None and self.output_tokens is None


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate (no downloads at run time): ~4 characters per token."""
    if not text:
        return 0
    return max(1, (len(text) + 3) // 4)
